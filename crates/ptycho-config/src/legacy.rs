//! The legacy flat "params" view (spec §1.5, §1.6): one map of legacy keys → JSON values, derived
//! from the typed configs and never the other way round for a run. Conversions:
//!
//! * `TrainingConfig::to_legacy` / `InferenceConfig::to_legacy`: the reference's
//!   `dataclass_to_legacy_dict` — model fields flattened to the top level, `KEY_MAPPINGS` applied,
//!   paths as strings, `None` values not written.
//! * `TrainingConfig::from_legacy` / `InferenceConfig::from_legacy`: the inverse; keys of other
//!   structs are ignored, absent keys take the dataclass default, so `to_legacy` → `from_legacy`
//!   round-trips.
//! * [`crate::Params::to_legacy`] / [`crate::Params::from_legacy`] (in `params.rs`): the full view
//!   (legacy-only keys with their defaults, config keys, derived `bigN` / `padded_size`, runtime
//!   `intensity_scale`) and the archive restore, built on the pieces here.

use serde_json::{Value, json};

use crate::decode::{Entry, decode, defaults_of};
use crate::error::ConfigError;
use crate::inference::InferenceConfig;
use crate::model::ModelConfig;
use crate::training::TrainingConfig;

/// Flat legacy key → JSON value map, ordered by key.
pub type LegacyMap = std::collections::BTreeMap<String, Value>;

/// Legacy-only keys with their reference defaults (spec §1.5).
/// Pixels between grid neighbours (used for bigN and the evaluation trim).
pub const DEFAULT_OFFSET: usize = 4;
/// Padding buffer in pixels added to bigN for the in-model canvas.
pub const DEFAULT_MAX_POSITION_JITTER: usize = 10;
/// Width parameter of the simulator's default probe (dimensionless).
pub const DEFAULT_PROBE_SCALE: f64 = 0.7;
/// Legacy default of `nphotons` (mean photons per pattern), used when no config supplies one.
pub const DEFAULT_NPHOTONS: f64 = 1e9;

/// Name used as the origin of errors about a legacy map.
pub const LEGACY_ORIGIN: &str = "legacy params";

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

/// Keys computed from the others (`bigN` = N + (gridsize − 1)·offset, `padded_size` = bigN +
/// max_position_jitter); written by [`Params::to_legacy`], recomputed on restore.
pub const DERIVED_KEYS: &[&str] = &["bigN", "padded_size"];

/// Keys attached at run time (`intensity_scale`: float; `probe`: the normalised probe, carried as
/// [`crate::ProbeField`] and stored by the archive, not in this map).
pub const RUNTIME_KEYS: &[&str] = &["intensity_scale", "probe"];

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

