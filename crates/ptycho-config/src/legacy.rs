//! The legacy flat "params" view: dotted keys (KEY_MAPPINGS) derived from the typed configs.
//!
//! First version (lead): covers the model keys, nphotons and the legacy-only keys the rest of the
//! workspace needs. To be completed (all TrainingConfig / InferenceConfig keys, round trips).

use serde_json::{Value, json};

use crate::error::ConfigError;
use crate::model::ModelConfig;
use crate::params::{Params, ProbeField};

/// Flat legacy key → JSON value map, ordered by key.
pub type LegacyMap = std::collections::BTreeMap<String, Value>;

/// Dataclass field name → legacy key (spec §1.6); all other fields keep their names.
pub const KEY_MAPPINGS: &[(&str, &str)] = &[
    ("object_big", "object.big"),
    ("probe_big", "probe.big"),
    ("probe_mask", "probe.mask"),
    ("probe_trainable", "probe.trainable"),
    ("intensity_scale_trainable", "intensity_scale.trainable"),
    ("positions_provided", "positions.provided"),
    ("output_dir", "output_prefix"),
    ("train_data_file", "train_data_file_path"),
    ("test_data_file", "test_data_file_path"),
];

/// The legacy name of a dataclass field.
pub fn legacy_key(field: &str) -> &str {
    KEY_MAPPINGS
        .iter()
        .find(|(f, _)| *f == field)
        .map(|(_, k)| *k)
        .unwrap_or(field)
}

/// The dataclass field name of a legacy key.
pub fn field_name(key: &str) -> &str {
    KEY_MAPPINGS
        .iter()
        .find(|(_, k)| *k == key)
        .map(|(f, _)| *f)
        .unwrap_or(key)
}

fn flatten_into(map: &mut LegacyMap, value: Value) {
    if let Value::Object(obj) = value {
        for (k, v) in obj {
            if !v.is_null() {
                map.insert(legacy_key(&k).to_string(), v);
            }
        }
    }
}

impl Params {
    /// The flat legacy view: model keys, nphotons, legacy-only keys, derived `bigN`/`padded_size`
    /// and the runtime `intensity_scale` (the probe is not included; see [`Params::probe`]).
    pub fn to_legacy(&self) -> LegacyMap {
        let mut map = self.legacy.clone();
        flatten_into(
            &mut map,
            serde_json::to_value(&self.model).unwrap_or(Value::Null),
        );
        map.insert("nphotons".into(), json!(self.nphotons));
        map.insert("offset".into(), json!(self.offset));
        map.insert(
            "max_position_jitter".into(),
            json!(self.max_position_jitter),
        );
        map.insert(
            "default_probe_scale".into(),
            json!(self.default_probe_scale),
        );
        map.insert("bigN".into(), json!(self.big_n()));
        map.insert("padded_size".into(), json!(self.padded_size()));
        if let Some(s) = self.intensity_scale {
            map.insert("intensity_scale".into(), json!(s));
        }
        map
    }

    /// Restore a params value from a legacy map (an archive snapshot). The model keys are
    /// validated; the runtime probe, if any, is attached separately with [`Params::with_probe`].
    pub fn from_legacy(map: &LegacyMap) -> Result<Params, ConfigError> {
        let defaults = serde_json::to_value(ModelConfig::default()).unwrap_or(Value::Null);
        let mut model_obj = serde_json::Map::new();
        if let Value::Object(d) = defaults {
            for (field, default) in d {
                let v = map.get(legacy_key(&field)).cloned().unwrap_or(default);
                model_obj.insert(field, v);
            }
        }
        let model: ModelConfig =
            serde_json::from_value(Value::Object(model_obj)).map_err(|e| ConfigError::Invalid {
                field: "params",
                value: "model keys".into(),
                allowed: e.to_string(),
            })?;
        model.check()?;
        let get_usize =
            |k: &str, d: usize| map.get(k).and_then(Value::as_u64).map_or(d, |v| v as usize);
        let get_f64 = |k: &str, d: f64| map.get(k).and_then(Value::as_f64).unwrap_or(d);
        Ok(Params {
            model,
            nphotons: get_f64("nphotons", 1e9),
            offset: get_usize("offset", crate::params::DEFAULT_OFFSET),
            max_position_jitter: get_usize(
                "max_position_jitter",
                crate::params::DEFAULT_MAX_POSITION_JITTER,
            ),
            default_probe_scale: get_f64("default_probe_scale", crate::params::DEFAULT_PROBE_SCALE),
            legacy: map.clone(),
            intensity_scale: map.get("intensity_scale").and_then(Value::as_f64),
            probe: None::<ProbeField>,
        })
    }
}
