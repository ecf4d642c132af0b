//! Unchecked config → `validate()` → [`Valid`] config (linfa style). Every rule of every setting
//! is in this file.
//!
//! Rules: spec §1.4 plus what a user needs so that a run cannot fail late on a value that was wrong
//! from the start. Each rule returns [`ConfigError::Invalid`] naming the field, the value and the
//! allowed range. Rules are split into per-field ranges (`check_fields`, also applied to a config
//! file on its own) and relations between fields (`check_relations`, applied once flags are in).
//! What depends on the data or on a loaded archive (enough scan points, K ≥ C for the archive's
//! gridsize, M ≤ the archive's N, memory) is checked where that is known.

use std::ops::Deref;

use crate::error::ConfigError;
use crate::evaluation::EvaluationConfig;
use crate::grouping::GroupingConfig;
use crate::inference::{DEFAULT_NEIGHBOR_COUNT, InferenceConfig};
use crate::model::ModelConfig;
use crate::simulation::SimulationConfig;
use crate::training::TrainingConfig;

/// A config that passed validation. Only `validate()` makes one (or, inside this crate, a
/// derivation from another valid config, such as [`Valid::<TrainingConfig>::grouping`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Valid<T>(pub(crate) T);

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

/// Largest stitching crop M (pixels): the largest allowed N.
pub const MAX_STITCH_CROP: usize = 256;

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

