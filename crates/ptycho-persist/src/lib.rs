//! ptycho-persist: the dual-model archive `wts.h5.zip`.
//!
//! Layout (see `plans/ARCHIVE.md`): a zip holding `manifest.json`, `params.json` (the legacy
//! params view + `intensity_scale` + the normalised probe, as JSON) and one directory per model
//! view (`autoencoder/`, `diffraction_to_obj/`) with `model.safetensors` and its own
//! `params.json`. Saving is atomic; loading follows CONFIG-001 (params restored from the archive
//! before any model is built) and refuses hostile or foreign archives before extracting anything.

pub mod archive;
pub mod error;
pub mod info;
pub mod pinn;
mod snapshot;
pub mod zipread;

pub use archive::{
    FORMAT, FORMAT_VERSION, LoadedArchive, MODEL_NAMES, Manifest, SaveOptions, load_archive,
    save_archive,
};
pub use error::PersistError;
pub use info::{ArchiveInfo, ModelInfo, ProbeSummary, inspect_archive};
pub use pinn::{ARCHIVE_NAME, load_model, resolve_archive_path, save_model};
pub use snapshot::{KEY_INTENSITY_SCALE, KEY_PROBE};
pub use zipread::EntryInfo;
