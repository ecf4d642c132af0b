//! The archive of the networks themselves: [`save_model`] / [`load_model`] (PtychoPINN),
//! [`save_supervised_model`] / [`load_supervised_model`] (the supervised baseline) and
//! [`load_any_model`] over the generic [`save_archive`] / [`load_archive`], building the network
//! from the archive's restored params.
//!
//! Which network an archive holds is the `model_type` of its params snapshot (`"pinn"` or
//! `"supervised"`); the layout is the same for both (both model directories hold the one set of
//! weights). Saving refuses params whose `model_type` names the other network, and loading builds
//! the network that `model_type` names, so an archive never says one thing and holds another.

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use ptycho_config::{ModelType, Params};
use ptycho_model::{PtychoPinn, SupervisedNet};

use crate::archive::{LoadedArchive, SaveOptions, load_archive, read_archive_params, save_archive};
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
    check_type(path, params, ModelType::Pinn)?;
    save_archive(path, model, params, opts)
}

/// Save the supervised baseline with its params (`model_type` must be `"supervised"`) and, when
/// `opts.history` is non-empty, its training loss history; same layout as [`save_model`].
pub fn save_supervised_model(
    path: &Path,
    model: &SupervisedNet,
    params: &Params,
    opts: &SaveOptions,
) -> Result<(), PersistError> {
    check_type(path, params, ModelType::Supervised)?;
    save_archive(path, model, params, opts)
}

fn check_type(path: &Path, params: &Params, expected: ModelType) -> Result<(), PersistError> {
    let found = params.model().model_type;
    if found != expected {
        return Err(PersistError::InvalidValue {
            path: path.to_path_buf(),
            detail: format!(
                "the params say model_type = \"{found}\" but the network is the {expected} one"
            ),
        });
    }
    Ok(())
}

/// Why the archive's network cannot be built as `expected`.
#[derive(Debug, thiserror::Error)]
#[error(
    "the archive holds a {found} model (params model_type = \"{found}\"), not a {expected} one"
)]
struct WrongModelType {
    found: ModelType,
    expected: ModelType,
}

fn expect_type(params: &Params, expected: ModelType) -> Result<(), WrongModelType> {
    let found = params.model().model_type;
    if found == expected {
        Ok(())
    } else {
        Err(WrongModelType { found, expected })
    }
}

/// Load both model views on `device`, in CONFIG-001 order: the params are restored from the
/// archive first and the networks are built from them (never from the caller's config). The
/// archive's loss history comes back in [`LoadedArchive::history`] (empty if none was stored).
pub fn load_model(
    path: &Path,
    device: &Device,
) -> Result<(LoadedArchive<PtychoPinn>, Params), PersistError> {
    let path = resolve_archive_path(path);
    load_archive(&path, |params: &Params| {
        expect_type(params, ModelType::Pinn)?;
        PtychoPinn::new(params, device).map_err(Box::<dyn std::error::Error + Send + Sync>::from)
    })
}

/// [`load_model`] for an archive of the supervised baseline.
pub fn load_supervised_model(
    path: &Path,
    device: &Device,
) -> Result<(LoadedArchive<SupervisedNet>, Params), PersistError> {
    let path = resolve_archive_path(path);
    load_archive(&path, |params: &Params| {
        expect_type(params, ModelType::Supervised)?;
        SupervisedNet::new(params, device).map_err(Box::<dyn std::error::Error + Send + Sync>::from)
    })
}

/// A loaded archive of either network.
#[derive(Debug)]
pub enum ArchivedModel {
    Pinn(Box<LoadedArchive<PtychoPinn>>),
    Supervised(Box<LoadedArchive<SupervisedNet>>),
}

impl ArchivedModel {
    /// The params' `model_type` of the archive.
    pub fn model_type(&self) -> ModelType {
        match self {
            ArchivedModel::Pinn(_) => ModelType::Pinn,
            ArchivedModel::Supervised(_) => ModelType::Supervised,
        }
    }
}

/// Load whichever network the archive holds (its params' `model_type`), CONFIG-001 order.
pub fn load_any_model(
    path: &Path,
    device: &Device,
) -> Result<(ArchivedModel, Params), PersistError> {
    let path = resolve_archive_path(path);
    match read_archive_params(&path)?.model().model_type {
        ModelType::Pinn => {
            let (a, p) = load_model(&path, device)?;
            Ok((ArchivedModel::Pinn(Box::new(a)), p))
        }
        ModelType::Supervised => {
            let (a, p) = load_supervised_model(&path, device)?;
            Ok((ArchivedModel::Supervised(Box::new(a)), p))
        }
    }
}
