//! The one place where command-line flags become settings: for each settings struct of
//! `ptycho_config` (training, inference, simulation, evaluation) a `--config FILE` argument and one
//! override flag per user-facing field, resolved as defaults < file < flags, then `validate()`.
//! The defaults and rules are the config crate's; a flag's help repeats its default (tested).
//!
//! Flags use kebab-case; the reference's underscore spelling is accepted as an alias
//! (`--n_groups`, `--batch_size`, ...). Boolean flags take an explicit value (`--object-big false`;
//! true/false, yes/no, on/off, 1/0), unlike the reference, where any non-empty value meant true.

use std::path::{Path, PathBuf};

use clap::builder::{BoolishValueParser, PossibleValuesParser, TypedValueParser};
use clap::{ArgAction, Args};
use ptycho_config::file::ConfigFile;
use ptycho_config::{
    AmpActivation, ConfigError, DiffractionUnits, EvaluationConfig, InferenceConfig, ModelType,
    SimObject, SimulationConfig, StitchAt, TrainingConfig, Valid, load_file,
};
use ptycho_model::DeviceKind;

/// Flags every `ptycho` command accepts, with one meaning (flattened into each command's args).
#[derive(Debug, Clone, Default, Args)]
pub struct CommonArgs {
    /// No progress bar, step lines or notes on stderr; results on stdout and errors are still
    /// printed. Default: off.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

fn device_parser(s: &str) -> Result<DeviceKind, String> {
    s.parse::<DeviceKind>().map_err(|e| e.to_string())
}

/// `--device`, for the commands that run a model (train, infer, run); one parser and help.
#[derive(Debug, Clone, Args)]
pub struct DeviceArgs {
    /// Backend: cpu (= flex, pure Rust), tch-cpu or cuda[:N] (libtorch; needs a build with
    /// `--features tch`). Default: cpu.
    #[arg(long = "device", id = "device", value_name = "DEVICE", default_value = "cpu", hide_default_value = true, value_parser = device_parser)]
    pub kind: DeviceKind,
}

/// `--overwrite`, for the commands whose outputs are kept unless it is given (train, run).
#[derive(Debug, Clone, Default, Args)]
pub struct OverwriteArgs {
    /// Replace the model archive and checkpoint of an earlier run in the output directory
    /// (without it the command stops before training). Default: off.
    #[arg(long)]
    pub overwrite: bool,
}

/// The defaults, or the config file's values over them.
fn base<T: ConfigFile>(config: Option<&Path>) -> Result<T, ConfigError> {
    config.map_or_else(|| Ok(T::default()), load_file)
}

/// `--config FILE` and the training overrides, resolved into a validated training config.
#[derive(Debug, Clone, Default, Args)]
pub struct TrainingArgs {
    /// Training config file (.toml, .json or .yaml/.yml); its keys override the defaults, flags override it.
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(flatten)]
    pub overrides: TrainingOverrides,
}

impl TrainingArgs {
    /// Defaults < file < flags, then `validate()`.
    pub fn resolve(&self) -> Result<Valid<TrainingConfig>, ConfigError> {
        resolve_training_config(self.config.as_deref(), &self.overrides)
    }
}

/// Defaults < file (if any) < flags, then `validate()`.
pub fn resolve_training_config(
    config: Option<&Path>,
    overrides: &TrainingOverrides,
) -> Result<Valid<TrainingConfig>, ConfigError> {
    let mut cfg: TrainingConfig = base(config)?;
    overrides.apply(&mut cfg);
    cfg.validate()
}

fn amp_activation_parser() -> impl TypedValueParser<Value = AmpActivation> {
    PossibleValuesParser::new(AmpActivation::NAMES).try_map(|s| s.parse::<AmpActivation>())
}

fn model_type_parser() -> impl TypedValueParser<Value = ModelType> {
    PossibleValuesParser::new(ModelType::NAMES).try_map(|s| s.parse::<ModelType>())
}

fn units_parser() -> impl TypedValueParser<Value = DiffractionUnits> {
    PossibleValuesParser::new(DiffractionUnits::NAMES).try_map(|s| s.parse::<DiffractionUnits>())
}

fn stitch_at_parser() -> impl TypedValueParser<Value = StitchAt> {
    PossibleValuesParser::new(StitchAt::NAMES).try_map(|s| s.parse::<StitchAt>())
}

/// The data-reading flags of `ptycho train` and `ptycho infer` (units, coordinate transforms).
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Data options")]
pub struct DataFlags {
    /// Units of diff3d: amplitude (sqrt of counts, used as stored), counts (square-rooted) or
    /// auto (integer arrays, and float arrays of non-negative integers reaching 10, are counts).
    /// Default: auto.
    #[arg(long, visible_alias = "diffraction_units", value_name = "UNITS", value_parser = units_parser())]
    pub diffraction_units: Option<DiffractionUnits>,
    /// Negate the x coordinates at load (true/false). Default: false.
    #[arg(long, visible_alias = "flip_x", value_name = "BOOL", action = ArgAction::Set, value_parser = BoolishValueParser::new())]
    pub flip_x: Option<bool>,
    /// Negate the y coordinates at load (true/false). Default: false.
    #[arg(long, visible_alias = "flip_y", value_name = "BOOL", action = ArgAction::Set, value_parser = BoolishValueParser::new())]
    pub flip_y: Option<bool>,
    /// Swap x and y at load, after the flips (true/false). Default: false.
    #[arg(long, visible_alias = "swap_xy", value_name = "BOOL", action = ArgAction::Set, value_parser = BoolishValueParser::new())]
    pub swap_xy: Option<bool>,
    /// Multiply the coordinates by this factor at load, after flips and swap (> 0). Default: 1.0.
    #[arg(long, visible_alias = "coord_scale", value_name = "FACTOR")]
    pub coord_scale: Option<f64>,
}

