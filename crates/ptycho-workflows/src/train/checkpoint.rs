//! The per-epoch training checkpoint `checkpoint.zip`: one zip written atomically
//! ([`crate::fsutil::write_bytes_atomic`]), so a killed process leaves the previous complete
//! checkpoint or the new one, never a partial file.
//!
//! Entries (stored, uncompressed):
//! - `state.json`: [`CheckpointState`] (epochs done, learning rate, plateau / early-stop counters,
//!   history, data fingerprint);
//! - `params.json`: the legacy params view + `intensity_scale` (the params snapshot);
//! - `probe.bin`: the normalised probe, N×N complex64 little-endian (re, im interleaved, row-major);
//! - `model.bpk`: the weights as a Burn record (keeps parameter ids, which key the optimiser state);
//! - `optimizer.bpk`: the Adam state (moments, step counts).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::optim::ModuleOptimizer;
use burn::store::ModuleRecord;
use burn::tensor::Bytes;
use num_complex::Complex32;
use ptycho_config::legacy::LegacyMap;
use ptycho_config::{Params, ProbeField};
use ptycho_model::PtychoPinn;
use serde::{Deserialize, Serialize};
use zip::write::SimpleFileOptions;

use super::TrainError;
use super::history::EpochRecord;
use super::schedule::{EarlyStop, Plateau};
use crate::fsutil::write_bytes_atomic;

/// File name of the checkpoint inside the output directory.
pub const CHECKPOINT_NAME: &str = "checkpoint.zip";
/// `format` value of `state.json`.
pub const CHECKPOINT_FORMAT: &str = "ptycho-train-checkpoint";
/// Layout version of the checkpoint.
pub const CHECKPOINT_VERSION: u32 = 1;

const STATE: &str = "state.json";
const PARAMS: &str = "params.json";
const PROBE: &str = "probe.bin";
const MODEL: &str = "model.bpk";
const OPTIM: &str = "optimizer.bpk";
const KEY_S: &str = "intensity_scale";

/// Everything but the tensors: where the run stands after `epochs_done` complete epochs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointState {
    pub format: String,
    pub version: u32,
    /// Complete epochs so far (the next epoch to run has index `epochs_done`).
    pub epochs_done: usize,
    /// Learning rate for the next epoch.
    pub lr: f64,
    pub plateau: Plateau,
    pub early_stop: EarlyStop,
    /// Early stopping fired: the run is finished even if `epochs_done < nepochs`.
    pub stopped_early: bool,
    pub history: Vec<EpochRecord>,
    /// Groups formed, training and validation groups.
    pub n_groups: usize,
    pub n_train: usize,
    pub n_val: usize,
    /// FNV-1a hash of the group index table and the normalisation factor: a resumed run must see
    /// the same groups.
    pub data_fingerprint: u64,
    /// Seed of grouping, initialisation and per-epoch shuffling.
    pub seed: u64,
}

/// A decoded checkpoint (tensors still as bytes; apply them with [`Checkpoint::restore`]).
#[derive(Debug)]
pub struct Checkpoint {
    pub state: CheckpointState,
    /// The params snapshot (legacy view, `intensity_scale`, probe).
    pub params: Params,
    model: Vec<u8>,
    optim: Vec<u8>,
}

fn ck_err(path: &Path, entry: &str, reason: impl Into<String>) -> TrainError {
    TrainError::Checkpoint {
        path: path.to_path_buf(),
        entry: entry.into(),
        reason: reason.into(),
    }
}

/// Encode and atomically write the checkpoint at `path`.
pub fn save(
    path: &Path,
    state: &CheckpointState,
    params: &Params,
    model: &PtychoPinn,
    optim: &ModuleOptimizer,
) -> Result<(), TrainError> {
    let state_json =
        serde_json::to_vec_pretty(state).map_err(|e| ck_err(path, STATE, e.to_string()))?;
    let mut legacy = params.to_legacy();
    legacy.insert(KEY_S.into(), serde_json::json!(params.intensity_scale()));
    let params_json =
        serde_json::to_vec_pretty(&legacy).map_err(|e| ck_err(path, PARAMS, e.to_string()))?;
    let probe = params
        .probe()
        .ok_or_else(|| ck_err(path, PROBE, "the params carry no probe"))?;
    let mut probe_bytes = Vec::with_capacity(probe.data.len() * 8);
    for z in &probe.data {
        probe_bytes.extend_from_slice(&z.re.to_le_bytes());
        probe_bytes.extend_from_slice(&z.im.to_le_bytes());
    }
    let model_bytes = model
        .clone()
        .into_record()
        .into_bytes()
        .map_err(|e| ck_err(path, MODEL, e.to_string()))?;
    let optim_bytes = optim
        .into_bytes()
        .map_err(|e| ck_err(path, OPTIM, e.to_string()))?;

    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut buf);
        let opts = SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored)
            .large_file(true);
        let entries: [(&str, &[u8]); 5] = [
            (STATE, &state_json),
            (PARAMS, &params_json),
            (PROBE, &probe_bytes),
            (MODEL, &model_bytes),
            (OPTIM, &optim_bytes),
        ];
        for (name, bytes) in entries {
            zip.start_file(name, opts)
                .and_then(|_| zip.write_all(bytes).map_err(Into::into))
                .map_err(|e| ck_err(path, name, e.to_string()))?;
        }
        zip.finish().map_err(|e| ck_err(path, "", e.to_string()))?;
    }
    write_bytes_atomic(path, buf.get_ref()).map_err(|source| TrainError::Io {
        path: path.to_path_buf(),
        action: "writing the checkpoint",
        source,
    })
}

