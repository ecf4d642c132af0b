//! The training checkpoint `checkpoint.zip`: where a training run stands after its last complete
//! epoch, written atomically ([`crate::atomic`]) so that a killed process leaves the previous
//! complete checkpoint or the new one, never a partial file, and read back through the bounded
//! zip reader ([`SafeZip`]).
//!
//! Entries (stored, uncompressed):
//! - `manifest.json`: `{"format": "ptycho-train-checkpoint", "format_version": 2, "crate_version"}`;
//! - `params.json`: the archive's params snapshot without the probe (legacy flat view +
//!   `intensity_scale`, JSON);
//! - `probe.bin`: the normalised probe, the archive's stored probe as bincode;
//! - `state.bin`: the caller's run state (any serde type: epochs done, learning rate, schedule
//!   counters, history, data fingerprint…) as bincode;
//! - `model.bpk`: the weights as a Burn record (keeps parameter ids, which key the optimiser state);
//! - `optimizer.bpk`: the optimiser state as Burn stores it (Adam moments, step counts).
//!
//! Version 1 (`state.json` + raw `probe.bin`, written by earlier versions) is refused with an
//! error that says so (a run interrupted by an older ptycho is started again, not resumed).

use std::io::Write;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::optim::ModuleOptimizer;
use burn::store::ModuleRecord;
use burn::tensor::Bytes;
use ptycho_config::Params;
use ptycho_config::legacy::LegacyMap;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use zip::write::SimpleFileOptions;

use crate::atomic::write_bytes_atomic;
use crate::error::PersistError;
use crate::snapshot::{self, StoredProbe};
use crate::zipread::SafeZip;

/// File name of the checkpoint inside a training output directory.
pub const CHECKPOINT_NAME: &str = "checkpoint.zip";
/// `format` of the checkpoint's manifest.
pub const CHECKPOINT_FORMAT: &str = "ptycho-train-checkpoint";
/// Layout version this crate writes and reads.
pub const CHECKPOINT_VERSION: u64 = 3;

const MANIFEST: &str = "manifest.json";
const PARAMS: &str = "params.json";
const PROBE: &str = "probe.bin";
const STATE: &str = "state.bin";
const MODEL: &str = "model.bpk";
const OPTIM: &str = "optimizer.bpk";
/// The version-1 run state entry (JSON).
const STATE_V1: &str = "state.json";

/// Most bytes bincode may allocate while decoding the run state or the probe.
const BINCODE_LIMIT: usize = 256 << 20;

/// The checkpoint's `manifest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckpointManifest {
    format: String,
    format_version: u64,
    /// Version of the ptycho-persist crate that wrote the checkpoint.
    crate_version: String,
}

fn bincode_config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<BINCODE_LIMIT>()
}

/// Path of the checkpoint in `dir`.
pub fn checkpoint_path(dir: &Path) -> PathBuf {
    dir.join(CHECKPOINT_NAME)
}

/// A decoded checkpoint (tensors still as bytes; apply them with [`Checkpoint::restore`]).
#[derive(Debug)]
pub struct Checkpoint<S> {
    /// The file it was read from.
    pub path: PathBuf,
    /// The caller's run state.
    pub state: S,
    /// The params snapshot (legacy view, `intensity_scale`, probe).
    pub params: Params,
    model: Vec<u8>,
    optim: Vec<u8>,
}

fn bad(path: &Path, entry: &str, detail: impl Into<String>) -> PersistError {
    PersistError::BadCheckpoint {
        path: path.to_path_buf(),
        entry: entry.into(),
        detail: detail.into(),
    }
}

/// Encode and atomically write the checkpoint at `path`: `state` (the caller's run state),
/// `params` (which must carry the probe), the weights of `model` and the state of `optim`.
pub fn save_checkpoint<S: Serialize, M: Module>(
    path: &Path,
    state: &S,
    params: &Params,
    model: &M,
    optim: &ModuleOptimizer,
) -> Result<(), PersistError> {
    let manifest = CheckpointManifest {
        format: CHECKPOINT_FORMAT.into(),
        format_version: CHECKPOINT_VERSION,
        crate_version: env!("CARGO_PKG_VERSION").into(),
    };
    let manifest_json =
        serde_json::to_vec_pretty(&manifest).map_err(|e| bad(path, MANIFEST, e.to_string()))?;
    let map = snapshot::encode_map(params).map_err(|e| bad(path, PARAMS, e))?;
    let params_json =
        serde_json::to_vec_pretty(&map).map_err(|e| bad(path, PARAMS, e.to_string()))?;
    let probe = params
        .probe()
        .ok_or_else(|| bad(path, PROBE, "the params carry no probe"))?;
    let probe = StoredProbe::from_field(probe).map_err(|e| bad(path, PROBE, e))?;
    let probe_bin = bincode::serde::encode_to_vec(&probe, bincode_config())
        .map_err(|e| bad(path, PROBE, e.to_string()))?;
    let state_bin = bincode::serde::encode_to_vec(state, bincode_config())
        .map_err(|e| bad(path, STATE, e.to_string()))?;
    let model_bytes = model
        .clone()
        .into_record()
        .into_bytes()
        .map_err(|e| bad(path, MODEL, e.to_string()))?;
    let optim_bytes = optim
        .into_bytes()
        .map_err(|e| bad(path, OPTIM, e.to_string()))?;

    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut buf);
        let opts = SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored)
            .unix_permissions(0o644)
            .large_file(true);
        let entries: [(&str, &[u8]); 6] = [
            (MANIFEST, &manifest_json),
            (PARAMS, &params_json),
            (PROBE, &probe_bin),
            (STATE, &state_bin),
            (MODEL, &model_bytes),
            (OPTIM, &optim_bytes),
        ];
        for (name, bytes) in entries {
            zip.start_file(name, opts)
                .map_err(std::io::Error::other)
                .and_then(|_| zip.write_all(bytes))
                .map_err(|e| bad(path, name, e.to_string()))?;
        }
        zip.finish()
            .map_err(|e| bad(path, "<central directory>", e.to_string()))?;
    }
    write_bytes_atomic(path, buf.get_ref()).map_err(|source| PersistError::Io {
        path: path.to_path_buf(),
        action: "writing the checkpoint",
        source,
    })
}