/// One optional flag per `TrainingConfig` / `ModelConfig` field; a flag that is given replaces the
/// value from the defaults or the config file. Help texts state units and defaults.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Model options")]
pub struct TrainingOverrides {
    /// Patch and detector size N in pixels: 64, 128 or 256. Default: 64.
    #[arg(long = "n", visible_alias = "N", value_name = "PIXELS")]
    pub n: Option<usize>,
    /// Group side; each group has C = gridsize² patches (≥ 1). Default: 1.
    #[arg(long, value_name = "INT")]
    pub gridsize: Option<usize>,
    /// U-Net width multiplier (≥ 1; filters 32·scale, 64·scale, ...). Default: 2.
    #[arg(long, visible_alias = "n_filters_scale", value_name = "INT")]
    pub n_filters_scale: Option<usize>,
    /// Network to train: pinn (PtychoPINN) or supervised (the supervised baseline, needs `Y` or
    /// `objectGuess` in the training file). Default: pinn.
    #[arg(long, visible_alias = "model_type", value_name = "TYPE", value_parser = model_type_parser())]
    pub model_type: Option<ModelType>,
    /// Activation of the amplitude head. Default: sigmoid.
    #[arg(long, visible_alias = "amp_activation", value_name = "NAME", value_parser = amp_activation_parser())]
    pub amp_activation: Option<AmpActivation>,
    /// Reassemble the C patches of a group inside the model (true/false). Default: true.
    #[arg(long, visible_alias = "object_big", value_name = "BOOL", action = ArgAction::Set, value_parser = BoolishValueParser::new())]
    pub object_big: Option<bool>,
    /// Decoder also predicts the border outside the central N/2 square (true/false). Default: true.
    #[arg(long, visible_alias = "probe_big", value_name = "BOOL", action = ArgAction::Set, value_parser = BoolishValueParser::new())]
    pub probe_big: Option<bool>,
    /// Multiply the illuminated field by the N/4-radius disk mask (true/false). Default: false.
    #[arg(long, visible_alias = "probe_mask", value_name = "BOOL", action = ArgAction::Set, value_parser = BoolishValueParser::new())]
    pub probe_mask: Option<bool>,
    /// Decoder emits an N/2 core zero-padded to N pixels (true/false). Default: true.
    #[arg(long, visible_alias = "pad_object", value_name = "BOOL", action = ArgAction::Set, value_parser = BoolishValueParser::new())]
    pub pad_object: Option<bool>,
    /// Probe normalisation divisor: mean |D⊙P| = 1/probe_scale (dimensionless, > 0). Default: 4.0.
    #[arg(long, visible_alias = "probe_scale", value_name = "FLOAT")]
    pub probe_scale: Option<f64>,
    /// σ in pixels of the 3×3 Gaussian blur of the illuminated field; 0 = off. Default: 0.0.
    #[arg(
        long,
        visible_alias = "gaussian_smoothing_sigma",
        value_name = "PIXELS"
    )]
    pub gaussian_smoothing_sigma: Option<f64>,

    /// Training NPZ (DATA-001; diff3d in the units of --diffraction-units), or a Ptychodus
    /// training folder (its train_data.npz; its test_data.npz is the test file unless one is
    /// given). Default: none.
    #[arg(
        long,
        visible_alias = "train_data_file",
        value_name = "FILE",
        help_heading = "Data options"
    )]
    pub train_data_file: Option<PathBuf>,
    /// Test NPZ for stitching and evaluation. Default: none.
    #[arg(
        long,
        visible_alias = "test_data_file",
        value_name = "FILE",
        help_heading = "Data options"
    )]
    pub test_data_file: Option<PathBuf>,
    /// Number of groups to form (≥ 1). Default: 512.
    #[arg(long, visible_aliases = ["n_groups", "n-images", "n_images"], value_name = "INT", help_heading = "Data options")]
    pub n_groups: Option<usize>,
    /// Scan points to subsample before grouping (≥ 1). Default: none (the n_groups rule).
    #[arg(
        long,
        visible_alias = "n_subsample",
        value_name = "INT",
        help_heading = "Data options"
    )]
    pub n_subsample: Option<usize>,
    /// Seed of the subsampling. Default: none (training then uses --seed, so runs stay reproducible).
    #[arg(
        long,
        visible_alias = "subsample_seed",
        value_name = "INT",
        help_heading = "Data options"
    )]
    pub subsample_seed: Option<u64>,
    /// K, neighbours considered per group (K ≥ gridsize²). Default: 4.
    #[arg(
        long,
        visible_alias = "neighbor_count",
        value_name = "INT",
        help_heading = "Data options"
    )]
    pub neighbor_count: Option<usize>,
    /// Use the first n scan points as group seeds instead of a random draw (true/false). Default: false.
    #[arg(long, visible_alias = "sequential_sampling", value_name = "BOOL", action = ArgAction::Set, value_parser = BoolishValueParser::new(), help_heading = "Data options")]
    pub sequential_sampling: Option<bool>,
    /// Allow more groups than scan points, gridsize > 1 only (true/false). Default: false.
    #[arg(long, visible_alias = "enable_oversampling", value_name = "BOOL", action = ArgAction::Set, value_parser = BoolishValueParser::new(), help_heading = "Data options")]
    pub enable_oversampling: Option<bool>,
    /// Neighbour pool size for oversampling (≥ gridsize²). Default: none (= neighbor_count).
    #[arg(
        long,
        visible_alias = "neighbor_pool_size",
        value_name = "INT",
        help_heading = "Data options"
    )]
    pub neighbor_pool_size: Option<usize>,
    /// Legacy flag positions.provided (true/false). Default: true.
    #[arg(long, visible_alias = "positions_provided", value_name = "BOOL", action = ArgAction::Set, value_parser = BoolishValueParser::new(), help_heading = "Data options")]
    pub positions_provided: Option<bool>,

    /// Mean photons per diffraction pattern (counts, > 0); sets s = √nphotons/(N/2). Default: 1e9.
    #[arg(long, value_name = "COUNTS", help_heading = "Training options")]
    pub nphotons: Option<f64>,
    /// Groups per optimiser step (a power of two). Default: 16.
    #[arg(
        long,
        visible_alias = "batch_size",
        value_name = "INT",
        help_heading = "Training options"
    )]
    pub batch_size: Option<usize>,
    /// Training epochs (≥ 1). Default: 50.
    #[arg(long, value_name = "INT", help_heading = "Training options")]
    pub nepochs: Option<usize>,
    /// Weight of the MAE on scaled amplitudes, in [0, 1]. Default: 0.0.
    #[arg(
        long,
        visible_alias = "mae_weight",
        value_name = "FLOAT",
        help_heading = "Training options"
    )]
    pub mae_weight: Option<f64>,
    /// Weight of the Poisson negative log-likelihood, in [0, 1]. Default: 1.0.
    #[arg(
        long,
        visible_alias = "nll_weight",
        value_name = "FLOAT",
        help_heading = "Training options"
    )]
    pub nll_weight: Option<f64>,
    /// Weight of the amplitude MAE against the ground truth inside the real-space loss (≥ 0; needs
    /// realspace weight > 0 and training data with Y or objectGuess). Default: 0.0.
    #[arg(
        long,
        visible_alias = "realspace_mae_weight",
        value_name = "FLOAT",
        help_heading = "Training options"
    )]
    pub realspace_mae_weight: Option<f64>,
    /// Weight of the real-space (object) loss (≥ 0; needs tv or realspace MAE weight > 0). Default: 0.0.
    #[arg(
        long,
        visible_alias = "realspace_weight",
        value_name = "FLOAT",
        help_heading = "Training options"
    )]
    pub realspace_weight: Option<f64>,
    /// Weight of the total variation of the object inside the real-space loss (≥ 0; needs
    /// realspace weight > 0). Default: 0.0.
    #[arg(
        long,
        visible_alias = "tv_weight",
        value_name = "FLOAT",
        help_heading = "Training options"
    )]
    pub tv_weight: Option<f64>,
    /// Legacy flag probe.trainable (inert in the reference) (true/false). Default: false.
    #[arg(long, visible_alias = "probe_trainable", value_name = "BOOL", action = ArgAction::Set, value_parser = BoolishValueParser::new(), help_heading = "Training options")]
    pub probe_trainable: Option<bool>,
    /// Legacy flag intensity_scale.trainable (inert in the reference) (true/false). Default: true.
    #[arg(long, visible_alias = "intensity_scale_trainable", value_name = "BOOL", action = ArgAction::Set, value_parser = BoolishValueParser::new(), help_heading = "Training options")]
    pub intensity_scale_trainable: Option<bool>,
    /// Seed of grouping, shuffling and initialisation. Default: 42.
    #[arg(long, value_name = "INT", help_heading = "Training options")]
    pub seed: Option<u64>,
    /// Adam learning rate (> 0). Default: 0.001.
    #[arg(
        long,
        visible_alias = "learning_rate",
        value_name = "FLOAT",
        help_heading = "Training options"
    )]
    pub learning_rate: Option<f64>,
    /// Fraction of groups (the last ones) held out for validation, in [0, 1). Default: 0.05.
    #[arg(
        long,
        visible_alias = "validation_fraction",
        value_name = "FLOAT",
        help_heading = "Training options"
    )]
    pub validation_fraction: Option<f64>,
    /// Epochs without validation-loss improvement before the LR is reduced. Default: 2.
    #[arg(
        long,
        visible_alias = "plateau_patience",
        value_name = "EPOCHS",
        help_heading = "Training options"
    )]
    pub plateau_patience: Option<usize>,
    /// LR factor on a plateau, in (0, 1). Default: 0.5.
    #[arg(
        long,
        visible_alias = "plateau_factor",
        value_name = "FLOAT",
        help_heading = "Training options"
    )]
    pub plateau_factor: Option<f64>,
    /// Lower bound of the learning rate (≥ 0). Default: 0.0001.
    #[arg(
        long,
        visible_alias = "plateau_min_lr",
        value_name = "FLOAT",
        help_heading = "Training options"
    )]
    pub plateau_min_lr: Option<f64>,
    /// Epochs without training-loss improvement before stopping (0 = never). Default: 3.
    #[arg(
        long,
        visible_alias = "early_stop_patience",
        value_name = "EPOCHS",
        help_heading = "Training options"
    )]
    pub early_stop_patience: Option<usize>,
    /// Output directory of the run. Default: training_outputs.
    #[arg(
        long,
        visible_alias = "output_dir",
        value_name = "DIR",
        help_heading = "Training options"
    )]
    pub output_dir: Option<PathBuf>,

    #[command(flatten)]
    pub data: DataFlags,
}

