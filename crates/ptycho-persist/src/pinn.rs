//! The archive of the PtychoPINN network itself: [`save_model`] / [`load_model`] over the generic
//! [`save_archive`] / [`load_archive`], building `PtychoPinn` from the archive's restored params.

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use ptycho_config::Params;
use ptycho_model::PtychoPinn;

use crate::archive::{LoadedArchive, SaveOptions, load_archive, save_archive};
use crate::error::PersistError;

/// File name of the archive inside a model directory (the reference's `wts.h5` + `.zip`).
pub const ARCHIVE_NAME: &str = "wts.h5.zip";

/// Resolve what a user passes as a model: a directory holding `wts.h5.zip`, the zip itself, or
/// a path to which `.zip` must be appended (`.../wts.h5`), like the reference's inference CLI.
pub fn resolve_archive_path(path: &Path) -> PathBuf {
    if path.is_dir() {
        return path.join(ARCHIVE_NAME);
    }
    if !path.exists() && path.file_name().is_some_and(|n| n == "wts.h5") {
        return path.with_file_name(ARCHIVE_NAME);
    }
    path.to_path_buf()
}

/// Save a trained network with the params it was built from (probe and s attached) and, when
/// `opts.history` is non-empty, its training loss history (`history.json`).
pub fn save_model(
    path: &Path,
    model: &PtychoPinn,
    params: &Params,
    opts: &SaveOptions,
) -> Result<(), PersistError> {
    save_archive(path, model, params, opts)
}

/// Load both model views on `device`, in CONFIG-001 order: the params are restored from the
/// archive first and the networks are built from them (never from the caller's config). The
/// archive's loss history comes back in [`LoadedArchive::history`] (empty if none was stored).
pub fn load_model(
    path: &Path,
    device: &Device,
) -> Result<(LoadedArchive<PtychoPinn>, Params), PersistError> {
    let path = resolve_archive_path(path);
    load_archive(&path, |params: &Params| PtychoPinn::new(params, device))
}
