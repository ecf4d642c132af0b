//! Writing and reading the dual-model archive `wts.h5.zip` (layout in `plans/ARCHIVE.md`).

use std::io::Write;
use std::path::Path;

use burn::module::Module;
use burn::store::{ModuleSnapshot, SafetensorsStore};
use ptycho_config::Params;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

use crate::atomic::{Existing, write_atomic_with};
use crate::error::PersistError;
use crate::snapshot;
use crate::zipread::SafeZip;

/// Value of the manifest's `format` field.
pub const FORMAT: &str = "ptycho-archive";
/// Newest `format_version` this crate writes and reads.
pub const FORMAT_VERSION: u64 = 1;
/// Value of the manifest's `backend` field.
pub const BACKEND: &str = "burn";
/// The two model views, in the order the reference stores them.
pub const MODEL_NAMES: [&str; 2] = ["autoencoder", "diffraction_to_obj"];
/// Root entries.
pub const MANIFEST_ENTRY: &str = "manifest.json";
pub const PARAMS_ENTRY: &str = "params.json";
/// Optional root entry: the training loss history, a JSON list of [`LossRecord`]s (absent from
/// archives saved without a history, and from archives written before it existed).
pub const HISTORY_ENTRY: &str = "history.json";
/// Per-model entries, under `<model>/`.
pub const WEIGHTS_FILE: &str = "model.safetensors";
pub const MODEL_PARAMS_FILE: &str = "params.json";

/// The archive's root `manifest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Model directories in the archive: `["autoencoder", "diffraction_to_obj"]`.
    pub models: Vec<String>,
    /// Always `"ptycho-archive"`.
    pub format: String,
    /// Layout version, currently 1.
    pub format_version: u64,
    /// Framework that wrote the weights: `"burn"`.
    pub backend: String,
    /// Version of the ptycho-persist crate that wrote the archive.
    pub crate_version: String,
    /// Creation time, RFC 3339 (UTC).
    pub created_at: String,
}

impl Manifest {
    fn new_now() -> Manifest {
        Manifest {
            models: MODEL_NAMES.iter().map(|s| s.to_string()).collect(),
            format: FORMAT.into(),
            format_version: FORMAT_VERSION,
            backend: BACKEND.into(),
            crate_version: env!("CARGO_PKG_VERSION").into(),
            created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        }
    }
}

/// One training epoch as kept in the archive's `history.json`, so that the loss curve travels
/// with the model file (a Ptychodus user moves only `wts.h5.zip`).
///
/// Losses are the trainer's per-epoch means (the same numbers as `history.csv`). Every value is
/// finite; `val_loss` is `null` when the run had no validation groups.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LossRecord {
    /// Epoch number, counted from 1.
    pub epoch: u64,
    /// Total training loss.
    pub loss: f64,
    /// Total loss on the validation groups, if there were any.
    pub val_loss: Option<f64>,
    /// Poisson NLL term of the training loss.
    pub nll: f64,
    /// MAE term of the training loss.
    pub mae: f64,
    /// Learning rate used during the epoch.
    pub lr: f64,
}

/// Why `history` is not a valid loss history: epochs must count up from 1 or more, strictly
/// increasing, and every value must be finite.
fn check_history(history: &[LossRecord]) -> Result<(), String> {
    let mut previous = 0;
    for r in history {
        if r.epoch <= previous {
            return Err(format!(
                "epoch {} follows epoch {previous}; epochs count up from 1",
                r.epoch
            ));
        }
        previous = r.epoch;
        let values = [
            ("loss", Some(r.loss)),
            ("val_loss", r.val_loss),
            ("nll", Some(r.nll)),
            ("mae", Some(r.mae)),
            ("lr", Some(r.lr)),
        ];
        if let Some((name, v)) = values
            .iter()
            .find_map(|(name, v)| v.filter(|v| !v.is_finite()).map(|v| (name, v)))
        {
            return Err(format!("epoch {}: {name} is {v}", r.epoch));
        }
    }
    Ok(())
}

/// Options of [`save_archive`].
#[derive(Debug, Clone, Default)]
pub struct SaveOptions {
    /// Replace an existing archive at the path (default: refuse).
    pub overwrite: bool,
    /// Training loss history, stored as `history.json` (default: empty, no entry written).
    pub history: Vec<LossRecord>,
}

