//! The immutable params value: the only way downstream code (grouping, model building, simulation)
//! learns N, gridsize and the physics constants. CONFIG-001 by construction: a `Params` can only be
//! made from a validated config or restored from an archive's snapshot, and every consumer takes one
//! as an argument. There is no global state.
//!
//! The fields are private and there is no `Default`, so neither a struct literal nor
//! `Params::default()` compiles outside this crate:
//!
//! ```compile_fail,E0451
//! use ptycho_config::{ModelConfig, Params};
//! let p = Params {
//!     model: ModelConfig::default(),
//!     nphotons: 1e9,
//!     offset: 4,
//!     max_position_jitter: 10,
//!     default_probe_scale: 0.7,
//!     legacy: Default::default(),
//!     intensity_scale: None,
//!     probe: None,
//! };
//! ```
//!
//! ```compile_fail,E0277
//! let p: ptycho_config::Params = Default::default();
//! ```
//!
//! The way in is a validated config (or [`Params::from_legacy`] for an archive snapshot):
//!
//! ```
//! use ptycho_config::{ModelConfig, Params, TrainingConfig};
//! let cfg = TrainingConfig {
//!     model: ModelConfig { gridsize: 2, ..Default::default() },
//!     ..Default::default()
//! };
//! let params = Params::from_training(&cfg.validate()?);
//! assert_eq!((params.big_n(), params.padded_size(), params.channels()), (68, 78, 4));
//! # Ok::<(), ptycho_config::ConfigError>(())
//! ```

use num_complex::Complex32;
use serde_json::{Value, json};

use crate::error::ConfigError;
use crate::inference::InferenceConfig;
pub use crate::legacy::{
    DEFAULT_MAX_POSITION_JITTER, DEFAULT_NPHOTONS, DEFAULT_OFFSET, DEFAULT_PROBE_SCALE,
};
use crate::legacy::{
    LEGACY_ORIGIN, LegacyMap, flatten, legacy_defaults, model_from_legacy, strip_typed_keys,
    with_model,
};
use crate::model::ModelConfig;
use crate::training::TrainingConfig;
use crate::validate::Valid;

/// The normalised probe attached to a params value at run time: N×N complex amplitude, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeField {
    pub n: usize,
    pub data: Vec<Complex32>,
}

/// Immutable, validated parameters. Build with [`Params::from_training`] / [`Params::from_inference`]
/// (after `validate()`), or [`Params::from_legacy`] when restoring an archive.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    pub(crate) model: ModelConfig,
    pub(crate) nphotons: f64,
    pub(crate) offset: usize,
    pub(crate) max_position_jitter: usize,
    pub(crate) default_probe_scale: f64,
    /// Every other legacy entry (legacy-only keys, training / inference keys); never the model
    /// keys, the typed fields above, the derived keys or the runtime entries.
    pub(crate) legacy: LegacyMap,
    pub(crate) intensity_scale: Option<f64>,
    pub(crate) probe: Option<ProbeField>,
}

impl Params {
    /// The one constructor: the typed values, and the other legacy entries (`config_keys`, over
    /// the legacy defaults; typed, derived and runtime keys dropped).
    fn build(
        model: ModelConfig,
        nphotons: f64,
        offset: usize,
        max_position_jitter: usize,
        default_probe_scale: f64,
        intensity_scale: Option<f64>,
        config_keys: impl IntoIterator<Item = (String, Value)>,
    ) -> Params {
        let mut legacy = legacy_defaults();
        legacy.extend(config_keys);
        strip_typed_keys(&mut legacy);
        Params {
            model,
            nphotons,
            offset,
            max_position_jitter,
            default_probe_scale,
            legacy,
            intensity_scale,
            probe: None,
        }
    }

    /// Bridge a validated training config into the params value (the reference's
    /// `update_legacy_dict`): model keys, nphotons and the training keys over the legacy defaults.
    pub fn from_training(cfg: &Valid<TrainingConfig>) -> Params {
        Params::build(
            cfg.model.clone(),
            cfg.nphotons,
            DEFAULT_OFFSET,
            DEFAULT_MAX_POSITION_JITTER,
            DEFAULT_PROBE_SCALE,
            None,
            cfg.to_legacy(),
        )
    }

