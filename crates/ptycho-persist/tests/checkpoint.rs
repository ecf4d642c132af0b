//! Integration tests of the training checkpoint: a round trip of run state, params, probe,
//! weights and optimiser state, and refusals of tampered or older checkpoints.

mod common;

use burn::nn::{Linear, LinearConfig};
use burn::optim::{AdamConfig, ModuleOptimizer};
use burn::prelude::*;
use num_complex::Complex32;
use ptycho_config::{Params, ProbeField, TrainingConfig};
use ptycho_persist::{Checkpoint, PersistError, load_checkpoint, save_checkpoint};
use serde::{Deserialize, Serialize};
use zip::CompressionMethod;

use common::{read_entries, write_zip};

/// A run state of the kind the training workflow stores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct RunState {
    epochs_done: usize,
    lr: f64,
    best: Option<f64>,
    history: Vec<(usize, f64, Option<f64>)>,
    fingerprint: u64,
}

fn state() -> RunState {
    RunState {
        epochs_done: 2,
        lr: 5e-4,
        best: Some(0.125),
        history: vec![(1, 2.5, Some(2.0)), (2, 2.25, None)],
        fingerprint: 0xdead_beef_0123_4567,
    }
}

fn params() -> Params {
    let n = 64;
    let data = (0..n * n)
        .map(|i| Complex32::new((i as f32 * 0.37).sin(), 1.0 / (1.0 + i as f32)))
        .collect();
    Params::from_training(&TrainingConfig::default().validate().unwrap())
        .with_probe(ProbeField { n, data })
        .with_intensity_scale(987.654_321)
}

fn model(device: &Device) -> Linear {
    LinearConfig::new(3, 2).init(device)
}

fn adam() -> ModuleOptimizer {
    AdamConfig::new().init()
}

fn weights(m: &Linear) -> Vec<f32> {
    m.weight.val().into_data().try_to_vec::<f32>().unwrap()
}

#[test]
fn round_trip_restores_state_params_probe_and_weights() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("checkpoint.zip");
    let device = Device::flex();
    let saved = model(&device);
    let p = params();
    save_checkpoint(&path, &state(), &p, &saved, &adam()).unwrap();
    let names: Vec<String> = read_entries(&path).into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "manifest.json",
            "params.json",
            "probe.bin",
            "state.bin",
            "model.bpk",
            "optimizer.bpk"
        ]
    );
    // Only the finished file is left in the directory.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);

    let ck: Checkpoint<RunState> = load_checkpoint(&path).unwrap();
    assert_eq!(ck.state, state());
    assert_eq!(ck.params.model(), p.model());
    assert_eq!(
        ck.params.intensity_scale().to_bits(),
        p.intensity_scale().to_bits()
    );
    assert_eq!(ck.params.probe(), p.probe());
    let (restored, _) = ck.restore(model(&device), adam()).unwrap();
    assert_eq!(weights(&restored), weights(&saved));
}

#[test]
fn refuses_a_probe_of_the_wrong_size_naming_entry_and_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("checkpoint.zip");
    let device = Device::flex();
    save_checkpoint(&path, &state(), &params(), &model(&device), &adam()).unwrap();
    // The probe of a 32×32 run in a checkpoint whose params say N = 64.
    let other = dir.path().join("other.zip");
    let small = params().with_probe(ProbeField {
        n: 32,
        data: vec![Complex32::new(1.0, 0.0); 32 * 32],
    });
    save_checkpoint(&other, &state(), &small, &model(&device), &adam()).unwrap();
    let probe = read_entries(&other)
        .into_iter()
        .find(|(n, _)| n == "probe.bin")
        .unwrap();
    let mut e = read_entries(&path);
    e.iter_mut().find(|(n, _)| n == "probe.bin").unwrap().1 = probe.1;
    let bad = dir.path().join("bad.zip");
    write_zip(&bad, &e, CompressionMethod::Stored);
    let err = load_checkpoint::<RunState>(&bad).unwrap_err();
    assert!(matches!(err, PersistError::BadCheckpoint { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains(&bad.display().to_string()), "{msg}");
    assert!(
        msg.contains("`probe.bin`") && msg.contains("probe.n = 32 but the params say N = 64"),
        "{msg}"
    );
}

#[test]
fn refuses_garbage_state_and_an_older_checkpoint_version() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("checkpoint.zip");
    save_checkpoint(&path, &state(), &params(), &model(&Device::flex()), &adam()).unwrap();
    let mut e = read_entries(&path);
    e.iter_mut().find(|(n, _)| n == "state.bin").unwrap().1 = vec![0xff; 3];
    let bad = dir.path().join("garbage.zip");
    write_zip(&bad, &e, CompressionMethod::Stored);
    let err = load_checkpoint::<RunState>(&bad).unwrap_err();
    assert!(
        matches!(&err, PersistError::BadCheckpoint { entry, .. } if entry == "state.bin"),
        "{err}"
    );

    // Version 1: `state.json` and no manifest.
    let v1 = dir.path().join("v1.zip");
    write_zip(
        &v1,
        &[
            ("state.json".into(), b"{}".to_vec()),
            ("params.json".into(), b"{}".to_vec()),
        ],
        CompressionMethod::Stored,
    );
    let err = load_checkpoint::<RunState>(&v1).unwrap_err();
    assert!(
        matches!(&err, PersistError::BadCheckpoint { entry, .. } if entry == "state.json"),
        "{err}"
    );
    assert!(err.to_string().contains("format version 1"), "{err}");

    let err = load_checkpoint::<RunState>(&dir.path().join("none.zip")).unwrap_err();
    assert!(matches!(err, PersistError::Io { .. }), "{err}");
}
