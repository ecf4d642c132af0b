//! Unchecked config → `validate()` → [`Valid`] config (linfa style).
//!
//! Rules: spec §1.4 plus what a user needs so that a run cannot fail late on a value that was wrong
//! from the start. Each rule returns [`ConfigError::Invalid`] naming the field, the value and the
//! allowed range. Rules are split into per-field ranges (`check_fields`, also applied to a config
//! file on its own) and relations between fields (`check_relations`, applied once flags are in).

use std::ops::Deref;

use crate::error::ConfigError;
use crate::model::ModelConfig;
use crate::params::Params;
use crate::training::{InferenceConfig, TrainingConfig};

/// A config that passed validation. Only `validate()` makes one.
#[derive(Debug, Clone, PartialEq)]
pub struct Valid<T>(T);

impl<T> Deref for Valid<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> Valid<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

/// Allowed patch sizes N (pixels).
pub const ALLOWED_N: [usize; 3] = [64, 128, 256];

fn ensure(
    ok: bool,
    field: &'static str,
    value: impl ToString,
    allowed: &str,
) -> Result<(), ConfigError> {
    if ok {
        Ok(())
    } else {
        Err(ConfigError::Invalid {
            field,
            value: value.to_string(),
            allowed: allowed.to_string(),
        })
    }
}

fn positive_finite(field: &'static str, x: f64) -> Result<(), ConfigError> {
    ensure(x.is_finite() && x > 0.0, field, x, "must be > 0 and finite")
}

fn non_negative_finite(field: &'static str, x: f64) -> Result<(), ConfigError> {
    ensure(
        x.is_finite() && x >= 0.0,
        field,
        x,
        "must be ≥ 0 and finite",
    )
}

fn unit_interval(field: &'static str, x: f64) -> Result<(), ConfigError> {
    ensure((0.0..=1.0).contains(&x), field, x, "must be in [0, 1]")
}

fn at_least_one_if_given(field: &'static str, x: Option<usize>) -> Result<(), ConfigError> {
    match x {
        Some(v) => ensure(v >= 1, field, v, "must be ≥ 1 when given"),
        None => Ok(()),
    }
}

/// K ≥ C and, when given, neighbor_pool_size ≥ C (spec §2.3: the grouping needs C neighbours).
fn check_neighbours(
    model: &ModelConfig,
    neighbor_count: usize,
    neighbor_pool_size: Option<usize>,
) -> Result<(), ConfigError> {
    let c = model.channels();
    ensure(
        neighbor_count >= c,
        "neighbor_count",
        neighbor_count,
        &format!("must be ≥ gridsize² = {c}"),
    )?;
    if let Some(p) = neighbor_pool_size {
        ensure(
            p >= c,
            "neighbor_pool_size",
            p,
            &format!("must be ≥ gridsize² = {c} when given"),
        )?;
    }
    Ok(())
}

impl ModelConfig {
    /// Model rules (spec §1.4 `validate_model_config`, plus N ∈ {64, 128, 256}).
    pub fn check(&self) -> Result<(), ConfigError> {
        ensure(
            ALLOWED_N.contains(&self.n),
            "N",
            self.n,
            "allowed: 64, 128, 256",
        )?;
        ensure(self.gridsize >= 1, "gridsize", self.gridsize, "must be ≥ 1")?;
        ensure(
            self.n_filters_scale >= 1,
            "n_filters_scale",
            self.n_filters_scale,
            "must be ≥ 1",
        )?;
        positive_finite("probe_scale", self.probe_scale)?;
        non_negative_finite("gaussian_smoothing_sigma", self.gaussian_smoothing_sigma)?;
        Ok(())
    }
}

impl TrainingConfig {
    /// Range rules of single fields (model rules included).
    pub fn check_fields(&self) -> Result<(), ConfigError> {
        self.model.check()?;
        ensure(
            self.batch_size.is_power_of_two(),
            "batch_size",
            self.batch_size,
            "must be a power of two: 1, 2, 4, 8, 16, ...",
        )?;
        ensure(self.nepochs > 0, "nepochs", self.nepochs, "must be ≥ 1")?;
        unit_interval("mae_weight", self.mae_weight)?;
        unit_interval("nll_weight", self.nll_weight)?;
        non_negative_finite("realspace_mae_weight", self.realspace_mae_weight)?;
        non_negative_finite("realspace_weight", self.realspace_weight)?;
        positive_finite("nphotons", self.nphotons)?;
        ensure(self.n_groups > 0, "n_groups", self.n_groups, "must be ≥ 1")?;
        check_sampling_fields(
            self.n_subsample,
            self.neighbor_count,
            self.neighbor_pool_size,
            &self.output_dir,
        )?;
        positive_finite("learning_rate", self.learning_rate)?;
        ensure(
            (0.0..1.0).contains(&self.validation_fraction),
            "validation_fraction",
            self.validation_fraction,
            "must be in [0, 1)",
        )?;
        ensure(
            self.plateau_factor > 0.0 && self.plateau_factor < 1.0,
            "plateau_factor",
            self.plateau_factor,
            "must be in (0, 1)",
        )?;
        non_negative_finite("plateau_min_lr", self.plateau_min_lr)?;
        Ok(())
    }