/// The models restored by [`load_archive`]: both views, each built from the archive's params and
/// loaded from its own directory.
#[derive(Debug)]
pub struct LoadedArchive<M> {
    pub manifest: Manifest,
    /// The training loss history of `history.json`; empty when the archive has none.
    pub history: Vec<LossRecord>,
    pub autoencoder: M,
    pub diffraction_to_obj: M,
}

/// The entry name of `file` in model directory `model`.
pub fn model_entry(model: &str, file: &str) -> String {
    format!("{model}/{file}")
}

/// Save `model` (one set of weights, written under both model directories) and `params` (the
/// legacy view + intensity scale + normalised probe) to the archive at `path` (conventionally
/// `<output_dir>/wts.h5.zip`).
///
/// A non-empty `opts.history` is stored as `history.json` (refused with
/// [`PersistError::InvalidValue`] unless its epochs increase from 1 and its values are finite).
///
/// Atomic ([`write_atomic_with`]): the zip is written to a temporary file in the same directory,
/// fsynced and renamed into place, so a failed save never leaves a partial archive. An existing archive is refused unless
/// `opts.overwrite`.
pub fn save_archive<M: Module>(
    path: &Path,
    model: &M,
    params: &Params,
    opts: &SaveOptions,
) -> Result<(), PersistError> {
    if !opts.overwrite && std::fs::symlink_metadata(path).is_ok() {
        return Err(PersistError::AlreadyExists {
            path: path.to_path_buf(),
        });
    }
    let invalid = |detail: String| PersistError::InvalidValue {
        path: path.to_path_buf(),
        detail,
    };
    let snapshot = snapshot::encode(params).map_err(invalid)?;
    let snapshot_bytes =
        serde_json::to_vec_pretty(&snapshot).map_err(|e| invalid(e.to_string()))?;
    let manifest_bytes =
        serde_json::to_vec_pretty(&Manifest::new_now()).map_err(|e| invalid(e.to_string()))?;
    let history_bytes = if opts.history.is_empty() {
        None
    } else {
        check_history(&opts.history).map_err(|d| invalid(format!("{HISTORY_ENTRY}: {d}")))?;
        Some(serde_json::to_vec_pretty(&opts.history).map_err(|e| invalid(e.to_string()))?)
    };

    let mut store = SafetensorsStore::from_bytes(None);
    model
        .save_into(&mut store)
        .map_err(|e| invalid(format!("collecting the weights failed: {e}")))?;
    let weights = store
        .get_bytes()
        .map_err(|e| invalid(format!("serialising the weights failed: {e}")))?;

    let mut entries: Vec<(String, &[u8])> = vec![
        (MANIFEST_ENTRY.into(), &manifest_bytes),
        (PARAMS_ENTRY.into(), &snapshot_bytes),
    ];
    if let Some(bytes) = &history_bytes {
        entries.push((HISTORY_ENTRY.into(), bytes));
    }
    for name in MODEL_NAMES {
        entries.push((model_entry(name, MODEL_PARAMS_FILE), &snapshot_bytes));
        entries.push((model_entry(name, WEIGHTS_FILE), &weights));
    }
    let opts_zip = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .unix_permissions(0o644)
        .large_file(weights.len() as u64 >= u32::MAX as u64);
    let existing = if opts.overwrite {
        Existing::Replace
    } else {
        Existing::Refuse
    };
    write_atomic_with(path, existing, |w| {
        let mut zw = ZipWriter::new(w);
        for (name, bytes) in &entries {
            zw.start_file(name.as_str(), opts_zip)
                .map_err(std::io::Error::other)?;
            zw.write_all(bytes)?;
        }
        zw.finish().map_err(std::io::Error::other)?;
        Ok(())
    })
    .map_err(|source| {
        if source.kind() == std::io::ErrorKind::AlreadyExists {
            PersistError::AlreadyExists {
                path: path.to_path_buf(),
            }
        } else {
            PersistError::Io {
                path: path.to_path_buf(),
                action: "writing the archive",
                source,
            }
        }
    })?;
    Ok(())
}