/// `if let Some(v) = src { dst = v.into() }` for each pair (`.into()` wraps `Option` targets).
macro_rules! override_fields {
    ($($src:expr => $dst:expr),* $(,)?) => {
        $(if let Some(v) = $src.clone() {
            $dst = v.into();
        })*
    };
}

impl TrainingOverrides {
    /// Replace the fields whose flag was given.
    pub fn apply(&self, cfg: &mut TrainingConfig) {
        override_fields! {
            self.n => cfg.model.n,
            self.gridsize => cfg.model.gridsize,
            self.n_filters_scale => cfg.model.n_filters_scale,
            self.model_type => cfg.model.model_type,
            self.amp_activation => cfg.model.amp_activation,
            self.object_big => cfg.model.object_big,
            self.probe_big => cfg.model.probe_big,
            self.probe_mask => cfg.model.probe_mask,
            self.pad_object => cfg.model.pad_object,
            self.probe_scale => cfg.model.probe_scale,
            self.gaussian_smoothing_sigma => cfg.model.gaussian_smoothing_sigma,
            self.train_data_file => cfg.train_data_file,
            self.test_data_file => cfg.test_data_file,
            self.n_groups => cfg.n_groups,
            self.n_subsample => cfg.n_subsample,
            self.subsample_seed => cfg.subsample_seed,
            self.neighbor_count => cfg.neighbor_count,
            self.sequential_sampling => cfg.sequential_sampling,
            self.enable_oversampling => cfg.enable_oversampling,
            self.neighbor_pool_size => cfg.neighbor_pool_size,
            self.positions_provided => cfg.positions_provided,
            self.nphotons => cfg.nphotons,
            self.batch_size => cfg.batch_size,
            self.nepochs => cfg.nepochs,
            self.mae_weight => cfg.mae_weight,
            self.nll_weight => cfg.nll_weight,
            self.realspace_mae_weight => cfg.realspace_mae_weight,
            self.realspace_weight => cfg.realspace_weight,
            self.tv_weight => cfg.tv_weight,
            self.probe_trainable => cfg.probe_trainable,
            self.intensity_scale_trainable => cfg.intensity_scale_trainable,
            self.seed => cfg.seed,
            self.learning_rate => cfg.learning_rate,
            self.validation_fraction => cfg.validation_fraction,
            self.plateau_patience => cfg.plateau_patience,
            self.plateau_factor => cfg.plateau_factor,
            self.plateau_min_lr => cfg.plateau_min_lr,
            self.early_stop_patience => cfg.early_stop_patience,
            self.output_dir => cfg.output_dir,
            self.data.diffraction_units => cfg.diffraction_units,
            self.data.flip_x => cfg.flip_x,
            self.data.flip_y => cfg.flip_y,
            self.data.swap_xy => cfg.swap_xy,
            self.data.coord_scale => cfg.coord_scale,
        }
    }
}