/// The legacy-only keys (owned by no dataclass) with their reference defaults (spec §1.5).
/// `outer_offset_train` / `outer_offset_test` default to None and are therefore absent.
pub fn legacy_defaults() -> LegacyMap {
    [
        ("offset", json!(DEFAULT_OFFSET)),
        ("max_position_jitter", json!(DEFAULT_MAX_POSITION_JITTER)),
        ("default_probe_scale", json!(DEFAULT_PROBE_SCALE)),
        ("big_gridsize", json!(10)),
        ("sim_jitter_scale", json!(0.0)),
        ("tv_weight", json!(0.0)),
        ("nimgs_train", json!(9)),
        ("nimgs_test", json!(3)),
        ("data_source", json!("generic")),
        ("set_phi", json!(false)),
        ("label", json!("")),
        ("size", json!(392)),
        ("h5_path", json!("wts.h5")),
        ("npseed", json!(42)),
        ("debug", json!(true)),
        ("use_xla_translate", json!(true)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// Legacy keys of the model fields (`N`, `gridsize`, `object.big`, ...).
pub fn model_keys() -> Vec<String> {
    defaults_of::<ModelConfig>()
        .keys()
        .map(|f| legacy_key(f).to_string())
        .collect()
}

/// Remove the keys that [`crate::Params`] holds as typed fields or recomputes.
pub(crate) fn strip_typed_keys(map: &mut LegacyMap) {
    for k in model_keys() {
        map.remove(&k);
    }
    for k in [
        "nphotons",
        "offset",
        "max_position_jitter",
        "default_probe_scale",
    ]
    .iter()
    .chain(DERIVED_KEYS)
    .chain(RUNTIME_KEYS)
    {
        map.remove(*k);
    }
    map.retain(|_, v| !v.is_null());
}

/// Flatten a serialized config: nested `model` merged to the top level, legacy names, no nulls.
pub(crate) fn flatten(value: Value) -> LegacyMap {
    let mut map = LegacyMap::new();
    let Value::Object(mut obj) = value else {
        return map;
    };
    if let Some(Value::Object(model)) = obj.remove("model") {
        obj.extend(model);
    }
    for (k, v) in obj {
        if !v.is_null() {
            map.insert(legacy_key(&k).to_string(), v);
        }
    }
    map
}

/// Entries of the fields of `T` (except `model`) found under their legacy names in `map`.
fn entries_from_legacy<T: serde::Serialize + Default>(map: &LegacyMap) -> Vec<Entry> {
    defaults_of::<T>()
        .keys()
        .filter(|f| *f != "model")
        .filter_map(|f| {
            let key = legacy_key(f);
            map.get(key).filter(|v| !v.is_null()).map(|v| Entry {
                field: f.clone(),
                shown: key.to_string(),
                value: v.clone(),
            })
        })
        .collect()
}

pub(crate) fn model_from_legacy(map: &LegacyMap) -> Result<ModelConfig, ConfigError> {
    decode::<ModelConfig>(entries_from_legacy::<ModelConfig>(map), LEGACY_ORIGIN)
}

pub(crate) fn with_model(mut v: Value, model: &ModelConfig) -> Result<Value, ConfigError> {
    let model = serde_json::to_value(model).map_err(|e| ConfigError::WrongType {
        origin: LEGACY_ORIGIN.into(),
        key: "model".into(),
        message: e.to_string(),
    })?;
    if let Value::Object(obj) = &mut v {
        obj.insert("model".into(), model);
    }
    Ok(v)
}

fn config_from_legacy<T>(map: &LegacyMap) -> Result<T, ConfigError>
where
    T: serde::Serialize + serde::de::DeserializeOwned + Default,
{
    let model = model_from_legacy(map)?;
    let rest: T = decode(entries_from_legacy::<T>(map), LEGACY_ORIGIN)?;
    let v = with_model(serde_json::to_value(rest).unwrap_or(Value::Null), &model)?;
    serde_json::from_value(v).map_err(|e| ConfigError::WrongType {
        origin: LEGACY_ORIGIN.into(),
        key: "model".into(),
        message: e.to_string(),
    })
}

impl TrainingConfig {
    /// This config's legacy keys (model flattened, KEY_MAPPINGS, None not written).
    pub fn to_legacy(&self) -> LegacyMap {
        flatten(serde_json::to_value(self).unwrap_or(Value::Null))
    }

    /// The inverse of [`TrainingConfig::to_legacy`]: reads this struct's keys from a legacy map
    /// (other keys ignored, absent keys default). Not validated; errors name the key of a wrong
    /// type.
    pub fn from_legacy(map: &LegacyMap) -> Result<TrainingConfig, ConfigError> {
        config_from_legacy(map)
    }
}

impl InferenceConfig {
    /// This config's legacy keys (model flattened, KEY_MAPPINGS, None not written).
    pub fn to_legacy(&self) -> LegacyMap {
        flatten(serde_json::to_value(self).unwrap_or(Value::Null))
    }

    /// The inverse of [`InferenceConfig::to_legacy`]; see [`TrainingConfig::from_legacy`].
    pub fn from_legacy(map: &LegacyMap) -> Result<InferenceConfig, ConfigError> {
        config_from_legacy(map)
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::model::{AmpActivation, ModelType};
    use crate::params::Params;

    fn custom_training() -> TrainingConfig {
        TrainingConfig {
            model: ModelConfig {
                n: 128,
                gridsize: 2,
                n_filters_scale: 3,
                model_type: ModelType::Supervised,
                amp_activation: AmpActivation::Swish,
                object_big: false,
                probe_big: false,
                probe_mask: true,
                pad_object: false,
                probe_scale: 2.5,
                gaussian_smoothing_sigma: 0.75,
            },
            train_data_file: Some(PathBuf::from("data/train.npz")),
            test_data_file: None,
            batch_size: 8,
            nepochs: 7,
            mae_weight: 0.25,
            nll_weight: 0.5,
            realspace_mae_weight: 0.0,
            realspace_weight: 0.0,
            tv_weight: 0.0,
            nphotons: 1e6,
            n_groups: 33,
            n_subsample: Some(200),
            subsample_seed: Some(9),
            neighbor_count: 6,
            positions_provided: false,
            probe_trainable: true,
            intensity_scale_trainable: false,
            output_dir: PathBuf::from("out/run1"),
            sequential_sampling: true,
            enable_oversampling: true,
            neighbor_pool_size: Some(5),
            seed: 7,
            learning_rate: 5e-4,
            validation_fraction: 0.1,
            plateau_patience: 4,
            plateau_factor: 0.25,
            plateau_min_lr: 1e-5,
            early_stop_patience: 0,
            diffraction_units: crate::DiffractionUnits::Counts,
            flip_x: true,
            flip_y: false,
            swap_xy: true,
            coord_scale: 2.0,
        }
    }

    #[test]
    fn key_mappings_are_bijective() {
        for (f, k) in KEY_MAPPINGS {
            assert_eq!(legacy_key(f), *k);
            assert_eq!(field_name(k), *f);
        }
        assert_eq!(legacy_key("gridsize"), "gridsize");
        assert_eq!(field_name("nphotons"), "nphotons");
    }

    #[test]
    fn training_to_legacy_flattens_and_renames() {
        let m = custom_training().to_legacy();
        assert_eq!(m["N"], json!(128));
        assert_eq!(m["object.big"], json!(false));
        assert_eq!(m["probe.mask"], json!(true));
        assert_eq!(m["probe.trainable"], json!(true));
        assert_eq!(m["intensity_scale.trainable"], json!(false));
        assert_eq!(m["positions.provided"], json!(false));
        assert_eq!(m["output_prefix"], json!("out/run1"));
        assert_eq!(m["train_data_file_path"], json!("data/train.npz"));
        assert_eq!(m["amp_activation"], json!("swish"));
        assert!(!m.contains_key("model"));
        assert!(!m.contains_key("object_big"));
        // None is not written.
        assert!(!m.contains_key("test_data_file_path"));
        let d = TrainingConfig::default().to_legacy();
        for k in ["n_subsample", "subsample_seed", "neighbor_pool_size"] {
            assert!(!d.contains_key(k), "{k}");
        }
    }

    #[test]
    fn training_round_trips_through_legacy() {
        // Not validated: every field maps, also the (unsupported) real-space weights.
        let rs = TrainingConfig {
            realspace_mae_weight: 0.1,
            realspace_weight: 0.2,
            tv_weight: 0.3,
            ..custom_training()
        };
        assert_eq!(TrainingConfig::from_legacy(&rs.to_legacy()).unwrap(), rs);
        for cfg in [TrainingConfig::default(), custom_training()] {
            let back = TrainingConfig::from_legacy(&cfg.to_legacy()).unwrap();
            assert_eq!(back, cfg);
            // ... and through the full params view.
            let p = Params::from_training(&cfg.clone().validate().unwrap());
            assert_eq!(TrainingConfig::from_legacy(&p.to_legacy()).unwrap(), cfg);
        }
    }

    #[test]
    fn inference_round_trips_through_legacy() {
        let cfg = InferenceConfig {
            model: ModelConfig {
                gridsize: 2,
                ..Default::default()
            },
            model_path: Some(PathBuf::from("runs/a")),
            test_data_file: Some(PathBuf::from("test.npz")),
            n_groups: Some(100),
            n_subsample: None,
            subsample_seed: Some(3),
            neighbor_count: Some(7),
            debug: true,
            output_dir: PathBuf::from("inf"),
            enable_oversampling: true,
            neighbor_pool_size: Some(6),
            seed: 1,
            stitch_crop: 16,
            stitch_at: crate::StitchAt::Centres,
            batch_size: 4,
            diffraction_units: crate::DiffractionUnits::Amplitude,
            flip_x: false,
            flip_y: true,
            swap_xy: false,
            coord_scale: 0.5,
            register: true,
        };
        for c in [InferenceConfig::default(), cfg] {
            let m = c.to_legacy();
            assert_eq!(InferenceConfig::from_legacy(&m).unwrap(), c);
            let p = Params::from_inference(&c.clone().validate().unwrap());
            assert_eq!(InferenceConfig::from_legacy(&p.to_legacy()).unwrap(), c);
        }
        assert!(
            !InferenceConfig::default()
                .to_legacy()
                .contains_key("n_groups")
        );
    }

    #[test]
    fn params_view_has_legacy_training_and_derived_keys() {
        let cfg = TrainingConfig {
            model: ModelConfig {
                gridsize: 2,
                ..Default::default()
            },
            ..Default::default()
        };
        let m = Params::from_training(&cfg.validate().unwrap()).to_legacy();
        let expect = [
            ("N", json!(64)),
            ("gridsize", json!(2)),
            ("bigN", json!(68)),
            ("padded_size", json!(78)),
            ("offset", json!(4)),
            ("max_position_jitter", json!(10)),
            ("default_probe_scale", json!(0.7)),
            ("h5_path", json!("wts.h5")),
            ("big_gridsize", json!(10)),
            ("sim_jitter_scale", json!(0.0)),
            ("tv_weight", json!(0.0)),
            ("nimgs_train", json!(9)),
            ("nimgs_test", json!(3)),
            ("data_source", json!("generic")),
            ("set_phi", json!(false)),
            ("label", json!("")),
            ("size", json!(392)),
            ("npseed", json!(42)),
            ("debug", json!(true)),
            ("use_xla_translate", json!(true)),
            ("batch_size", json!(16)),
            ("nepochs", json!(50)),
            ("nll_weight", json!(1.0)),
            ("mae_weight", json!(0.0)),
            ("n_groups", json!(512)),
            ("neighbor_count", json!(4)),
            ("intensity_scale.trainable", json!(true)),
            ("positions.provided", json!(true)),
            ("probe.trainable", json!(false)),
            ("output_prefix", json!("training_outputs")),
            ("nphotons", json!(1e9)),
        ];
        for (k, v) in expect {
            assert_eq!(m.get(k), Some(&v), "key {k}");
        }
        assert!(!m.contains_key("intensity_scale"));
        assert!(!m.contains_key("probe"));
        assert!(!m.contains_key("outer_offset_train"));
    }

    #[test]
    fn runtime_entries_never_change_the_typed_config() {
        let cfg = custom_training();
        let p = Params::from_training(&cfg.clone().validate().unwrap()).with_intensity_scale(375.5);
        let m = p.to_legacy();
        assert_eq!(m["intensity_scale"], json!(375.5));
        assert_eq!(TrainingConfig::from_legacy(&m).unwrap(), cfg);
    }

    #[test]
    fn params_round_trip_through_legacy() {
        let p = Params::from_training(&custom_training().validate().unwrap())
            .with_intensity_scale(123.25);
        let q = Params::from_legacy(&p.to_legacy()).unwrap();
        assert_eq!(q, p);
        assert_eq!(q.to_legacy(), p.to_legacy());
    }

    #[test]
    fn from_legacy_reads_a_reference_snapshot() {
        // Subset of the reference archive's params.dill (goldens/tf_model_archive_dump.txt).
        let map: LegacyMap = serde_json::from_value(json!({
            "N": 64, "gridsize": 1, "offset": 4, "max_position_jitter": 10, "nphotons": 1e9,
            "intensity_scale": 988.211669921875, "object.big": true, "probe.big": true,
            "probe.mask": false, "probe_scale": 4.0, "amp_activation": "sigmoid",
            "outer_offset_train": null, "architecture": "cnn", "nepochs": 20, "n_groups": 1024,
            "output_prefix": "runs/tf_long/out", "bigN": 999
        }))
        .unwrap();
        let p = Params::from_legacy(&map).unwrap();
        assert_eq!(
            (p.n(), p.gridsize(), p.big_n(), p.padded_size()),
            (64, 1, 64, 74)
        );
        assert_eq!(p.intensity_scale(), 988.211669921875);
        let m = p.to_legacy();
        assert_eq!(m["bigN"], json!(64), "derived keys are recomputed");
        assert_eq!(m["architecture"], json!("cnn"), "unknown keys are kept");
        assert!(!m.contains_key("outer_offset_train"), "nulls are dropped");
        let t = TrainingConfig::from_legacy(&m).unwrap();
        assert_eq!((t.nepochs, t.n_groups), (20, 1024));
        assert_eq!(t.output_dir, PathBuf::from("runs/tf_long/out"));
    }

    #[test]
    fn from_legacy_errors_name_the_key() {
        let base =
            Params::from_training(&TrainingConfig::default().validate().unwrap()).to_legacy();
        let with = |k: &str, v: Value| {
            let mut m = base.clone();
            m.insert(k.into(), v);
            Params::from_legacy(&m).unwrap_err().to_string()
        };
        assert_eq!(
            with("gridsize", json!("two")),
            "legacy params: wrong value for key `gridsize`: invalid type: string \"two\", expected usize"
        );
        assert_eq!(
            with("N", json!(100)),
            "legacy params: invalid value for `N`: 100 (allowed: 64, 128, 256)"
        );
        assert_eq!(
            with("offset", json!(-1)),
            "legacy params: wrong value for key `offset`: expected an integer ≥ 0, found -1"
        );
        assert_eq!(
            with("nphotons", json!(0.0)),
            "legacy params: invalid value for `nphotons`: 0 (must be > 0 and finite)"
        );
        assert!(with("object.big", json!("yes")).contains("`object.big`"));
        let mut m = base.clone();
        m.remove("N");
        assert_eq!(
            Params::from_legacy(&m).unwrap_err().to_string(),
            "legacy params: missing required key `N`"
        );
    }

    #[test]
    fn legacy_defaults_are_the_reference_values() {
        let d = legacy_defaults();
        assert_eq!(d.len(), 16);
        assert_eq!(d["offset"], json!(4));
        assert_eq!(d["h5_path"], json!("wts.h5"));
        assert_eq!(d["debug"], json!(true));
    }
}