    /// Rules that relate several fields.
    pub fn check_relations(&self) -> Result<(), ConfigError> {
        check_neighbours(&self.model, self.neighbor_count, self.neighbor_pool_size)?;
        // The reference's params.validate(): a real-space MAE term needs the real-space loss on.
        ensure(
            self.realspace_mae_weight == 0.0 || self.realspace_weight > 0.0,
            "realspace_weight",
            self.realspace_weight,
            &format!(
                "must be > 0 when realspace_mae_weight > 0 (it is {})",
                self.realspace_mae_weight
            ),
        )?;
        ensure(
            self.nll_weight > 0.0 || self.mae_weight > 0.0 || self.realspace_weight > 0.0,
            "nll_weight",
            self.nll_weight,
            "nll_weight, mae_weight and realspace_weight are all 0: nothing to train on",
        )?;
        Ok(())
    }

    /// All rules; the only way to a [`Valid<TrainingConfig>`].
    pub fn validate(self) -> Result<Valid<TrainingConfig>, ConfigError> {
        self.check_fields()?;
        self.check_relations()?;
        Ok(Valid(self))
    }
}

/// Rules shared by training and inference: subsampling, neighbour counts, output directory.
fn check_sampling_fields(
    n_subsample: Option<usize>,
    neighbor_count: usize,
    neighbor_pool_size: Option<usize>,
    output_dir: &std::path::Path,
) -> Result<(), ConfigError> {
    at_least_one_if_given("n_subsample", n_subsample)?;
    ensure(
        neighbor_count >= 1,
        "neighbor_count",
        neighbor_count,
        "must be ≥ 1",
    )?;
    at_least_one_if_given("neighbor_pool_size", neighbor_pool_size)?;
    ensure(
        !output_dir.as_os_str().is_empty(),
        "output_dir",
        "\"\"",
        "must not be empty",
    )
}

impl InferenceConfig {
    /// Range rules of single fields (model rules included).
    pub fn check_fields(&self) -> Result<(), ConfigError> {
        self.model.check()?;
        at_least_one_if_given("n_groups", self.n_groups)?;
        check_sampling_fields(
            self.n_subsample,
            self.neighbor_count,
            self.neighbor_pool_size,
            &self.output_dir,
        )?;
        ensure(
            self.batch_size >= 1,
            "batch_size",
            self.batch_size,
            "must be ≥ 1",
        )?;
        Ok(())
    }

    /// Rules that relate several fields.
    pub fn check_relations(&self) -> Result<(), ConfigError> {
        check_neighbours(&self.model, self.neighbor_count, self.neighbor_pool_size)?;
        ensure(
            (1..=self.model.n).contains(&self.stitch_crop),
            "stitch_crop",
            self.stitch_crop,
            &format!("must be in 1..={} (N)", self.model.n),
        )?;
        Ok(())
    }

    /// All rules; the only way to a [`Valid<InferenceConfig>`]. Whether `model_path` holds an
    /// archive is checked when the archive is opened, not here.
    pub fn validate(self) -> Result<Valid<InferenceConfig>, ConfigError> {
        self.check_fields()?;
        self.check_relations()?;
        Ok(Valid(self))
    }
}

impl Params {
    /// Bridge a validated training config into the params value (the reference's
    /// `update_legacy_dict`): model keys, nphotons and the training keys over the legacy defaults.
    pub fn from_training(cfg: &Valid<TrainingConfig>) -> Params {
        Params::bridge(cfg.model.clone(), cfg.nphotons, cfg.to_legacy())
    }

