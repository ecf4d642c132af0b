//! Errors of the training workflow ([`super::train`] returns them; `WorkflowError::Train` wraps
//! them for callers that mix workflows).

use std::path::PathBuf;

/// Everything that can go wrong while training, checkpointing or resuming. File-related variants
/// name the file (and the entry inside a checkpoint).
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Model(#[from] ptycho_model::ModelError),
    #[error(transparent)]
    Persist(#[from] ptycho_persist::PersistError),
    #[error(transparent)]
    Config(#[from] ptycho_config::ConfigError),
    #[error("{path}: I/O error ({action}): {source}")]
    Io {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },
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
    #[error("training data: {reason}")]
    Data { reason: String },
    #[error("training diverged at epoch {epoch}, batch {batch}: loss is {value}")]
    NonFinite {
        epoch: usize,
        batch: usize,
        value: f64,
    },
}