/// The stitching crop M: even (stitching takes the central M×M window around the patch centre)
/// and 2 ≤ M ≤ 256; M ≤ the model's N is checked where the model is known.
fn check_stitch_crop(m: usize) -> Result<(), ConfigError> {
    ensure(
        m.is_multiple_of(2) && (2..=MAX_STITCH_CROP).contains(&m),
        "stitch_crop",
        m,
        &format!(
            "must be an even number of pixels in 2..={MAX_STITCH_CROP}, at most the model's N"
        ),
    )
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
        non_negative_finite("tv_weight", self.tv_weight)?;
        positive_finite("nphotons", self.nphotons)?;
        ensure(self.n_groups > 0, "n_groups", self.n_groups, "must be ≥ 1")?;
        check_sampling_fields(
            self.n_subsample,
            Some(self.neighbor_count),
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
        positive_finite("coord_scale", self.coord_scale)?;
        Ok(())
    }

    /// Rules that relate several fields.
    pub fn check_relations(&self) -> Result<(), ConfigError> {
        check_neighbours(&self.model, self.neighbor_count, self.neighbor_pool_size)?;
        // The reference's params.validate(): realspace_mae_weight > 0 needs realspace_weight > 0
        // (the inner weight would do nothing); the same holds for tv_weight.
        for (field, w) in [
            ("realspace_mae_weight", self.realspace_mae_weight),
            ("tv_weight", self.tv_weight),
        ] {
            ensure(
                w == 0.0 || self.realspace_weight > 0.0,
                field,
                w,
                "> 0 needs realspace_weight > 0: the real-space loss is off",
            )?;
        }
        ensure(
            self.realspace_weight == 0.0 || self.realspace_mae_weight > 0.0 || self.tv_weight > 0.0,
            "realspace_weight",
            self.realspace_weight,
            "> 0 needs realspace_mae_weight > 0 or tv_weight > 0: the real-space loss would be 0",
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
    neighbor_count: Option<usize>,
    neighbor_pool_size: Option<usize>,
    output_dir: &std::path::Path,
) -> Result<(), ConfigError> {
    at_least_one_if_given("n_subsample", n_subsample)?;
    if let Some(k) = neighbor_count {
        ensure(k >= 1, "neighbor_count", k, "must be ≥ 1")?;
    }
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
        check_stitch_crop(self.stitch_crop)?;
        positive_finite("coord_scale", self.coord_scale)?;
        Ok(())
    }

    /// Rules that relate several fields. (`stitch_crop` ≤ N is checked against the archive's N
    /// when it is loaded: the archive, not `model`, decides N.)
    pub fn check_relations(&self) -> Result<(), ConfigError> {
        // The model here is the config's (the archive's replaces it); an explicit K is checked
        // again against the archive's gridsize by `grouping`.
        check_neighbours(
            &self.model,
            self.neighbor_count_for(self.model.gridsize),
            self.neighbor_pool_size,
        )
    }

    /// All rules; the only way to a [`Valid<InferenceConfig>`]. Whether `model_path` holds an
    /// archive is checked when the archive is opened, not here.
    pub fn validate(self) -> Result<Valid<InferenceConfig>, ConfigError> {
        self.check_fields()?;
        self.check_relations()?;
        Ok(Valid(self))
    }
}

impl SimulationConfig {
    /// Range rules of single fields.
    pub fn check_fields(&self) -> Result<(), ConfigError> {
        ensure(self.n_images >= 1, "n_images", self.n_images, "must be ≥ 1")?;
        ensure(
            self.n >= 4 && self.n.is_multiple_of(2),
            "N",
            self.n,
            "the pattern size must be an even number of pixels ≥ 4",
        )?;
        positive_finite("nphotons", self.nphotons)?;
        if let Some(b) = self.buffer {
            non_negative_finite("buffer", b)?;
        }
        positive_finite("default_probe_scale", self.default_probe_scale)?;
        Ok(())
    }

    /// Rules that relate several fields.
    pub fn check_relations(&self) -> Result<(), ConfigError> {
        if let (Some(side), Some(file)) = (self.object_size, &self.input_file) {
            return ensure(
                false,
                "object_size",
                side,
                &format!(
                    "not used with input_file {}: the object is the file's objectGuess",
                    file.display()
                ),
            );
        }
        let side = self.object_side();
        ensure(
            side >= self.n,
            "object_size",
            side,
            &format!("the object must be at least N = {} pixels wide", self.n),
        )
    }

    /// All rules; the only way to a [`Valid<SimulationConfig>`].
    pub fn validate(self) -> Result<Valid<SimulationConfig>, ConfigError> {
        self.check_fields()?;
        self.check_relations()?;
        Ok(Valid(self))
    }
}

impl EvaluationConfig {
    /// Range rules of single fields.
    pub fn check_fields(&self) -> Result<(), ConfigError> {
        self.stitch_crop.map_or(Ok(()), check_stitch_crop)
    }

    /// All rules; the only way to a [`Valid<EvaluationConfig>`].
    pub fn validate(self) -> Result<Valid<EvaluationConfig>, ConfigError> {
        self.check_fields()?;
        Ok(Valid(self))
    }
}

impl GroupingConfig {
    /// All rules of grouping settings taken on their own (a grouping taken from a valid training
    /// or inference config satisfies them).
    pub fn validate(self) -> Result<Valid<GroupingConfig>, ConfigError> {
        ensure(self.n_groups >= 1, "n_groups", self.n_groups, "must be ≥ 1")?;
        ensure(
            self.neighbor_count >= 1,
            "neighbor_count",
            self.neighbor_count,
            "must be ≥ 1",
        )?;
        at_least_one_if_given("neighbor_pool_size", self.neighbor_pool_size)?;
        Ok(Valid(self))
    }
}

impl Valid<TrainingConfig> {
    /// The grouping settings of this training run.
    pub fn grouping(&self) -> Valid<GroupingConfig> {
        Valid(self.grouping_part())
    }
}

impl Valid<InferenceConfig> {
    /// The grouping settings of an inference on `total` scan points with a model of `gridsize`
    /// (the archive's): [`InferenceConfig::group_count`] groups (one per scan point unless
    /// `n_groups` says otherwise; a random draw of seeds when fewer), each seed the first member
    /// of its group, K from [`InferenceConfig::neighbor_count_for`]. A configured K smaller than
    /// the model's group size C = gridsize² is refused, naming the key and the flag.
    pub fn grouping(
        &self,
        total: usize,
        gridsize: usize,
    ) -> Result<Valid<GroupingConfig>, ConfigError> {
        let c = gridsize * gridsize;
        let k = self.neighbor_count_for(gridsize);
        ensure(
            c <= 1 || k >= c,
            "neighbor_count",
            k,
            &format!(
                "must be ≥ the model's gridsize² = {c}; leave --neighbor-count unset for \
                 max({DEFAULT_NEIGHBOR_COUNT}, gridsize²)"
            ),
        )?;
        Ok(Valid(GroupingConfig {
            n_groups: self.group_count(total, gridsize),
            neighbor_count: k,
            seed: self.seed,
            sequential_sampling: false,
            enable_oversampling: self.enable_oversampling,
            neighbor_pool_size: self.neighbor_pool_size,
            seed_in_group: true,
        }))
    }
}

impl Valid<InferenceConfig> {
    /// The evaluation settings of this inference (its stitching crop, registration or not).
    pub fn evaluation(&self) -> Valid<EvaluationConfig> {
        Valid(EvaluationConfig {
            stitch_crop: Some(self.stitch_crop),
            diffraction_units: self.diffraction_units,
            register: self.register,
        })
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
        assert!(SimulationConfig::default().validate().is_ok());
        assert!(EvaluationConfig::default().validate().is_ok());
        assert!(GroupingConfig::default().validate().is_ok());
    }

    #[test]
    fn simulation_rules() {
        let bad = |f: fn(&mut SimulationConfig)| {
            let mut c = SimulationConfig::default();
            f(&mut c);
            field_of(&c.validate().unwrap_err())
        };
        assert_eq!(bad(|c| c.n = 63), "N");
        assert_eq!(bad(|c| c.n = 2), "N");
        assert_eq!(bad(|c| c.n_images = 0), "n_images");
        assert_eq!(bad(|c| c.nphotons = -1.0), "nphotons");
        assert_eq!(bad(|c| c.buffer = Some(f64::NAN)), "buffer");
        assert_eq!(bad(|c| c.default_probe_scale = 0.0), "default_probe_scale");
        assert_eq!(bad(|c| c.object_size = Some(63)), "object_size");
        let ok = SimulationConfig {
            n: 128,
            object_size: Some(128),
            buffer: Some(0.0),
            ..Default::default()
        };
        assert!(ok.validate().is_ok());
        let e = SimulationConfig {
            n: 63,
            ..Default::default()
        }
        .validate()
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid value for `N`: 63 (the pattern size must be an even number of pixels ≥ 4)"
        );
    }

    #[test]
    fn grouping_rules() {
        let bad = |f: fn(&mut GroupingConfig)| {
            let mut c = GroupingConfig::default();
            f(&mut c);
            field_of(&c.validate().unwrap_err())
        };
        assert_eq!(bad(|c| c.n_groups = 0), "n_groups");
        assert_eq!(bad(|c| c.neighbor_count = 0), "neighbor_count");
        assert_eq!(
            bad(|c| c.neighbor_pool_size = Some(0)),
            "neighbor_pool_size"
        );
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
            ("realspace_weight", |c| c.realspace_weight = f64::NAN),
            ("realspace_mae_weight", |c| c.realspace_mae_weight = -0.5),
            ("tv_weight", |c| c.tv_weight = f64::INFINITY),
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
            ("nll_weight", |c| c.nll_weight = 0.0),
            ("realspace_mae_weight", |c| c.realspace_mae_weight = 0.5),
            ("tv_weight", |c| c.tv_weight = 0.5),
            ("realspace_weight", |c| c.realspace_weight = 0.5),
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

    /// The real-space loss weights: the reference's rule (an inner weight needs the outer one),
    /// its converse (an outer weight with no inner one would add 0), and real-space-only training.
    #[test]
    fn realspace_weights_must_be_consistent() {
        let e = train_err(|c| c.realspace_weight = 0.5);
        assert_eq!(
            e.to_string(),
            "invalid value for `realspace_weight`: 0.5 (> 0 needs realspace_mae_weight > 0 or tv_weight > 0: the real-space loss would be 0)"
        );
        let e = train_err(|c| c.realspace_mae_weight = 0.25);
        assert_eq!(
            e.to_string(),
            "invalid value for `realspace_mae_weight`: 0.25 (> 0 needs realspace_weight > 0: the real-space loss is off)"
        );
        let ok = |f: fn(&mut TrainingConfig)| {
            let mut c = TrainingConfig::default();
            f(&mut c);
            c.validate().is_ok()
        };
        assert!(ok(|c| {
            c.realspace_weight = 2.0;
            c.tv_weight = 0.1;
        }));
        assert!(ok(|c| {
            c.realspace_weight = 1.0;
            c.realspace_mae_weight = 1.0;
            c.nll_weight = 0.0;
        }));
    }

    /// What would fail at run time is refused here, naming the field: an odd stitching crop
    /// (stitching needs an even M).
    #[test]
    fn run_time_failures_are_refused_by_validate() {
        let e = InferenceConfig {
            stitch_crop: 21,
            ..Default::default()
        }
        .validate()
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid value for `stitch_crop`: 21 (must be an even number of pixels in 2..=256, at most the model's N)"
        );
        let e = EvaluationConfig {
            stitch_crop: Some(7),
            ..Default::default()
        }
        .validate()
        .unwrap_err();
        assert_eq!(field_of(&e), "stitch_crop");
        assert!(
            EvaluationConfig {
                stitch_crop: Some(22),
                register: true,
                ..Default::default()
            }
            .validate()
            .is_ok()
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
        assert_eq!(bad(|c| c.stitch_crop = 258), "stitch_crop");
        assert_eq!(bad(|c| c.n_subsample = Some(0)), "n_subsample");
        assert_eq!(bad(|c| c.batch_size = 0), "batch_size");
        assert_eq!(
            bad(|c| {
                c.model.gridsize = 2;
                c.neighbor_count = Some(2)
            }),
            "neighbor_count"
        );
        assert_eq!(bad(|c| c.neighbor_count = Some(0)), "neighbor_count");
        // Without a K the config's gridsize never fails it (K = max(4, C)).
        let mut c = InferenceConfig::default();
        c.model.gridsize = 3;
        assert!(c.validate().is_ok());
    }

    /// The archive decides C: without a K every gridsize groups (K = max(4, C)); a K too small
    /// for the archive's gridsize is refused with a one-line error naming key and flag.
    #[test]
    fn inference_k_against_the_archive_gridsize() {
        let auto = InferenceConfig::default().validate().unwrap();
        let ks = [1, 2, 3].map(|g| auto.grouping(100, g).unwrap().neighbor_count);
        assert_eq!(ks, [7, 7, 9]);
        let k4 = InferenceConfig {
            neighbor_count: Some(4),
            ..Default::default()
        }
        .validate()
        .unwrap();
        assert_eq!(k4.grouping(100, 2).unwrap().neighbor_count, 4);
        assert_eq!(k4.grouping(100, 1).unwrap().neighbor_count, 4);
        let e = k4.grouping(100, 3).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid value for `neighbor_count`: 4 (must be ≥ the model's gridsize² = 9; leave \
             --neighbor-count unset for max(7, gridsize²))"
        );
    }
}