/// `--config FILE` and the inference overrides, resolved into a validated inference config.
#[derive(Debug, Clone, Default, Args)]
pub struct InferenceArgs {
    /// Inference config file (.toml, .json or .yaml/.yml); its keys override the defaults, flags override it.
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(flatten)]
    pub overrides: InferenceOverrides,
}

impl InferenceArgs {
    /// Defaults < file < flags, then `validate()`.
    pub fn resolve(&self) -> Result<Valid<InferenceConfig>, ConfigError> {
        let mut cfg: InferenceConfig = base(self.config.as_deref())?;
        self.overrides.apply(&mut cfg);
        cfg.validate()
    }
}

/// One optional flag per user-facing `InferenceConfig` field (the model's N and gridsize come
/// from the archive).
#[derive(Debug, Clone, Default, Args)]
pub struct InferenceOverrides {
    /// Model directory holding wts.h5.zip, or the archive itself. Default: none (required here
    /// or as model_path in the config file).
    #[arg(long, visible_alias = "model_path", value_name = "DIR|ZIP")]
    pub model: Option<PathBuf>,
    /// Test data NPZ (diff3d, xcoords, ycoords, probeGuess[, objectGuess]), or a Ptychodus
    /// training folder (its test_data.npz); several reconstruct each in turn with the model
    /// loaded once, into OUTPUT_DIR/<file stem>/. Default: none (required here, as
    /// test_data_file in the config file, or with --manifest).
    #[arg(long, visible_aliases = ["test_data", "test-data-file", "test_data_file"], value_name = "FILE.npz", num_args = 1..)]
    pub test_data: Vec<PathBuf>,
    /// Output directory (created if missing). Default: inference_outputs.
    #[arg(long, visible_alias = "output_dir", value_name = "DIR")]
    pub output_dir: Option<PathBuf>,
    /// Number of groups to reconstruct (≥ 1; at most one per scan point unless oversampling is
    /// enabled). Default: none (one group per scan point, seeded by it, at any gridsize: the
    /// groups cover the scan).
    #[arg(long, visible_aliases = ["n_groups", "n-images", "n_images"], value_name = "INT")]
    pub n_groups: Option<usize>,
    /// Scan points to subsample before grouping (≥ 1). Default: none (all points).
    #[arg(long, visible_alias = "n_subsample", value_name = "INT")]
    pub n_subsample: Option<usize>,
    /// Seed of the subsampling. Default: none (the grouping seed).
    #[arg(long, visible_alias = "subsample_seed", value_name = "INT")]
    pub subsample_seed: Option<u64>,
    /// K, neighbours considered per group at gridsize > 1: a group is its seed and gridsize² − 1
    /// of the seed's K nearest neighbours (K ≥ the model's gridsize²). Default: none
    /// (max(7, gridsize²) with the model's gridsize: 7 up to gridsize 2, 9 at gridsize 3).
    #[arg(long, visible_aliases = ["neighbor_count", "K"], value_name = "INT")]
    pub neighbor_count: Option<usize>,
    /// Seed of the grouping draw. Default: 45.
    #[arg(long, value_name = "INT")]
    pub seed: Option<u64>,
    /// Central crop M of every predicted patch used for stitching, pixels (even, ≤ N). Default: 20.
    #[arg(long, visible_alias = "stitch_crop", value_name = "PIXELS")]
    pub stitch_crop: Option<usize>,
    /// Where each group's object is stitched at gridsize ≥ 2: members (an M×M window around
    /// every member's scan position) or centres (the central M×M window at the group centre, as
    /// the reference does). Default: members.
    #[arg(long, visible_alias = "stitch_at", value_name = "WHERE", value_parser = stitch_at_parser())]
    pub stitch_at: Option<StitchAt>,
    /// Groups per forward pass (≥ 1); more needs more memory. On flex two passes run at once;
    /// on tch-cpu a pass holds at most 16 groups (faster there). Default: 32.
    #[arg(long, visible_alias = "batch_size", value_name = "INT")]
    pub batch_size: Option<usize>,

