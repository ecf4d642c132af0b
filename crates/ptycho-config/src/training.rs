//! `TrainingConfig` (spec §1.2).
//!
//! Defaults are the reference dataclass defaults (not the legacy dict's, spec §1.5). Fields after
//! `neighbor_pool_size` are additions of this port (the reference hard-codes them in its trainer,
//! spec §6.1); their defaults reproduce the reference behaviour.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::data::{DataOptions, DiffractionUnits};
use crate::model::ModelConfig;

/// Everything a training run needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainingConfig {
    /// The network architecture (flattened into the legacy view).
    pub model: ModelConfig,
    /// Training NPZ (DATA-001). Legacy key `train_data_file_path`.
    pub train_data_file: Option<PathBuf>,
    /// Test NPZ, used for stitching / evaluation. Legacy key `test_data_file_path`.
    pub test_data_file: Option<PathBuf>,
    /// Groups per optimiser step; a power of two.
    pub batch_size: usize,
    /// Training epochs, > 0.
    pub nepochs: usize,
    /// Weight of the MAE on scaled amplitudes, in [0, 1].
    pub mae_weight: f64,
    /// Weight of the Poisson negative log-likelihood, in [0, 1].
    pub nll_weight: f64,
    /// Weight of the amplitude MAE against the ground-truth object inside the real-space loss
    /// (spec §5.3), ≥ 0; > 0 needs `realspace_weight` > 0 and training data with ground truth.
    pub realspace_mae_weight: f64,
    /// Weight of the real-space (object) loss `L_rs` in the total objective (spec §5.4), ≥ 0.
    pub realspace_weight: f64,
    /// Weight of the total variation of the predicted object inside the real-space loss
    /// (spec §5.3; a legacy-only key in the reference), ≥ 0; > 0 needs `realspace_weight` > 0.
    pub tv_weight: f64,
    /// Mean photons per diffraction pattern (counts); drives the intensity scale s = √nphotons/(N/2).
    pub nphotons: f64,
    /// Number of groups to form (reference: None → 512). `n_images` is the deprecated alias.
    #[serde(alias = "n_images")]
    pub n_groups: usize,
    /// Scan points to subsample before grouping (None = the reference's n_groups rule, spec §11.2).
    pub n_subsample: Option<usize>,
    /// Seed of that subsampling (None = unseeded).
    pub subsample_seed: Option<u64>,
    /// K of the nearest-neighbour grouping; K ≥ C = gridsize².
    pub neighbor_count: usize,
    /// Legacy flag `positions.provided` (unused by the core maths).
    pub positions_provided: bool,
    /// Legacy flag `probe.trainable` (inert in the reference, spec §4.7).
    pub probe_trainable: bool,
    /// Legacy flag `intensity_scale.trainable` (inert in the reference, spec §3.4).
    pub intensity_scale_trainable: bool,
    /// Output directory of the run. Legacy key `output_prefix`.
    pub output_dir: PathBuf,
    /// Use the first n points as group seeds instead of a random draw.
    pub sequential_sampling: bool,
    /// Allow more groups than scan points (gridsize > 1 only, OVERSAMPLING-001).
    pub enable_oversampling: bool,
    /// Neighbour pool size for oversampling (None = neighbor_count); ≥ C when given.
    pub neighbor_pool_size: Option<usize>,
    /// Seed for grouping, shuffling and initialisation (not in the reference, which is unseeded).
    pub seed: u64,
    /// Learning rate of Adam (reference 1e-3), > 0.
    pub learning_rate: f64,
    /// Fraction of groups (the last ones) held out for validation, in [0, 1).
    pub validation_fraction: f64,
    /// Epochs without validation-loss improvement before the LR is multiplied by `plateau_factor`.
    pub plateau_patience: usize,
    /// LR factor on a plateau, in (0, 1).
    pub plateau_factor: f64,
    /// Lower bound of the LR, ≥ 0.
    pub plateau_min_lr: f64,
    /// Epochs without training-loss improvement before training stops (0 = never).
    pub early_stop_patience: usize,
    /// Units of the data files' `diff3d` (amplitude, counts or auto).
    pub diffraction_units: DiffractionUnits,
    /// Negate the x coordinates of the data files at load (reference `load_data`).
    pub flip_x: bool,
    /// Negate the y coordinates at load.
    pub flip_y: bool,
    /// Swap x and y at load (after the flips).
    pub swap_xy: bool,
    /// Multiply the coordinates by this factor at load (after flips and swap); finite, > 0.
    pub coord_scale: f64,
}

impl Default for TrainingConfig {
    fn default() -> Self {
        Self {
            model: ModelConfig::default(),
            train_data_file: None,
            test_data_file: None,
            batch_size: 16,
            nepochs: 50,
            mae_weight: 0.0,
            nll_weight: 1.0,
            realspace_mae_weight: 0.0,
            realspace_weight: 0.0,
            tv_weight: 0.0,
            nphotons: 1e9,
            n_groups: 512,
            n_subsample: None,
            subsample_seed: None,
            neighbor_count: 4,
            positions_provided: true,
            probe_trainable: false,
            intensity_scale_trainable: true,
            output_dir: PathBuf::from("training_outputs"),
            sequential_sampling: false,
            enable_oversampling: false,
            neighbor_pool_size: None,
            seed: 42,
            learning_rate: 1e-3,
            validation_fraction: 0.05,
            plateau_patience: 2,
            plateau_factor: 0.5,
            plateau_min_lr: 1e-4,
            early_stop_patience: 3,
            diffraction_units: DiffractionUnits::Auto,
            flip_x: false,
            flip_y: false,
            swap_xy: false,
            coord_scale: 1.0,
        }
    }
}

impl TrainingConfig {
    /// How to read this run's data files.
    pub fn data_options(&self) -> DataOptions {
        DataOptions {
            diffraction_units: self.diffraction_units,
            flip_x: self.flip_x,
            flip_y: self.flip_y,
            swap_xy: self.swap_xy,
            coord_scale: self.coord_scale,
        }
    }
}
