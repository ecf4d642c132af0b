//! End-to-end `ptycho train`: the real binary on a dataset simulated in-process (N = 64,
//! n_filters_scale 1, 32 groups), one-line errors, and SIGKILL during training followed by
//! `--resume DIR`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use ptycho_config::SimulationConfig;
use ptycho_e2e::ptycho_bin;
use ptycho_workflows::simulate_lines;

fn write_data(dir: &Path, seed: u64) -> PathBuf {
    write_data_with(dir, seed, SimulationConfig::default().nphotons)
}

/// 40 simulated patterns; the file's `_metadata` records `nphotons`.
fn write_data_with(dir: &Path, seed: u64, nphotons: f64) -> PathBuf {
    let raw = simulate_lines(
        &SimulationConfig {
            n_images: 40,
            seed,
            nphotons,
            ..Default::default()
        }
        .validate()
        .unwrap(),
    )
    .unwrap();
    let path = dir.join("train.npz");
    raw.write_npz(&path).unwrap();
    path
}

/// Tiny-model flags shared by the runs (seeded explicitly, not through the default).
fn tiny(nepochs: usize) -> Vec<String> {
    [
        "--seed",
        "42",
        "--n-filters-scale",
        "1",
        "--n_groups",
        "32",
        "--batch_size",
        "16",
        "--early-stop-patience",
        "0",
        "--nepochs",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([nepochs.to_string(), "--quiet".into()])
    .collect()
}

fn ptycho(args: &[String]) -> Output {
    Command::new(ptycho_bin()).args(args).output().unwrap()
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

fn stderr_one_line(out: &Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(err.trim_end().lines().count(), 1, "stderr: {err}");
    assert!(err.starts_with("error:"), "stderr: {err}");
    assert!(!err.contains("panicked"), "stderr: {err}");
    err
}

/// The run state of a checkpoint, as JSON. Every entry is checked to be present and non-empty
/// with plain zip first (the file on disk is complete), then the state is decoded by ptycho.
fn checkpoint_state(path: &Path) -> serde_json::Value {
    let mut zip = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
    for name in [
        "manifest.json",
        "params.json",
        "probe.bin",
        "state.bin",
        "model.bpk",
        "optimizer.bpk",
    ] {
        let mut e = zip.by_name(name).unwrap();
        let mut buf = Vec::new();
        e.read_to_end(&mut buf).unwrap();
        assert!(!buf.is_empty(), "{name} empty");
    }
    let ck = ptycho_workflows::train::checkpoint::load(path).unwrap();
    serde_json::to_value(&ck.state).unwrap()
}

#[test]
fn train_writes_an_archive_and_reports_errors_on_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    // Simulated with 1e6 photons: training takes that from the file's `_metadata`, not 1e9.
    let data = write_data_with(tmp.path(), 3, 1e6);
    let out_dir = tmp.path().join("out");
    let mut args = vec![
        "train".to_string(),
        "--train-data".into(),
        s(&data),
        "--output-dir".into(),
        s(&out_dir),
    ];
    args.extend(tiny(1));
    let out = ptycho(&args);
    assert!(
        out.status.success(),
        "ptycho train failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("trained 1 epochs"), "{stdout}");
    for f in [
        "wts.h5.zip",
        "checkpoint.zip",
        "config.toml",
        "history.csv",
        "loss_curve.png",
    ] {
        assert!(out_dir.join(f).is_file(), "{f} missing");
    }
    let info = ptycho_persist::inspect_archive(&out_dir.join("wts.h5.zip")).unwrap();
    assert_eq!(info.models.len(), 2);
    assert_eq!(info.params["nphotons"], serde_json::json!(1e6));
    // intensity_scale = sqrt(nphotons) / (N / 2) with N = 64.
    let scale = info.params["intensity_scale"].as_f64().unwrap();
    assert!((scale - 1e3 / 32.0).abs() < 1e-9, "intensity_scale {scale}");

    // Same directory again: refused, one line, non-zero exit; --overwrite is accepted.
    let again = ptycho(&args);
    assert!(!again.status.success());
    let err = stderr_one_line(&again);
    assert!(
        err.contains("wts.h5.zip") && err.contains("--overwrite"),
        "{err}"
    );

    // No training data; a missing file; a bad device.
    let out = ptycho(&[
        "train".into(),
        "--output-dir".into(),
        s(&tmp.path().join("x")),
    ]);
    assert!(!out.status.success());
    assert!(stderr_one_line(&out).contains("--train-data"));
    let out = ptycho(&[
        "train".into(),
        "--train_data_file".into(),
        s(&tmp.path().join("nope.npz")),
        "--output_dir".into(),
        s(&tmp.path().join("y")),
    ]);
    assert!(!out.status.success());
    assert!(stderr_one_line(&out).contains("nope.npz"));
    let out = ptycho(&["train".into(), "--device".into(), "gpu7".into()]);
    assert!(!out.status.success());
    assert!(stderr_one_line(&out).contains("gpu7"));
    let out = ptycho(&["train".into(), "--resume".into(), s(&tmp.path().join("z"))]);
    assert!(!out.status.success());
    assert!(stderr_one_line(&out).contains("config.toml"));
}

#[test]
fn sigkill_during_training_then_resume_finishes() {
    let tmp = tempfile::tempdir().unwrap();
    let data = write_data(tmp.path(), 4);
    let out_dir = tmp.path().join("run");
    let nepochs = 4;
    let mut args = vec![
        "train".to_string(),
        "--train-data".into(),
        s(&data),
        "--output-dir".into(),
        s(&out_dir),
    ];
    args.extend(tiny(nepochs));
    let mut child = Command::new(ptycho_bin())
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let ck = out_dir.join("checkpoint.zip");
    let t0 = Instant::now();
    while !ck.exists() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("ptycho train exited before the first checkpoint: {status}");
        }
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "no checkpoint after 120 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    // What is on disk is complete: the checkpoint opens and holds k ≥ 1 epochs; no archive yet
    // (or, had the run finished, a complete one).
    let state = checkpoint_state(&ck);
    let done = state["epochs_done"].as_u64().unwrap() as usize;
    assert!((1..=nepochs).contains(&done), "{state}");
    assert_eq!(state["history"].as_array().unwrap().len(), done);
    let archive = out_dir.join("wts.h5.zip");
    if archive.exists() {
        ptycho_persist::inspect_archive(&archive).unwrap();
    }

    // `--resume DIR` alone is enough.
    let out = ptycho(&[
        "train".into(),
        "--resume".into(),
        s(&out_dir),
        "--quiet".into(),
    ]);
    assert!(
        out.status.success(),
        "resume failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let state = checkpoint_state(&ck);
    assert_eq!(state["epochs_done"].as_u64(), Some(nepochs as u64));
    let csv = std::fs::read_to_string(out_dir.join("history.csv")).unwrap();
    assert_eq!(csv.lines().count(), nepochs + 1, "{csv}");
    let info = ptycho_persist::inspect_archive(&archive).unwrap();
    assert_eq!(info.models.len(), 2);
    // No temporary files left behind.
    let leftovers: Vec<String> = std::fs::read_dir(&out_dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
