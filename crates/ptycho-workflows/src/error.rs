//! The error type of the workflows crate.

use std::path::PathBuf;

/// Everything that can go wrong in the data layer (NPZ contract, grouping, patches, simulation).
/// Every file-related variant names the file and the NPZ key at fault.
#[derive(Debug, thiserror::Error)]
pub enum WorkflowError {
    #[error("{path}: I/O error: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a readable NPZ (zip) archive: {reason}")]
    NotNpz { path: PathBuf, reason: String },
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
    #[error("{path}: cannot write key `{key}`: {reason}")]
    Write {
        path: PathBuf,
        key: String,
        reason: String,
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
    #[error(transparent)]
    Stitch(#[from] crate::stitch::StitchError),
    #[error(transparent)]
    Metrics(#[from] crate::metrics::MetricsError),
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
    #[error(transparent)]
    Train(#[from] crate::train::TrainError),
}

/// Shorthand result type of this crate.
pub type Result<T, E = WorkflowError> = std::result::Result<T, E>;