    #[command(flatten)]
    pub data: DataFlags,
    /// Also report the metrics after sub-pixel registration (phase cross-correlation of the
    /// amplitudes, upsample factor 50, Fourier shift, 2 border pixels dropped); `--register` alone
    /// means true. Default: false.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", action = ArgAction::Set, value_parser = BoolishValueParser::new())]
    pub register: Option<bool>,
}

impl InferenceOverrides {
    /// Replace the fields whose flag was given (the first test file, when several are given).
    pub fn apply(&self, cfg: &mut InferenceConfig) {
        if let Some(first) = self.test_data.first() {
            cfg.test_data_file = Some(first.clone());
        }
        override_fields! {
            self.model => cfg.model_path,
            self.output_dir => cfg.output_dir,
            self.n_groups => cfg.n_groups,
            self.n_subsample => cfg.n_subsample,
            self.subsample_seed => cfg.subsample_seed,
            self.neighbor_count => cfg.neighbor_count,
            self.seed => cfg.seed,
            self.stitch_crop => cfg.stitch_crop,
            self.stitch_at => cfg.stitch_at,
            self.batch_size => cfg.batch_size,
            self.data.diffraction_units => cfg.diffraction_units,
            self.data.flip_x => cfg.flip_x,
            self.data.flip_y => cfg.flip_y,
            self.data.swap_xy => cfg.swap_xy,
            self.data.coord_scale => cfg.coord_scale,
            self.register => cfg.register,
        }
    }
}

fn sim_object_parser() -> impl TypedValueParser<Value = SimObject> {
    PossibleValuesParser::new(SimObject::NAMES).try_map(|s| s.parse::<SimObject>())
}

/// `--config FILE` and the simulation overrides, resolved into a validated simulation config.
#[derive(Debug, Clone, Default, Args)]
pub struct SimulationArgs {
    /// Simulation config file (.toml, .json or .yaml/.yml); its keys override the defaults, flags override it.
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(flatten)]
    pub overrides: SimulationOverrides,
}

impl SimulationArgs {
    /// Defaults < file < flags, then `validate()`.
    pub fn resolve(&self) -> Result<Valid<SimulationConfig>, ConfigError> {
        let mut cfg: SimulationConfig = base(self.config.as_deref())?;
        self.overrides.apply(&mut cfg);
        cfg.validate()
    }
}

/// One optional flag per user-facing `SimulationConfig` field.
#[derive(Debug, Clone, Default, Args)]
pub struct SimulationOverrides {
    /// Number of scan positions, i.e. diffraction patterns (≥ 1). Default: 512.
    #[arg(long, visible_alias = "n_images", value_name = "M")]
    pub n_images: Option<usize>,
    /// Synthetic object, a real amplitude with zero phase: lines (random smoothed lines), grf
    /// (Gaussian random field), points (smoothed random impulses) or diagonals (horizontal,
    /// vertical and ±45° lines). Default: lines.
    #[arg(long, value_name = "KIND", value_parser = sim_object_parser())]
    pub object: Option<SimObject>,
    /// Object side in pixels (≥ N). Default: none (int(3.5·N) = 224 for N = 64).
    #[arg(long, visible_alias = "object_size", value_name = "PIXELS")]
    pub object_size: Option<usize>,
    /// Diffraction pattern (and probe) size N in pixels, even. Default: 64.
    #[arg(long = "n", visible_alias = "N", value_name = "PIXELS")]
    pub n: Option<usize>,
    /// Mean photons per diffraction pattern (counts, > 0). Recorded in the file's `_metadata`,
    /// where `ptycho train` (and the reference's train.py) take it from. Default: 1e9.
    #[arg(long, value_name = "COUNTS")]
    pub nphotons: Option<f64>,
    /// Seed of every random draw (object, scan positions, noise). Default: 42.
    #[arg(long, value_name = "INT")]
    pub seed: Option<u64>,
    /// Store noise-free amplitudes instead of drawing Poisson counts (noise = false).
    #[arg(long)]
    pub no_noise: bool,
    /// NPZ whose objectGuess and probeGuess (a (modes, N, N) stack gives mode 0) replace the
    /// synthetic object and the default probe; N must be the probe's width. Default: none.
    #[arg(long, visible_alias = "input_file", value_name = "FILE.npz")]
    pub input_file: Option<PathBuf>,
}