    /// Bridge a validated inference config into the params value. `nphotons` is the legacy default
    /// 1e9 (an inference config has none); an archive's params come from [`Params::from_legacy`].
    pub fn from_inference(cfg: &Valid<InferenceConfig>) -> Params {
        Params::build(
            cfg.model.clone(),
            DEFAULT_NPHOTONS,
            DEFAULT_OFFSET,
            DEFAULT_MAX_POSITION_JITTER,
            DEFAULT_PROBE_SCALE,
            None,
            cfg.to_legacy(),
        )
    }

    pub fn model(&self) -> &ModelConfig {
        &self.model
    }
    /// Patch size N in pixels.
    pub fn n(&self) -> usize {
        self.model.n
    }
    pub fn gridsize(&self) -> usize {
        self.model.gridsize
    }
    /// Patches per group, C = gridsize².
    pub fn channels(&self) -> usize {
        self.model.channels()
    }
    /// Mean photons per diffraction pattern (counts).
    pub fn nphotons(&self) -> f64 {
        self.nphotons
    }
    /// Legacy `offset` (pixels between grid neighbours), default 4.
    pub fn offset(&self) -> usize {
        self.offset
    }
    /// Padding buffer in pixels, default 10.
    pub fn max_position_jitter(&self) -> usize {
        self.max_position_jitter
    }
    /// Width parameter of the simulator's default probe, default 0.7.
    pub fn default_probe_scale(&self) -> f64 {
        self.default_probe_scale
    }
    /// bigN = N + (gridsize − 1)·offset, in pixels (68 for N=64, gridsize 2).
    pub fn big_n(&self) -> usize {
        self.model.n + (self.model.gridsize - 1) * self.offset
    }
    /// Side in pixels of the in-model canvas: P = bigN + max_position_jitter (74 for N=64 gs=1, 78
    /// for gs=2).
    pub fn padded_size(&self) -> usize {
        self.big_n() + self.max_position_jitter
    }
    /// The physics intensity scale s = sqrt(nphotons)/(N/2) (amplitude units per normalised
    /// amplitude) unless a runtime value was attached.
    pub fn intensity_scale(&self) -> f64 {
        self.intensity_scale
            .unwrap_or_else(|| self.nphotons.sqrt() / (self.model.n as f64 / 2.0))
    }
    /// The runtime intensity scale, if one was attached (or restored from a snapshot).
    pub fn runtime_intensity_scale(&self) -> Option<f64> {
        self.intensity_scale
    }
    /// The runtime probe, if one was attached.
    pub fn probe(&self) -> Option<&ProbeField> {
        self.probe.as_ref()
    }
    /// A copy with the runtime intensity scale attached (never changes the typed config).
    pub fn with_intensity_scale(mut self, s: f64) -> Self {
        self.intensity_scale = Some(s);
        self
    }
    /// A copy with the runtime (normalised) probe attached (never changes the typed config).
    pub fn with_probe(mut self, probe: ProbeField) -> Self {
        self.probe = Some(probe);
        self
    }
}

fn typed<T>(
    map: &LegacyMap,
    key: &'static str,
    read: impl Fn(&Value) -> Option<T>,
    expected: &str,
) -> Result<Option<T>, ConfigError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => read(v).map(Some).ok_or_else(|| ConfigError::WrongType {
            origin: LEGACY_ORIGIN.into(),
            key: key.into(),
            message: format!("expected {expected}, found {v}"),
        }),
    }
}

fn in_legacy(error: ConfigError) -> ConfigError {
    ConfigError::InFile {
        origin: LEGACY_ORIGIN.into(),
        error: Box::new(error),
    }
}

fn positive(field: &'static str, x: f64) -> Result<f64, ConfigError> {
    if x.is_finite() && x > 0.0 {
        Ok(x)
    } else {
        Err(in_legacy(ConfigError::Invalid {
            field,
            value: x.to_string(),
            allowed: "must be > 0 and finite".into(),
        }))
    }
}

