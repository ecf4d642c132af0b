//! The run state of a training checkpoint. The file `checkpoint.zip` itself (layout, params
//! snapshot, probe, weights, optimiser state, atomic writing, bounded reading) belongs to
//! [`ptycho_persist::checkpoint`]; this module defines what a training run stores in it and checks
//! it on reading.

use std::path::{Path, PathBuf};

use burn::optim::ModuleOptimizer;
use ptycho_config::Params;
use ptycho_model::PtychoPinn;
use serde::{Deserialize, Serialize};

pub use ptycho_persist::checkpoint::{CHECKPOINT_FORMAT, CHECKPOINT_NAME, CHECKPOINT_VERSION};

use super::history::EpochRecord;
use super::schedule::{EarlyStop, Plateau};
use crate::error::WorkflowError;

/// A training checkpoint as read back: the run state, the params (probe and intensity scale
/// attached) and the tensors, applied with [`ptycho_persist::Checkpoint::restore`].
pub type Checkpoint = ptycho_persist::Checkpoint<CheckpointState>;

/// Everything but the tensors: where the run stands after `epochs_done` complete epochs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointState {
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

/// Atomically write the checkpoint at `path`.
pub fn save(
    path: &Path,
    state: &CheckpointState,
    params: &Params,
    model: &PtychoPinn,
    optim: &ModuleOptimizer,
) -> Result<(), WorkflowError> {
    Ok(ptycho_persist::save_checkpoint(
        path, state, params, model, optim,
    )?)
}

/// Read and check a checkpoint (the file, then the run state's consistency).
pub fn load(path: &Path) -> Result<Checkpoint, WorkflowError> {
    let ck: Checkpoint = ptycho_persist::load_checkpoint(path)?;
    let st = &ck.state;
    if st.history.len() != st.epochs_done {
        return Err(WorkflowError::Checkpoint {
            path: path.to_path_buf(),
            entry: "state.bin".into(),
            reason: format!(
                "history has {} epochs but epochs_done = {}",
                st.history.len(),
                st.epochs_done
            ),
        });
    }
    Ok(ck)
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
    ptycho_persist::checkpoint_path(dir)
}
