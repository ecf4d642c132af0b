//! ptycho-persist: everything ptycho writes or reads as a container.
//!
//! - [`archive`]: the dual-model archive `wts.h5.zip` (see `plans/ARCHIVE.md`): a zip holding
//!   `manifest.json`, `params.json` (the legacy params view + `intensity_scale` + the normalised
//!   probe, as JSON) and one directory per model view (`autoencoder/`, `diffraction_to_obj/`)
//!   with `model.safetensors` and its own `params.json`, plus an optional `history.json` (the
//!   training loss per epoch, [`LossRecord`]). Loading follows CONFIG-001 (params
//!   restored from the archive before any model is built) and refuses hostile or foreign
//!   archives before extracting anything; [`info`] summarises one without building a model.
//! - [`checkpoint`]: the per-epoch training checkpoint `checkpoint.zip` (same params snapshot,
//!   bincode for the run state and the probe, Burn records for weights and optimiser).
//! - [`atomic`]: crash-safe writes (temporary file, fsync, rename), used for every output file.
//! - [`zipread`]: [`SafeZip`], the one bounded zip reader (archives, checkpoints, NPZ datasets).

pub mod archive;
pub mod atomic;
pub mod checkpoint;
pub mod error;
pub mod info;
pub mod pinn;
mod snapshot;
mod weights;
pub mod zipread;

pub use archive::{
    FORMAT, FORMAT_VERSION, HISTORY_ENTRY, LoadedArchive, LossRecord, MODEL_NAMES, Manifest,
    SaveOptions, load_archive, read_archive_params, read_history, save_archive,
};
pub use atomic::{
    Existing, remove_stale_temporaries, write_atomic, write_atomic_with, write_bytes_atomic,
};
pub use checkpoint::{
    CHECKPOINT_NAME, Checkpoint, checkpoint_path, load_checkpoint, save_checkpoint,
};
pub use error::PersistError;
pub use info::{ArchiveInfo, ModelInfo, ProbeSummary, inspect_archive};
pub use pinn::{
    ARCHIVE_NAME, ArchivedModel, load_any_model, load_model, load_supervised_model,
    resolve_archive_path, save_model, save_supervised_model,
};
pub use snapshot::{KEY_INTENSITY_SCALE, KEY_PROBE};
pub use zipread::{EntryInfo, SafeZip, ZipLimits};