    /// Bridge a validated inference config into the params value. `nphotons` is the legacy default
    /// 1e9 (an inference config has none); an archive's params come from [`Params::from_legacy`].
    pub fn from_inference(cfg: &Valid<InferenceConfig>) -> Params {
        Params::bridge(
            cfg.model.clone(),
            crate::params::DEFAULT_NPHOTONS,
            cfg.to_legacy(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ModelConfig;

    fn train_err(f: impl FnOnce(&mut TrainingConfig)) -> ConfigError {
        let mut c = TrainingConfig::default();
        f(&mut c);
        c.validate().unwrap_err()
    }

    fn field_of(e: &ConfigError) -> &'static str {
        match e {
            ConfigError::Invalid { field, .. } => field,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn defaults_are_valid() {
        assert!(TrainingConfig::default().validate().is_ok());
        assert!(InferenceConfig::default().validate().is_ok());
    }

    #[test]
    fn each_training_rule_names_its_field() {
        type Case = (&'static str, fn(&mut TrainingConfig));
        let cases: Vec<Case> = vec![
            ("N", |c| c.model.n = 100),
            ("gridsize", |c| c.model.gridsize = 0),
            ("n_filters_scale", |c| c.model.n_filters_scale = 0),
            ("probe_scale", |c| c.model.probe_scale = 0.0),
            ("probe_scale", |c| c.model.probe_scale = f64::NAN),
            ("gaussian_smoothing_sigma", |c| {
                c.model.gaussian_smoothing_sigma = -0.5
            }),
            ("batch_size", |c| c.batch_size = 12),
            ("batch_size", |c| c.batch_size = 0),
            ("nepochs", |c| c.nepochs = 0),
            ("mae_weight", |c| c.mae_weight = 1.5),
            ("nll_weight", |c| c.nll_weight = -0.1),
            ("nll_weight", |c| c.nll_weight = f64::NAN),
            ("realspace_weight", |c| c.realspace_weight = -1.0),
            ("nphotons", |c| c.nphotons = 0.0),
            ("nphotons", |c| c.nphotons = f64::INFINITY),
            ("n_groups", |c| c.n_groups = 0),
            ("n_subsample", |c| c.n_subsample = Some(0)),
            ("neighbor_count", |c| c.neighbor_count = 0),
            ("learning_rate", |c| c.learning_rate = 0.0),
            ("validation_fraction", |c| c.validation_fraction = 1.0),
            ("plateau_factor", |c| c.plateau_factor = 1.0),
            ("output_dir", |c| c.output_dir = "".into()),
            // relations
            ("neighbor_count", |c| {
                c.model.gridsize = 3;
                c.neighbor_count = 8;
            }),
            ("neighbor_pool_size", |c| {
                c.model.gridsize = 2;
                c.neighbor_pool_size = Some(3);
            }),
            ("realspace_weight", |c| c.realspace_mae_weight = 0.5),
            ("nll_weight", |c| c.nll_weight = 0.0),
        ];
        for (field, f) in cases {
            let e = train_err(f);
            assert_eq!(field_of(&e), field, "{e}");
        }
    }

    #[test]
    fn boundary_values_are_accepted() {
        let c = TrainingConfig {
            model: ModelConfig {
                n: 256,
                gridsize: 3,
                ..Default::default()
            },
            batch_size: 1,
            mae_weight: 1.0,
            nll_weight: 0.0,
            neighbor_count: 9,
            validation_fraction: 0.0,
            realspace_mae_weight: 0.5,
            realspace_weight: 2.0,
            ..Default::default()
        };
        assert!(c.validate().is_ok());
    }

    #[test]
    fn message_is_one_line_with_field_value_and_range() {
        let e = train_err(|c| c.batch_size = 12);
        assert_eq!(
            e.to_string(),
            "invalid value for `batch_size`: 12 (must be a power of two: 1, 2, 4, 8, 16, ...)"
        );
        let e = train_err(|c| {
            c.model.gridsize = 2;
            c.neighbor_count = 3;
        });
        assert_eq!(
            e.to_string(),
            "invalid value for `neighbor_count`: 3 (must be ≥ gridsize² = 4)"
        );
    }

    #[test]
    fn inference_rules() {
        let bad = |f: fn(&mut InferenceConfig)| {
            let mut c = InferenceConfig::default();
            f(&mut c);
            field_of(&c.validate().unwrap_err())
        };
        assert_eq!(bad(|c| c.model.n = 32), "N");
        assert_eq!(bad(|c| c.n_groups = Some(0)), "n_groups");
        assert_eq!(bad(|c| c.stitch_crop = 0), "stitch_crop");
        assert_eq!(bad(|c| c.stitch_crop = 65), "stitch_crop");
        assert_eq!(bad(|c| c.batch_size = 0), "batch_size");
        assert_eq!(
            bad(|c| {
                c.model.gridsize = 2;
                c.neighbor_count = 2
            }),
            "neighbor_count"
        );
    }
}