impl SimulationOverrides {
    /// Replace the fields whose flag was given.
    pub fn apply(&self, cfg: &mut SimulationConfig) {
        override_fields! {
            self.n_images => cfg.n_images,
            self.object => cfg.object,
            self.object_size => cfg.object_size,
            self.n => cfg.n,
            self.nphotons => cfg.nphotons,
            self.seed => cfg.seed,
            self.input_file => cfg.input_file,
        }
        if self.no_noise {
            cfg.noise = false;
        }
    }
}

/// `--config FILE` and the evaluation overrides, resolved into a validated evaluation config.
#[derive(Debug, Clone, Default, Args)]
pub struct EvaluationArgs {
    /// Evaluation config file (.toml, .json or .yaml/.yml); its keys override the defaults, flags override it.
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(flatten)]
    pub overrides: EvaluationOverrides,
}

impl EvaluationArgs {
    /// Defaults < file < flags, then `validate()`.
    pub fn resolve(&self) -> Result<Valid<EvaluationConfig>, ConfigError> {
        let mut cfg: EvaluationConfig = base(self.config.as_deref())?;
        self.overrides.apply(&mut cfg);
        cfg.validate()
    }
}

/// One optional flag per `EvaluationConfig` field.
#[derive(Debug, Clone, Default, Args)]
pub struct EvaluationOverrides {
    /// Stitching crop M in pixels (the crop margin is M/2; even). Default: none (the value stored
    /// in the reconstruction, else 20).
    #[arg(long, visible_alias = "stitch_crop", value_name = "PIXELS")]
    pub stitch_crop: Option<usize>,
    /// Units of the ground-truth file's diff3d (amplitude, counts or auto); the metrics use its
    /// objectGuess. Default: auto.
    #[arg(long, visible_alias = "diffraction_units", value_name = "UNITS", value_parser = units_parser())]
    pub diffraction_units: Option<DiffractionUnits>,
    /// Also report the metrics after sub-pixel registration (phase cross-correlation of the
    /// amplitudes, upsample factor 50, Fourier shift, 2 border pixels dropped); `--register` alone
    /// means true. Default: false.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", action = ArgAction::Set, value_parser = BoolishValueParser::new())]
    pub register: Option<bool>,
}