fn read_entry(
    zip: &mut zip::ZipArchive<std::fs::File>,
    path: &Path,
    name: &str,
) -> Result<Vec<u8>, TrainError> {
    let mut f = zip
        .by_name(name)
        .map_err(|e| ck_err(path, name, format!("missing: {e}")))?;
    let mut out = Vec::with_capacity(f.size().min(1 << 30) as usize);
    f.read_to_end(&mut out)
        .map_err(|e| ck_err(path, name, e.to_string()))?;
    Ok(out)
}

/// Read and check a checkpoint (format, version, params snapshot, probe size). The tensors are
/// decoded when applied.
pub fn load(path: &Path) -> Result<Checkpoint, TrainError> {
    let file = std::fs::File::open(path).map_err(|source| TrainError::Io {
        path: path.to_path_buf(),
        action: "opening the checkpoint",
        source,
    })?;
    let mut zip =
        zip::ZipArchive::new(file).map_err(|e| ck_err(path, "", format!("not a zip: {e}")))?;
    let state: CheckpointState = serde_json::from_slice(&read_entry(&mut zip, path, STATE)?)
        .map_err(|e| ck_err(path, STATE, e.to_string()))?;
    if state.format != CHECKPOINT_FORMAT || state.version != CHECKPOINT_VERSION {
        return Err(ck_err(
            path,
            STATE,
            format!(
                "format {:?} version {} (expected {CHECKPOINT_FORMAT:?} version {CHECKPOINT_VERSION})",
                state.format, state.version
            ),
        ));
    }
    if state.history.len() != state.epochs_done {
        return Err(ck_err(
            path,
            STATE,
            format!(
                "history has {} epochs but epochs_done = {}",
                state.history.len(),
                state.epochs_done
            ),
        ));
    }
    let legacy: LegacyMap = serde_json::from_slice(&read_entry(&mut zip, path, PARAMS)?)
        .map_err(|e| ck_err(path, PARAMS, e.to_string()))?;
    let s = legacy
        .get(KEY_S)
        .and_then(serde_json::Value::as_f64)
        .filter(|s| s.is_finite() && *s > 0.0)
        .ok_or_else(|| {
            ck_err(
                path,
                PARAMS,
                "intensity_scale missing or not a positive number",
            )
        })?;
    let params = Params::from_legacy(&legacy).map_err(|e| ck_err(path, PARAMS, e.to_string()))?;
    let n = params.n();
    let raw = read_entry(&mut zip, path, PROBE)?;
    if raw.len() != n * n * 8 {
        return Err(ck_err(
            path,
            PROBE,
            format!("{} bytes, expected N×N×8 = {}", raw.len(), n * n * 8),
        ));
    }
    let data: Vec<Complex32> = raw
        .chunks_exact(8)
        .map(|c| {
            Complex32::new(
                f32::from_le_bytes([c[0], c[1], c[2], c[3]]),
                f32::from_le_bytes([c[4], c[5], c[6], c[7]]),
            )
        })
        .collect();
    if data.iter().any(|z| !z.re.is_finite() || !z.im.is_finite()) {
        return Err(ck_err(path, PROBE, "non-finite probe value"));
    }
    let params = params
        .with_intensity_scale(s)
        .with_probe(ProbeField { n, data });
    let model = read_entry(&mut zip, path, MODEL)?;
    let optim = read_entry(&mut zip, path, OPTIM)?;
    Ok(Checkpoint {
        state,
        params,
        model,
        optim,
    })
}

impl Checkpoint {
    /// Load the weights into `model` (built from the same params) and the Adam state into
    /// `optim`. Parameter ids are restored from the record, so the optimiser state matches.
    pub fn restore(
        &self,
        path: &Path,
        model: PtychoPinn,
        optim: ModuleOptimizer,
    ) -> Result<(PtychoPinn, ModuleOptimizer), TrainError> {
        let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(self.model.clone()))
            .map_err(|e| ck_err(path, MODEL, e.to_string()))?;
        let model = model
            .try_load_record(record)
            .map_err(|e| ck_err(path, MODEL, e.to_string()))?;
        let optim = optim
            .from_bytes(Bytes::from_bytes_vec(self.optim.clone()))
            .map_err(|e| ck_err(path, OPTIM, e.to_string()))?;
        Ok((model, optim))
    }
}

/// FNV-1a 64 over the group index table and the bits of the normalisation factor.
pub fn fingerprint(indices: impl IntoIterator<Item = usize>, norm_factor: f64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    for i in indices {
        eat(&(i as u64).to_le_bytes());
    }
    eat(&norm_factor.to_bits().to_le_bytes());
    h
}

/// Path of the checkpoint in `dir`.
pub fn path_in(dir: &Path) -> PathBuf {
    dir.join(CHECKPOINT_NAME)
}
