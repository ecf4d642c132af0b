//! `TrainingConfig` and `InferenceConfig` (spec §1.2, §1.3).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::model::ModelConfig;

/// Everything a training run needs. Defaults are the reference dataclass defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainingConfig {
    pub model: ModelConfig,
    pub train_data_file: Option<PathBuf>,
    pub test_data_file: Option<PathBuf>,
    pub batch_size: usize,
    pub nepochs: usize,
    /// Weight of the MAE on scaled amplitudes.
    pub mae_weight: f64,
    /// Weight of the Poisson negative log-likelihood.
    pub nll_weight: f64,
    pub realspace_mae_weight: f64,
    pub realspace_weight: f64,
    /// Mean photons per diffraction pattern; drives the intensity scale.
    pub nphotons: f64,
    /// Number of groups to form (reference default 512).
    pub n_groups: usize,
    /// Images to subsample before grouping (None = all).
    pub n_subsample: Option<usize>,
    pub subsample_seed: Option<u64>,
    /// K of the nearest-neighbour grouping.
    pub neighbor_count: usize,
    pub positions_provided: bool,
    pub probe_trainable: bool,
    pub intensity_scale_trainable: bool,
    pub output_dir: PathBuf,
    /// Use the first n points as group seeds instead of a random draw.
    pub sequential_sampling: bool,
    /// Allow more groups than scan points (gridsize > 1 only).
    pub enable_oversampling: bool,
    pub neighbor_pool_size: Option<usize>,
    /// Seed for grouping, shuffling and initialisation (not in the reference, which is unseeded).
    pub seed: u64,
    /// Learning rate of Adam.
    pub learning_rate: f64,
    /// Fraction of groups (the last ones) held out for validation.
    pub validation_fraction: f64,
    /// Epochs without validation-loss improvement before the LR is halved.
    pub plateau_patience: usize,
    pub plateau_factor: f64,
    pub plateau_min_lr: f64,
    /// Epochs without training-loss improvement before training stops (0 = never).
    pub early_stop_patience: usize,
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
        }
    }
}

/// Everything an inference run needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InferenceConfig {
    pub model: ModelConfig,
    pub model_path: Option<PathBuf>,
    pub test_data_file: Option<PathBuf>,
    /// Groups to form (None = use all points).
    pub n_groups: Option<usize>,
    pub n_subsample: Option<usize>,
    pub subsample_seed: Option<u64>,
    pub neighbor_count: usize,
    pub debug: bool,
    pub output_dir: PathBuf,
    pub enable_oversampling: bool,
    pub neighbor_pool_size: Option<usize>,
    /// Seed of the test-set grouping (the reference reseeds with 45).
    pub seed: u64,
    /// Stitching crop size M (pixels).
    pub stitch_crop: usize,
    pub batch_size: usize,
}

impl Default for InferenceConfig {
    fn default() -> Self {
        Self {
            model: ModelConfig::default(),
            model_path: None,
            test_data_file: None,
            n_groups: None,
            n_subsample: None,
            subsample_seed: None,
            neighbor_count: 4,
            debug: false,
            output_dir: PathBuf::from("inference_outputs"),
            enable_oversampling: false,
            neighbor_pool_size: None,
            seed: 45,
            stitch_crop: 20,
            batch_size: 32,
        }
    }
}
