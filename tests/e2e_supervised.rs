//! End-to-end supervised baseline (`--model-type supervised`, spec §5.4) through the real
//! binary: simulate → train (tiny, 2 epochs) → inspect says "supervised" → infer → metrics.json
//! → evaluate; gridsize 2 (patterns flattened to single-channel samples); a training file without
//! ground truth is refused in one line naming the file and what is missing, with nothing written.

use std::path::{Path, PathBuf};

use ptycho_e2e::ptycho;
use ptycho_workflows::RawData;
use serde_json::Value;

fn ok(args: &[&str]) -> String {
    let o = ptycho(args);
    assert_eq!(o.code, 0, "ptycho {args:?} failed: {}", o.stderr);
    o.stdout
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn simulated(dir: &Path, name: &str, n_images: usize, seed: u64) -> PathBuf {
    let path = dir.join(name);
    let (n, seed) = (n_images.to_string(), seed.to_string());
    ok(&[
        "simulate",
        "--output",
        s(&path),
        "--n-images",
        &n,
        "--seed",
        &seed,
    ]);
    path
}

fn train_supervised(
    data: &Path,
    out: &Path,
    gridsize: &str,
    n_groups: &str,
    epochs: &str,
) -> String {
    ok(&[
        "train",
        "--model-type",
        "supervised",
        "--train-data",
        s(data),
        "--output-dir",
        s(out),
        "--gridsize",
        gridsize,
        "--n-filters-scale",
        "1",
        "--n-groups",
        n_groups,
        "--batch-size",
        "16",
        "--nepochs",
        epochs,
        "--seed",
        "7",
        "--quiet",
    ])
}

#[test]
fn supervised_trains_inspects_infers_and_evaluates() {
    let tmp = tempfile::tempdir().unwrap();
    let train = simulated(tmp.path(), "train.npz", 48, 1);
    let test = simulated(tmp.path(), "test.npz", 24, 2);
    let model = tmp.path().join("model");
    let out = train_supervised(&train, &model, "1", "40", "2");
    assert!(out.contains("trained 2 epochs"), "{out}");
    for f in [
        "wts.h5.zip",
        "checkpoint.zip",
        "history.csv",
        "loss_curve.png",
        "config.toml",
    ] {
        assert!(model.join(f).is_file(), "{f} missing");
    }
    let hist = std::fs::read_to_string(model.join("history.csv")).unwrap();
    let rows: Vec<&str> = hist.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{hist}");
    for r in &rows {
        let cols: Vec<&str> = r.split(',').collect();
        let loss: f64 = cols[1].parse().unwrap();
        // The supervised loss is an MAE; the history keeps it as `mae`, with nll = 0.
        assert!(loss.is_finite() && loss > 0.0, "{r}");
        assert_eq!(cols[2], "0", "{r}");
        assert_eq!(cols[3].parse::<f64>().unwrap(), loss, "{r}");
    }

    // inspect: the archive says which network it holds.
    let text = ok(&["inspect", s(&model)]);
    assert!(text.contains("type:    supervised"), "{text}");
    let v: Value = serde_json::from_str(&ok(&["inspect", s(&model), "--json"])).unwrap();
    assert_eq!(v["model_type"], "supervised");
    assert_eq!(v["params"]["model_type"], "supervised");
    // PtychoNN layout at n_filters_scale 1 (the PINN's is another count).
    assert_eq!(v["models"][0]["parameters"], 1_154_210);
    assert_eq!(v["history"].as_array().unwrap().len(), 2);

    // infer with the supervised archive, metrics against the test file's objectGuess.
    let inf = tmp.path().join("inference");
    let out = ok(&[
        "infer",
        "--model",
        s(&model),
        "--test-data",
        s(&test),
        "--output-dir",
        s(&inf),
    ]);
    assert!(out.contains("24 patterns"), "{out}");
    for f in [
        "reconstruction.npz",
        "reconstructed_amplitude.png",
        "reconstructed_phase.png",
        "metrics.json",
    ] {
        assert!(inf.join(f).is_file(), "{f} missing");
    }
    let metrics: Value =
        serde_json::from_slice(&std::fs::read(inf.join("metrics.json")).unwrap()).unwrap();
    for part in ["amplitude", "phase"] {
        let ssim = metrics["metrics"][part]["ssim"].as_f64().unwrap();
        assert!(ssim.is_finite() && ssim <= 1.0, "{part}: {metrics}");
    }
    let recon = RawReconstruction::read(&inf.join("reconstruction.npz"));
    assert!(recon.covered > 100, "covered pixels {}", recon.covered);
    assert!(recon.max_amp.is_finite() && recon.max_amp > 0.0);

    // evaluate reproduces infer's metrics.
    let ev: Value = serde_json::from_str(&ok(&[
        "evaluate",
        "--reconstruction",
        s(&inf.join("reconstruction.npz")),
        "--ground-truth",
        s(&test),
        "--json",
    ]))
    .unwrap();
    assert_eq!(ev, metrics);
}

/// The stitched object of `reconstruction.npz`: covered (non-zero) pixels and largest amplitude.
struct RawReconstruction {
    covered: usize,
    max_amp: f32,
}

impl RawReconstruction {
    fn read(path: &Path) -> Self {
        let mut npz = ndarray_npy::NpzReader::new(std::fs::File::open(path).unwrap()).unwrap();
        let amp: ndarray::Array2<f32> = npz.by_name("amplitude").unwrap();
        Self {
            covered: amp.iter().filter(|v| **v != 0.0).count(),
            max_amp: amp.iter().fold(0.0f32, |m, v| m.max(*v)),
        }
    }
}

#[test]
fn supervised_gridsize2_flattens_patterns_and_reconstructs() {
    let tmp = tempfile::tempdir().unwrap();
    let train = simulated(tmp.path(), "train.npz", 48, 3);
    let test = simulated(tmp.path(), "test.npz", 32, 4);
    let model = tmp.path().join("model");
    let out = train_supervised(&train, &model, "2", "8", "1");
    assert!(out.contains("trained 1 epochs"), "{out}");
    let v: Value = serde_json::from_str(&ok(&["inspect", s(&model), "--json"])).unwrap();
    assert_eq!(v["model_type"], "supervised");
    assert_eq!(v["params"]["gridsize"], 2);
    // The network is single-channel whatever the gridsize: same parameter count as gs 1.
    assert_eq!(v["models"][0]["parameters"], 1_154_210);
    let inf = tmp.path().join("inference");
    let out = ok(&[
        "infer",
        "--model",
        s(&model),
        "--test-data",
        s(&test),
        "--output-dir",
        s(&inf),
    ]);
    // One group of 4 patterns per scan point, each pattern one patch at its own scan position.
    assert!(
        out.contains("32 groups (128 patterns, N = 64, gridsize = 2)"),
        "{out}"
    );
    let recon = RawReconstruction::read(&inf.join("reconstruction.npz"));
    assert!(recon.covered > 100, "covered pixels {}", recon.covered);
    assert!(inf.join("reconstruction.npz").is_file());
}

#[test]
fn supervised_training_without_ground_truth_is_one_line_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let full = simulated(tmp.path(), "full.npz", 24, 5);
    let mut raw = RawData::from_npz(&full).unwrap();
    raw.object_guess = None;
    raw.y = None;
    let bare = tmp.path().join("no_truth.npz");
    raw.write_npz(&bare).unwrap();
    let out_dir = tmp.path().join("never");
    let o = ptycho(&[
        "train",
        "--model-type",
        "supervised",
        "--train-data",
        s(&bare),
        "--output-dir",
        s(&out_dir),
        "--n-filters-scale",
        "1",
        "--nepochs",
        "1",
        "--quiet",
    ]);
    assert_eq!(o.code, 2, "stdout {} stderr {}", o.stdout, o.stderr);
    let lines: Vec<&str> = o.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{}", o.stderr);
    assert!(!o.stderr.contains("panicked"), "{}", o.stderr);
    let line = lines[0];
    assert!(line.starts_with("error:"), "{line}");
    assert!(line.contains("no_truth.npz"), "{line}");
    assert!(
        line.contains("supervised training needs ground-truth")
            && line.contains("neither `Y` nor `objectGuess`"),
        "{line}"
    );
    assert!(!out_dir.exists(), "nothing may be written");
}
