//! The one error type of the workflows crate: data layer, training, stitching and metrics.
//!
//! A variant that wraps another error keeps it as its `source` and does not repeat its text;
//! the CLI prints the whole chain.

use std::path::PathBuf;

/// Everything that can go wrong in a workflow: the data layer (NPZ contract, grouping, patches,
/// simulation), training (checkpoint, resume), stitching and the evaluation metrics. Every
/// file-related variant names the file and the NPZ key (or checkpoint entry) at fault.
#[derive(Debug, thiserror::Error)]
pub enum WorkflowError {
    #[error("{path}: I/O error ({action})")]
    Io {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a readable NPZ (zip) archive")]
    NotNpz {
        path: PathBuf,
        #[source]
        source: zip::result::ZipError,
    },
    #[error("{path}: required key `{key}` is missing")]
    MissingKey { path: PathBuf, key: String },
    #[error("{path}: key `{key}`: {reason}")]
    BadArray {
        path: PathBuf,
        key: String,
        reason: String,
    },
    #[error("{path}: key `{key}`: non-finite value (NaN or Inf) at flat index {index}")]
    NonFinite {
        path: PathBuf,
        key: String,
        index: usize,
    },
    #[error(
        "{path}: key `{key}` has {got} entries along its scan axis, expected {expected} (len of `xcoords`)"
    )]
    LengthMismatch {
        path: PathBuf,
        key: String,
        got: usize,
        expected: usize,
    },
    #[error("{path}: key `{key}`: truncated or corrupt array data: {reason}")]
    Truncated {
        path: PathBuf,
        key: String,
        reason: String,
    },
    #[error(
        "{path}: key `{key}`: header declares shape {shape:?} ({needed} bytes) but the archive entry holds at most {available} bytes"
    )]
    DeclaredSizeTooLarge {
        path: PathBuf,
        key: String,
        shape: Vec<usize>,
        needed: u128,
        available: u64,
    },
    #[error("{path}: cannot write key `{key}`")]
    Write {
        path: PathBuf,
        key: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A valid setting that the data or the loaded archive at hand cannot satisfy (a group count
    /// whose grouped data exceed the memory, a stitching crop larger than the archive's N). The
    /// settings' own rules are checked by `ptycho_config`'s `validate()`.
    #[error("invalid `{field}` = {value}: {reason}")]
    InvalidOption {
        field: &'static str,
        value: String,
        reason: String,
    },
    #[error("grouping: {reason}")]
    Grouping { reason: String },
    #[error("simulation: {reason}")]
    Simulation { reason: String },
    /// Loading or inspecting a model archive failed (the message names the archive and entry).
    #[error(transparent)]
    Persist(#[from] ptycho_persist::PersistError),
    /// Building the device or running the network failed.
    #[error(transparent)]
    Model(#[from] ptycho_model::ModelError),
    /// Test data whose pattern size differs from the archive's N.
    #[error("test data has {got}×{got} patterns but the model in {archive} expects N={expected}")]
    PatternSize {
        archive: PathBuf,
        got: usize,
        expected: usize,
    },
    /// A config that does not validate (e.g. a training config rebuilt for a run).
    #[error(transparent)]
    Config(#[from] ptycho_config::ConfigError),

    // ---- training ([`crate::train`]) ----
    #[error(
        "{path}: already exists (pass --overwrite to replace it, or --resume to continue the run)"
    )]
    AlreadyExists { path: PathBuf },
    #[error("{path}: corrupt or foreign checkpoint, entry `{entry}`: {reason}")]
    Checkpoint {
        path: PathBuf,
        entry: String,
        reason: String,
    },
    #[error("cannot resume from {path}: {reason}")]
    Resume { path: PathBuf, reason: String },
    /// Training data that do not fit the training config (N, probe size, too few groups).
    #[error("training data: {reason}")]
    TrainingData { reason: String },
    #[error("training diverged at epoch {epoch}, batch {batch}: loss is {value}")]
    Diverged {
        epoch: usize,
        batch: usize,
        value: f64,
    },
    /// The caller's per-epoch observer asked to stop ([`crate::train::train_observed`]).
    #[error(
        "training interrupted after epoch {epoch}; {checkpoint} holds it (resume continues from there)"
    )]
    Interrupted { epoch: usize, checkpoint: PathBuf },
    /// The resolved training config could not be serialised to TOML.
    #[error("{path}: cannot serialise the training config")]
    SerialiseConfig {
        path: PathBuf,
        #[source]
        source: toml::ser::Error,
    },

    // ---- stitching ([`crate::stitch`]) ----
    /// No patches were given.
    #[error("stitching needs at least one patch, got 0")]
    NoPatches,
    /// The number of centres differs from the number of patches.
    #[error("{patches} patches but {centres} centres: one [x, y] centre per patch is required")]
    CountMismatch {
        /// patches along axis 0
        patches: usize,
        /// entries in `centres`
        centres: usize,
    },
    /// The crop size is zero, odd, or larger than the patch.
    #[error(
        "stitching crop M = {m} is invalid for {h}x{w} patches: it must be even, > 0 and <= the patch size"
    )]
    BadCropSize {
        /// requested crop size
        m: usize,
        /// patch rows
        h: usize,
        /// patch columns
        w: usize,
    },
    /// A centre coordinate is NaN or infinite.
    #[error("centre {index} = [{x}, {y}] is not finite")]
    NonFiniteCentre {
        /// patch index
        index: usize,
        /// x (column) coordinate, object pixels
        x: f64,
        /// y (row) coordinate, object pixels
        y: f64,
    },
    /// The centres are spread so far that the canvas would not fit in memory.
    #[error("centres span {span} pixels: the stitched canvas would be unreasonably large")]
    CanvasTooLarge {
        /// the padding in pixels derived from the largest relative offset
        span: f64,
    },

    // ---- evaluation metrics ([`crate::metrics`]) ----
    /// Reconstruction and ground truth differ in shape.
    #[error("reconstruction shape {recon:?} differs from ground-truth shape {gt:?}")]
    ShapeMismatch {
        /// reconstruction `[rows, cols]`
        recon: [usize; 2],
        /// ground truth `[rows, cols]`
        gt: [usize; 2],
    },
    /// An image has no pixels.
    #[error("{which} image is empty (shape {shape:?})")]
    EmptyImage {
        /// which image
        which: &'static str,
        /// its `[rows, cols]`
        shape: [usize; 2],
    },
    /// The image is too small to remove the evaluation border.
    #[error(
        "{which} image of shape {shape:?} is too small to trim {border} pixels from every side"
    )]
    TooSmallForTrim {
        /// which image
        which: &'static str,
        /// its `[rows, cols]`
        shape: [usize; 2],
        /// border in pixels
        border: usize,
    },
    /// SSIM needs at least a 7×7 image.
    #[error("image of shape {shape:?} is smaller than the 7x7 SSIM window")]
    TooSmallForSsim {
        /// `[rows, cols]`
        shape: [usize; 2],
    },
    /// Every pixel of the prediction is NaN (the reference raises in `frc50`).
    #[error("every pixel of the predicted image is NaN")]
    AllNanPrediction,
    /// The predicted amplitude has zero (or non-finite) mean, so it cannot be rescaled.
    #[error("predicted amplitude mean is {mean}: cannot rescale it to the ground truth")]
    ZeroPredictionAmplitude {
        /// mean predicted amplitude after trimming
        mean: f64,
    },
    /// No scan coordinates were given for the alignment.
    #[error("align_for_evaluation needs at least one scan coordinate, got 0")]
    NoScanCoordinates,
    /// A scan coordinate is NaN or infinite.
    #[error("scan coordinate {index} = [{x}, {y}] is not finite")]
    NonFiniteCoordinate {
        /// coordinate index
        index: usize,
        /// x (column), object pixels
        x: f64,
        /// y (row), object pixels
        y: f64,
    },
    /// The scanned region does not overlap the ground truth.
    #[error(
        "scanned region rows {rows:?}, cols {cols:?} does not overlap the ground truth of shape {gt_shape:?}"
    )]
    EmptyScanRegion {
        /// `[start, end)` rows
        rows: [i64; 2],
        /// `[start, end)` columns
        cols: [i64; 2],
        /// ground-truth `[rows, cols]`
        gt_shape: [usize; 2],
    },
    /// A directory given as a data file is not a Ptychodus training folder.
    #[error(
        "{path}: a directory without {missing} (pass an NPZ file, or a Ptychodus training folder holding train_data.npz and test_data.npz)"
    )]
    NotTrainingFolder {
        path: PathBuf,
        /// the file it lacks
        missing: &'static str,
    },
}

/// Shorthand result type of this crate.
pub type Result<T, E = WorkflowError> = std::result::Result<T, E>;