impl Params {
    /// The flat legacy view: legacy-only keys (reference defaults), the config's keys (model,
    /// nphotons and, when built from a training / inference config, that config's keys), derived
    /// `bigN` / `padded_size` and the runtime `intensity_scale` if attached. The probe is not
    /// included (see [`Params::probe`]).
    pub fn to_legacy(&self) -> LegacyMap {
        let mut map = self.legacy.clone();
        map.extend(flatten(
            with_model(json!({}), &self.model).unwrap_or(Value::Null),
        ));
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

    /// Restore a params value from a legacy map (an archive snapshot). `N` and `gridsize` are
    /// required (as in the reference loader); the model keys are validated; other absent keys take
    /// their defaults; `bigN` / `padded_size` are recomputed; `intensity_scale` is restored as the
    /// runtime value. The probe is attached separately with [`Params::with_probe`].
    pub fn from_legacy(map: &LegacyMap) -> Result<Params, ConfigError> {
        for key in ["N", "gridsize"] {
            if map.get(key).is_none_or(Value::is_null) {
                return Err(ConfigError::MissingKey {
                    origin: LEGACY_ORIGIN.into(),
                    key,
                });
            }
        }
        let model = model_from_legacy(map)?;
        model.check().map_err(in_legacy)?;
        let as_usize = |v: &Value| v.as_u64().map(|u| u as usize);
        let nphotons =
            typed(map, "nphotons", Value::as_f64, "a number")?.unwrap_or(DEFAULT_NPHOTONS);
        let nphotons = positive("nphotons", nphotons)?;
        let offset = typed(map, "offset", as_usize, "an integer ≥ 0")?.unwrap_or(DEFAULT_OFFSET);
        let max_position_jitter = typed(map, "max_position_jitter", as_usize, "an integer ≥ 0")?
            .unwrap_or(DEFAULT_MAX_POSITION_JITTER);
        let default_probe_scale = typed(map, "default_probe_scale", Value::as_f64, "a number")?
            .unwrap_or(DEFAULT_PROBE_SCALE);
        let default_probe_scale = positive("default_probe_scale", default_probe_scale)?;
        let intensity_scale = typed(map, "intensity_scale", Value::as_f64, "a number")?
            .map(|s| positive("intensity_scale", s))
            .transpose()?;
        Ok(Params::build(
            model,
            nphotons,
            offset,
            max_position_jitter,
            default_probe_scale,
            intensity_scale,
            map.iter().map(|(k, v)| (k.clone(), v.clone())),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(n: usize, gridsize: usize) -> Params {
        let cfg = TrainingConfig {
            model: ModelConfig {
                n,
                gridsize,
                ..Default::default()
            },
            neighbor_count: 4.max(gridsize * gridsize),
            ..Default::default()
        };
        Params::from_training(&cfg.validate().unwrap())
    }

    #[test]
    fn derived_sizes_match_the_reference() {
        let cases = [
            // (N, gridsize, bigN, padded_size, channels)
            (64, 1, 64, 74, 1),
            (64, 2, 68, 78, 4),
            (128, 1, 128, 138, 1),
            (128, 2, 132, 142, 4),
            (256, 1, 256, 266, 1),
            (64, 3, 72, 82, 9),
        ];
        for (n, gs, big_n, padded, c) in cases {
            let p = params(n, gs);
            assert_eq!(p.big_n(), big_n, "bigN for N={n} gs={gs}");
            assert_eq!(p.padded_size(), padded, "padded_size for N={n} gs={gs}");
            assert_eq!(p.channels(), c);
            assert_eq!((p.n(), p.gridsize()), (n, gs));
        }
    }

    #[test]
    fn legacy_only_values_have_reference_defaults() {
        let p = params(64, 1);
        assert_eq!(p.offset(), 4);
        assert_eq!(p.max_position_jitter(), 10);
        assert_eq!(p.default_probe_scale(), 0.7);
        assert_eq!(p.nphotons(), 1e9);
    }

    #[test]
    fn intensity_scale_default_and_runtime() {
        let p = params(64, 1);
        // sqrt(1e9) / 32 = 988.2117688...
        assert!((p.intensity_scale() - 988.211_768_802_618_5).abs() < 1e-9);
        assert_eq!(p.runtime_intensity_scale(), None);
        let q = p.clone().with_intensity_scale(375.5);
        assert_eq!(q.intensity_scale(), 375.5);
        assert_eq!(q.model(), p.model());
        let probe = ProbeField {
            n: 64,
            data: vec![Complex32::new(1.0, 0.0); 64 * 64],
        };
        let r = q.with_probe(probe.clone());
        assert_eq!(r.probe(), Some(&probe));
        assert_eq!(r.model(), p.model());
        assert_eq!(r.nphotons(), p.nphotons());
    }

    #[test]
    fn from_inference_uses_the_legacy_nphotons() {
        let cfg = InferenceConfig {
            model: ModelConfig {
                n: 128,
                ..Default::default()
            },
            ..Default::default()
        };
        let p = Params::from_inference(&cfg.validate().unwrap());
        assert_eq!(p.n(), 128);
        assert_eq!(p.nphotons(), DEFAULT_NPHOTONS);
        assert_eq!(p.padded_size(), 138);
    }
}