/// Refuse archives written by the reference PtychoPINN, by their entry names (nothing is read
/// from them, and nothing is ever unpickled).
fn detect_foreign(zip: &mut SafeZip) -> Result<(), PersistError> {
    let path = zip.path().to_path_buf();
    let foreign = |backend: &'static str, evidence: &str| PersistError::ForeignArchive {
        path: path.clone(),
        backend,
        evidence: evidence.to_string(),
    };
    if let Some(e) = zip.entries().iter().find(|e| {
        e.name.ends_with("/model.keras")
            || e.name.ends_with("/custom_objects.dill")
            || e.name.ends_with("/model.h5")
    }) {
        return Err(foreign("TensorFlow", &e.name));
    }
    if let Some(e) = zip
        .entries()
        .iter()
        .find(|e| e.name.ends_with("/model.pth") || e.name.ends_with(".pt"))
    {
        return Err(foreign("PyTorch", &e.name));
    }
    if zip.has("manifest.dill") && !zip.has(MANIFEST_ENTRY) {
        // Look at the pickled bytes as plain bytes only: the PyTorch manifest carries the
        // version string "2.0-pytorch"; the TensorFlow one "1.0".
        let bytes = zip.read("manifest.dill")?;
        let is_torch = bytes.windows(b"pytorch".len()).any(|w| w == b"pytorch");
        let evidence = if is_torch {
            "manifest.dill (version 2.0-pytorch)"
        } else {
            "manifest.dill"
        };
        return Err(foreign(
            if is_torch { "PyTorch" } else { "TensorFlow" },
            evidence,
        ));
    }
    Ok(())
}

