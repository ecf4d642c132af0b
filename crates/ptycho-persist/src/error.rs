//! Errors of the persistence crate. Every variant names the file and, where one is at fault, the
//! zip entry.

use std::path::PathBuf;

/// Everything that can go wrong while writing, reading or inspecting a `wts.h5.zip` archive or a
/// training checkpoint, or while opening a zip file with [`crate::SafeZip`].
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    #[error("{path}: {action}")]
    Io {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: refusing to overwrite an existing archive (pass overwrite to replace it)")]
    AlreadyExists { path: PathBuf },
    #[error("{path}: not a readable zip archive (not a zip, or truncated)")]
    NotZip {
        path: PathBuf,
        #[source]
        source: zip::result::ZipError,
    },
    #[error("{path}: entry `{entry}` could not be read (corrupt archive): {detail}")]
    CorruptEntry {
        path: PathBuf,
        entry: String,
        detail: String,
    },
    #[error("{path}: missing entry `{entry}`")]
    MissingEntry { path: PathBuf, entry: String },
    #[error(
        "{path}: this archive was written by PtychoPINN {backend}; \
         ptycho reads archives written by ptycho (burn) (found `{evidence}`)"
    )]
    ForeignArchive {
        path: PathBuf,
        backend: &'static str,
        evidence: String,
    },
    #[error("{path}: entry `{entry}`: invalid manifest: {detail}")]
    BadManifest {
        path: PathBuf,
        entry: String,
        detail: String,
    },
    #[error(
        "{path}: entry `{entry}`: format_version {found} is newer than this ptycho supports \
         (up to {supported}); upgrade ptycho"
    )]
    UnsupportedVersion {
        path: PathBuf,
        entry: String,
        found: u64,
        supported: u64,
    },
    #[error("{path}: entry `{entry}`: invalid JSON")]
    Json {
        path: PathBuf,
        entry: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path}: entry `{entry}`: invalid params snapshot: {detail}")]
    BadParams {
        path: PathBuf,
        entry: String,
        detail: String,
    },
    #[error("{path}: entry `{entry}`: invalid training history: {detail}")]
    BadHistory {
        path: PathBuf,
        entry: String,
        detail: String,
    },
    #[error("{path}: entry `{entry}`: {detail}")]
    Inconsistent {
        path: PathBuf,
        entry: String,
        detail: String,
    },
    #[error(
        "{path}: entry `{entry}`: unsafe entry name (absolute path, `..`, backslash or NUL); refused before extraction"
    )]
    UnsafeEntryName { path: PathBuf, entry: String },
    #[error("{path}: entry `{entry}`: {detail}; refused before extraction")]
    SuspiciousEntry {
        path: PathBuf,
        entry: String,
        detail: String,
    },
    #[error("{path}: entry `{entry}`: invalid safetensors weights: {detail}")]
    BadWeights {
        path: PathBuf,
        entry: String,
        detail: String,
    },
    #[error(
        "{path}: entry `{entry}`: weights do not fit the model rebuilt from the archive's params: {detail}"
    )]
    WeightMismatch {
        path: PathBuf,
        entry: String,
        detail: String,
    },
    #[error("{path}: building model `{model}` from the restored params failed")]
    Build {
        path: PathBuf,
        model: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("{path}: entry `{entry}`: corrupt or foreign training checkpoint: {detail}")]
    BadCheckpoint {
        path: PathBuf,
        entry: String,
        detail: String,
    },
    #[error("{path}: cannot save: {detail}")]
    InvalidValue { path: PathBuf, detail: String },
}