/// Decode a bincode entry, refusing trailing bytes.
fn decode<T: DeserializeOwned>(zip: &mut SafeZip, entry: &str) -> Result<T, PersistError> {
    let bytes = zip.read(entry)?;
    let (value, used) = bincode::serde::decode_from_slice(&bytes, bincode_config())
        .map_err(|e| bad(zip.path(), entry, e.to_string()))?;
    if used != bytes.len() {
        return Err(bad(
            zip.path(),
            entry,
            format!("{} trailing bytes after the value", bytes.len() - used),
        ));
    }
    Ok(value)
}

/// Read and check a checkpoint (manifest, params snapshot, probe size and values, run state).
/// The tensors are decoded when applied ([`Checkpoint::restore`]).
pub fn load_checkpoint<S: DeserializeOwned>(path: &Path) -> Result<Checkpoint<S>, PersistError> {
    let mut zip = SafeZip::open(path)?;
    let older = |entry: &str, found: u64| {
        bad(
            path,
            entry,
            format!(
                "format version {found} was written by an earlier ptycho and is not read by this \
                 one (version {CHECKPOINT_VERSION}); start the training again"
            ),
        )
    };
    if !zip.has(MANIFEST) && zip.has(STATE_V1) {
        return Err(older(STATE_V1, 1));
    }
    let manifest: CheckpointManifest = serde_json::from_value(zip.read_json(MANIFEST)?)
        .map_err(|e| bad(path, MANIFEST, e.to_string()))?;
    if manifest.format != CHECKPOINT_FORMAT {
        return Err(bad(
            path,
            MANIFEST,
            format!(
                "`format` is {:?}, expected {CHECKPOINT_FORMAT:?}",
                manifest.format
            ),
        ));
    }
    if manifest.format_version < CHECKPOINT_VERSION {
        return Err(older(MANIFEST, manifest.format_version));
    }
    if manifest.format_version > CHECKPOINT_VERSION {
        return Err(PersistError::UnsupportedVersion {
            path: path.to_path_buf(),
            entry: MANIFEST.into(),
            found: manifest.format_version,
            supported: CHECKPOINT_VERSION,
        });
    }
    let map: LegacyMap = serde_json::from_value(zip.read_json(PARAMS)?)
        .map_err(|e| bad(path, PARAMS, e.to_string()))?;
    let params = snapshot::restore_map(&map).map_err(|detail| PersistError::BadParams {
        path: path.to_path_buf(),
        entry: PARAMS.into(),
        detail,
    })?;
    let probe: StoredProbe = decode(&mut zip, PROBE)?;
    let probe = probe
        .into_field(params.n())
        .map_err(|e| bad(path, PROBE, e))?;
    let params = params.with_probe(probe);
    let state: S = decode(&mut zip, STATE)?;
    let model = zip.read(MODEL)?;
    let optim = zip.read(OPTIM)?;
    Ok(Checkpoint {
        path: path.to_path_buf(),
        state,
        params,
        model,
        optim,
    })
}

impl<S> Checkpoint<S> {
    /// Load the weights into `model` (built from the same params) and the optimiser state into
    /// `optim`. Parameter ids are restored from the record, so the optimiser state matches.
    pub fn restore<M: Module>(
        &self,
        model: M,
        optim: ModuleOptimizer,
    ) -> Result<(M, ModuleOptimizer), PersistError> {
        let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(self.model.clone()))
            .map_err(|e| bad(&self.path, MODEL, e.to_string()))?;
        let model = model
            .try_load_record(record)
            .map_err(|e| bad(&self.path, MODEL, e.to_string()))?;
        let optim = optim
            .from_bytes(Bytes::from_bytes_vec(self.optim.clone()))
            .map_err(|e| bad(&self.path, OPTIM, e.to_string()))?;
        Ok((model, optim))
    }
}