/// Read and validate `manifest.json` (CONFIG-001 step 1).
fn read_manifest(zip: &mut SafeZip) -> Result<Manifest, PersistError> {
    detect_foreign(zip)?;
    let path = zip.path().to_path_buf();
    let value = zip.read_json(MANIFEST_ENTRY)?;
    let bad = |detail: String| PersistError::BadManifest {
        path: path.clone(),
        entry: MANIFEST_ENTRY.into(),
        detail,
    };
    match value.get("format").and_then(Value::as_str) {
        Some(FORMAT) => {}
        other => {
            return Err(bad(format!("`format` is {other:?}, expected \"{FORMAT}\"")));
        }
    }
    let version = value
        .get("format_version")
        .and_then(Value::as_u64)
        .ok_or_else(|| bad("`format_version` is missing or not an integer".into()))?;
    if version > FORMAT_VERSION {
        return Err(PersistError::UnsupportedVersion {
            path: path.clone(),
            entry: MANIFEST_ENTRY.into(),
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    let manifest: Manifest = serde_json::from_value(value).map_err(|e| bad(e.to_string()))?;
    if manifest.backend != BACKEND {
        return Err(bad(format!(
            "`backend` is \"{}\"; this ptycho reads weights written by \"{BACKEND}\"",
            manifest.backend
        )));
    }
    for name in MODEL_NAMES {
        if !manifest.models.iter().any(|m| m == name) {
            return Err(bad(format!(
                "`models` {:?} lacks \"{name}\"",
                manifest.models
            )));
        }
    }
    Ok(manifest)
}

/// Read the root snapshot and restore the params value from it (CONFIG-001 step 2).
fn read_params(zip: &mut SafeZip) -> Result<(Value, Params), PersistError> {
    let value = zip.read_json(PARAMS_ENTRY)?;
    let params = snapshot::restore(&value).map_err(|detail| PersistError::BadParams {
        path: zip.path().to_path_buf(),
        entry: PARAMS_ENTRY.into(),
        detail,
    })?;
    Ok((value, params))
}

/// Read `history.json` if the archive has one (empty otherwise) and check it.
fn read_history_entry(zip: &mut SafeZip) -> Result<Vec<LossRecord>, PersistError> {
    if !zip.has(HISTORY_ENTRY) {
        return Ok(Vec::new());
    }
    let value = zip.read_json(HISTORY_ENTRY)?;
    let bad = |detail: String| PersistError::BadHistory {
        path: zip.path().to_path_buf(),
        entry: HISTORY_ENTRY.into(),
        detail,
    };
    let history: Vec<LossRecord> = serde_json::from_value(value).map_err(|e| bad(e.to_string()))?;
    check_history(&history).map_err(bad)?;
    Ok(history)
}

/// The training loss history stored in the archive at `path` (empty for an archive saved
/// without one), after the same manifest checks as [`load_archive`]; no model is built and no
/// weights are read.
pub fn read_history(path: &Path) -> Result<Vec<LossRecord>, PersistError> {
    let mut zip = SafeZip::open(path)?;
    read_manifest(&mut zip)?;
    read_history_entry(&mut zip)
}

/// Load the archive at `path` in CONFIG-001 order: validate the manifest → restore the params
/// from the archive's snapshot → build each model with `build(&restored_params)` → load its
/// weights → check every tensor's shape. The caller's own configuration plays no part; loading
/// needs nothing but the archive.
///
/// Each model directory is self-contained: its `params.json` must agree with the root one, and
/// its weights are loaded independently into its own freshly built model.
pub fn load_archive<M, F, E>(
    path: &Path,
    build: F,
) -> Result<(LoadedArchive<M>, Params), PersistError>
where
    M: Module,
    F: Fn(&Params) -> Result<M, E>,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut zip = SafeZip::open(path)?;
    let manifest = read_manifest(&mut zip)?;
    let (root_value, params) = read_params(&mut zip)?;
    let history = read_history_entry(&mut zip)?;
    let mut models = Vec::with_capacity(MODEL_NAMES.len());
    for name in MODEL_NAMES {
        let entry = model_entry(name, MODEL_PARAMS_FILE);
        let own = zip.read_json(&entry)?;
        if own != root_value {
            return Err(PersistError::Inconsistent {
                path: path.to_path_buf(),
                entry,
                detail: format!("differs from the root `{PARAMS_ENTRY}`"),
            });
        }
        let mut model = build(&params).map_err(|e| PersistError::Build {
            path: path.to_path_buf(),
            model: name.into(),
            source: e.into(),
        })?;
        let entry = model_entry(name, WEIGHTS_FILE);
        let bytes = zip.read(&entry)?;
        load_weights(path, &entry, bytes, &mut model)?;
        models.push(model);
    }
    let diffraction_to_obj = models.pop();
    let autoencoder = models.pop();
    match (autoencoder, diffraction_to_obj) {
        (Some(autoencoder), Some(diffraction_to_obj)) => Ok((
            LoadedArchive {
                manifest,
                history,
                autoencoder,
                diffraction_to_obj,
            },
            params,
        )),
        _ => Err(PersistError::MissingEntry {
            path: path.to_path_buf(),
            entry: MODEL_NAMES.join(", "),
        }),
    }
}

/// Apply safetensors `bytes` to `model`; every tensor must be present, fit in shape and dtype,
/// and be used.
fn load_weights<M: Module>(
    path: &Path,
    entry: &str,
    bytes: Vec<u8>,
    model: &mut M,
) -> Result<(), PersistError> {
    // Check the header first so that a malformed file is reported as such.
    crate::weights::summarize(&bytes).map_err(|detail| PersistError::BadWeights {
        path: path.to_path_buf(),
        entry: entry.into(),
        detail,
    })?;
    let mut store = SafetensorsStore::from_bytes(Some(bytes))
        .validate(false)
        .allow_partial(true);
    let result = model
        .load_from(&mut store)
        .map_err(|e| PersistError::BadWeights {
            path: path.to_path_buf(),
            entry: entry.into(),
            detail: e.to_string(),
        })?;
    let mut problems: Vec<String> = result.errors.iter().map(|e| e.to_string()).collect();
    problems.extend(
        result
            .missing
            .iter()
            .map(|(p, _)| format!("tensor `{p}` missing from the file")),
    );
    problems.extend(
        result
            .unused
            .iter()
            .map(|p| format!("tensor `{p}` in the file is not part of the model")),
    );
    if !problems.is_empty() {
        return Err(PersistError::WeightMismatch {
            path: path.to_path_buf(),
            entry: entry.into(),
            detail: problems.join("; "),
        });
    }
    Ok(())
}

/// The params restored from the archive at `path` (after the manifest checks), without building
/// a model or reading weights: what [`crate::load_any_model`] reads to choose the network.
pub fn read_archive_params(path: &Path) -> Result<Params, PersistError> {
    let mut zip = SafeZip::open(path)?;
    read_manifest(&mut zip)?;
    Ok(read_params(&mut zip)?.1)
}

pub(crate) fn open_checked(path: &Path) -> Result<(SafeZip, Manifest), PersistError> {
    let mut zip = SafeZip::open(path)?;
    let manifest = read_manifest(&mut zip)?;
    Ok((zip, manifest))
}

pub(crate) fn read_root_params(zip: &mut SafeZip) -> Result<(Value, Params), PersistError> {
    read_params(zip)
}

pub(crate) fn read_root_history(zip: &mut SafeZip) -> Result<Vec<LossRecord>, PersistError> {
    read_history_entry(zip)
}