impl EvaluationOverrides {
    /// Replace the fields whose flag was given.
    pub fn apply(&self, cfg: &mut EvaluationConfig) {
        override_fields! {
            self.stitch_crop => cfg.stitch_crop,
            self.diffraction_units => cfg.diffraction_units,
            self.register => cfg.register,
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};
    use ptycho_config::legacy::legacy_key;
    use ptycho_config::{ModelConfig, Params};
    use serde_json::Value;

    use super::*;

    #[derive(Debug, Parser)]
    struct Harness {
        #[command(flatten)]
        args: TrainingArgs,
    }

    fn resolve(argv: &[&str]) -> TrainingConfig {
        let mut full = vec!["t"];
        full.extend_from_slice(argv);
        Harness::try_parse_from(full)
            .unwrap()
            .args
            .resolve()
            .unwrap()
            .into_inner()
    }

    /// The flags applied over the defaults, not validated.
    fn applied(argv: &[&str]) -> TrainingConfig {
        let mut full = vec!["t"];
        full.extend_from_slice(argv);
        let mut cfg = TrainingConfig::default();
        Harness::try_parse_from(full)
            .unwrap()
            .args
            .overrides
            .apply(&mut cfg);
        cfg
    }

    #[test]
    fn no_flags_gives_defaults() {
        assert_eq!(resolve(&[]), TrainingConfig::default());
    }

    #[test]
    fn every_field_has_a_flag_and_it_lands_in_the_config() {
        // Not validated: the real-space weights have flags but must be 0 (not implemented).
        let cfg = applied(&[
            "--N",
            "128",
            "--gridsize",
            "2",
            "--n_filters_scale",
            "3",
            "--model-type",
            "supervised",
            "--amp_activation",
            "relu",
            "--object-big",
            "false",
            "--probe_big",
            "no",
            "--probe-mask",
            "true",
            "--pad_object",
            "0",
            "--probe-scale",
            "2.5",
            "--gaussian_smoothing_sigma",
            "0.5",
            "--train_data_file",
            "a.npz",
            "--test-data-file",
            "b.npz",
            "--n_images",
            "64",
            "--n-subsample",
            "100",
            "--subsample_seed",
            "5",
            "--neighbor_count",
            "6",
            "--sequential-sampling",
            "on",
            "--enable_oversampling",
            "true",
            "--neighbor-pool-size",
            "5",
            "--positions_provided",
            "false",
            "--nphotons",
            "1e6",
            "--batch_size",
            "8",
            "--nepochs",
            "3",
            "--mae_weight",
            "0.5",
            "--nll-weight",
            "0.5",
            "--realspace_mae_weight",
            "0.1",
            "--realspace-weight",
            "0.2",
            "--tv_weight",
            "0.05",
            "--probe_trainable",
            "true",
            "--intensity-scale-trainable",
            "false",
            "--seed",
            "9",
            "--learning_rate",
            "0.002",
            "--validation-fraction",
            "0.1",
            "--plateau_patience",
            "5",
            "--plateau-factor",
            "0.25",
            "--plateau_min_lr",
            "0.00001",
            "--early-stop-patience",
            "0",
            "--output_dir",
            "out",
            "--diffraction_units",
            "counts",
            "--flip-x",
            "true",
            "--flip_y",
            "yes",
            "--swap-xy",
            "1",
            "--coord_scale",
            "0.5",
        ]);
        let expected = TrainingConfig {
            model: ModelConfig {
                n: 128,
                gridsize: 2,
                n_filters_scale: 3,
                model_type: ModelType::Supervised,
                amp_activation: AmpActivation::Relu,
                object_big: false,
                probe_big: false,
                probe_mask: true,
                pad_object: false,
                probe_scale: 2.5,
                gaussian_smoothing_sigma: 0.5,
            },
            train_data_file: Some("a.npz".into()),
            test_data_file: Some("b.npz".into()),
            batch_size: 8,
            nepochs: 3,
            mae_weight: 0.5,
            nll_weight: 0.5,
            realspace_mae_weight: 0.1,
            realspace_weight: 0.2,
            tv_weight: 0.05,
            nphotons: 1e6,
            n_groups: 64,
            n_subsample: Some(100),
            subsample_seed: Some(5),
            neighbor_count: 6,
            positions_provided: false,
            probe_trainable: true,
            intensity_scale_trainable: false,
            output_dir: "out".into(),
            sequential_sampling: true,
            enable_oversampling: true,
            neighbor_pool_size: Some(5),
            seed: 9,
            learning_rate: 0.002,
            validation_fraction: 0.1,
            plateau_patience: 5,
            plateau_factor: 0.25,
            plateau_min_lr: 0.00001,
            early_stop_patience: 0,
            diffraction_units: DiffractionUnits::Counts,
            flip_x: true,
            flip_y: true,
            swap_xy: true,
            coord_scale: 0.5,
        };
        assert_eq!(cfg, expected);
        // The reference's rule: the real-space MAE weight needs the real-space weight.
        let e = applied(&["--realspace_mae_weight", "0.1"])
            .validate()
            .unwrap_err()
            .to_string();
        assert!(e.contains("realspace_mae_weight"), "{e}");
    }

    #[test]
    fn bool_flags_need_a_value_and_parse_false() {
        assert!(!resolve(&["--object-big", "false"]).model.object_big);
        assert!(!resolve(&["--object_big=False"]).model.object_big);
        assert!(Harness::try_parse_from(["t", "--object-big"]).is_err());
        assert!(Harness::try_parse_from(["t", "--object-big", "maybe"]).is_err());
        assert!(Harness::try_parse_from(["t", "--amp-activation", "tanh"]).is_err());
    }

    /// Checks that the "Default: X." in the help of every flag of `cmd` (except `skip`) matches the
    /// value of its key (`key_of(id)`) in `defaults`; returns how many flags were checked.
    fn check_help_defaults(
        cmd: &clap::Command,
        defaults: &serde_json::Map<String, Value>,
        key_of: impl Fn(&str) -> String,
        skip: &[&str],
    ) -> usize {
        let mut checked = 0;
        for arg in cmd.get_arguments() {
            let id = arg.get_id().as_str();
            if matches!(id, "config" | "help") || skip.contains(&id) {
                continue;
            }
            let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
            let Some(rest) = help.split("Default: ").nth(1) else {
                panic!("--{id}: help has no `Default: `: {help}");
            };
            let shown = rest.split_whitespace().next().unwrap_or("");
            let shown = shown.strip_suffix('.').unwrap_or(shown);
            match defaults.get(&key_of(id)) {
                None | Some(Value::Null) => assert_eq!(shown, "none", "--{id}"),
                Some(Value::Number(n)) => {
                    let v: f64 = shown.parse().unwrap_or(f64::NAN);
                    assert_eq!(Some(v), n.as_f64(), "--{id}");
                }
                Some(Value::String(s)) => assert_eq!(shown, s, "--{id}"),
                Some(other) => assert_eq!(shown, other.to_string(), "--{id}"),
            }
            checked += 1;
        }
        checked
    }

    fn object(v: Result<Value, serde_json::Error>) -> serde_json::Map<String, Value> {
        match v.unwrap() {
            Value::Object(m) => m,
            other => panic!("not an object: {other}"),
        }
    }

    /// The "Default: X." in every flag's help must match `TrainingConfig::default()`.
    #[test]
    fn help_defaults_match_the_config_defaults() {
        let params = Params::from_training(&TrainingConfig::default().validate().unwrap());
        let legacy: serde_json::Map<String, Value> = params.to_legacy().into_iter().collect();
        let key_of = |id: &str| if id == "n" { "N" } else { legacy_key(id) }.to_string();
        let checked = check_help_defaults(&Harness::command(), &legacy, key_of, &[]);
        assert_eq!(checked, 44);
    }

    #[derive(Debug, Parser)]
    struct InferHarness {
        #[command(flatten)]
        args: InferenceArgs,
    }

    #[derive(Debug, Parser)]
    struct SimulateHarness {
        #[command(flatten)]
        args: SimulationArgs,
    }

    #[derive(Debug, Parser)]
    struct EvaluateHarness {
        #[command(flatten)]
        args: EvaluationArgs,
    }

    /// The same for the inference, simulation and evaluation flags and their configs.
    #[test]
    fn other_help_defaults_match_their_config_defaults() {
        let infer_key = |id: &str| {
            match id {
                "model" => "model_path",
                "test_data" => "test_data_file",
                other => other,
            }
            .to_string()
        };
        let n = check_help_defaults(
            &InferHarness::command(),
            &object(serde_json::to_value(InferenceConfig::default())),
            infer_key,
            &[],
        );
        assert_eq!(n, 17);
        let sim_key = |id: &str| if id == "n" { "N" } else { id }.to_string();
        let n = check_help_defaults(
            &SimulateHarness::command(),
            &object(serde_json::to_value(SimulationConfig::default())),
            sim_key,
            &["no_noise"],
        );
        assert_eq!(n, 7);
        let n = check_help_defaults(
            &EvaluateHarness::command(),
            &object(serde_json::to_value(EvaluationConfig::default())),
            str::to_string,
            &[],
        );
        assert_eq!(n, 3);
    }

    /// defaults < file < flags for the inference settings: a value from the file, one from a flag
    /// over the file, one default.
    #[test]
    fn inference_config_file_then_flags() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("infer.toml");
        std::fs::write(
            &file,
            "model_path = \"runs/m\"\nstitch_crop = 16\nbatch_size = 8\n",
        )
        .unwrap();
        let parse = |argv: &[&str]| {
            let argv = ["t", "--config", file.to_str().unwrap()]
                .into_iter()
                .chain(argv.iter().copied());
            InferHarness::try_parse_from(argv).unwrap().args.resolve()
        };
        let cfg = parse(&["--batch-size", "4", "--test-data", "t.npz"]).unwrap();
        assert_eq!(cfg.model_path.as_deref(), Some(Path::new("runs/m")));
        assert_eq!((cfg.stitch_crop, cfg.batch_size), (16, 4));
        assert_eq!(cfg.test_data_file.as_deref(), Some(Path::new("t.npz")));
        assert_eq!(cfg.seed, InferenceConfig::default().seed);
        assert_eq!(cfg.stitch_at, StitchAt::Members);
        let cfg = parse(&["--stitch-at", "centres"]).unwrap();
        assert_eq!(cfg.stitch_at, StitchAt::Centres);
        let e = InferHarness::try_parse_from(["t", "--stitch-at", "middle"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("members") && e.contains("centres"), "{e}");
        // A flag's value is validated like the file's: an odd crop names its field.
        let e = parse(&["--stitch-crop", "15"]).unwrap_err().to_string();
        assert!(e.starts_with("invalid value for `stitch_crop`: 15"), "{e}");
        // An unknown key in the file names the file and the key.
        std::fs::write(&file, "stich_crop = 16\n").unwrap();
        let e = parse(&[]).unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "{}: unknown key `stich_crop` (did you mean `stitch_crop`?)",
                file.display()
            )
        );
    }

    /// Every inference flag lands in its field, under the kebab, reference and short spellings;
    /// K is unset (max(4, gridsize²)) unless given.
    #[test]
    fn inference_flags_land_in_the_config() {
        let parse = |argv: &[&str]| {
            InferHarness::try_parse_from(std::iter::once("t").chain(argv.iter().copied()))
                .unwrap()
                .args
                .resolve()
        };
        let cfg = parse(&[]).unwrap();
        assert_eq!(cfg.neighbor_count, None);
        for (k, sub, seed) in [
            ("--neighbor-count", "--n-subsample", "--subsample-seed"),
            ("--neighbor_count", "--n_subsample", "--subsample_seed"),
            ("--K", "--n-subsample", "--subsample-seed"),
        ] {
            let cfg = parse(&[k, "9", sub, "50", seed, "7", "--n_images", "12"]).unwrap();
            assert_eq!(cfg.neighbor_count, Some(9), "{k}");
            assert_eq!(cfg.n_subsample, Some(50), "{sub}");
            assert_eq!(cfg.subsample_seed, Some(7), "{seed}");
            assert_eq!(cfg.n_groups, Some(12));
        }
        let e = parse(&["--neighbor-count", "0"]).unwrap_err().to_string();
        assert!(
            e.starts_with("invalid value for `neighbor_count`: 0"),
            "{e}"
        );
    }

    #[test]
    fn simulation_and_evaluation_flags_land_in_their_configs() {
        let sim = |argv: &[&str]| {
            SimulateHarness::try_parse_from(std::iter::once("t").chain(argv.iter().copied()))
                .unwrap()
                .args
                .resolve()
        };
        let cfg = sim(&[
            "--n-images",
            "8",
            "--object",
            "lines",
            "--object_size",
            "96",
            "--N",
            "32",
            "--nphotons",
            "1e6",
            "--seed",
            "3",
            "--no-noise",
        ])
        .unwrap();
        let expected = SimulationConfig {
            n_images: 8,
            object: SimObject::Lines,
            object_size: Some(96),
            n: 32,
            nphotons: 1e6,
            seed: 3,
            noise: false,
            ..Default::default()
        };
        assert_eq!(*cfg, expected);
        assert_eq!(sim(&[]).unwrap().into_inner(), SimulationConfig::default());
        let e = sim(&["--n", "63"]).unwrap_err().to_string();
        assert!(e.contains("`N`: 63"), "{e}");
        assert!(SimulateHarness::try_parse_from(["t", "--object", "disk"]).is_err());

        let eval = |argv: &[&str]| {
            EvaluateHarness::try_parse_from(std::iter::once("t").chain(argv.iter().copied()))
                .unwrap()
                .args
                .resolve()
        };
        assert_eq!(eval(&[]).unwrap().stitch_crop, None);
        assert_eq!(
            eval(&["--stitch_crop", "24"]).unwrap().stitch_crop,
            Some(24)
        );
        assert!(eval(&["--stitch-crop", "0"]).is_err());
    }
}
