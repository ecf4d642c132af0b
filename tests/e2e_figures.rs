//! End-to-end tests of the figures and the registered metrics (issue 16 items 6 and 7), through
//! the real `ptycho` binary: `ptycho infer --register` writes the amplitude and phase figures, the
//! comparison figure and `metrics.json` with the registration; `ptycho evaluate --register
//! --figure` reproduces them; without `objectGuess` there is no comparison figure.

use std::path::{Path, PathBuf};
use std::process::Command;

use ptycho_config::{ModelConfig, Params, TrainingConfig};
use ptycho_e2e::ptycho_bin;
use ptycho_model::{DeviceKind, PtychoPinn};
use ptycho_persist::{SaveOptions, save_model};
use ptycho_workflows::RawData;
use ptycho_workflows::imaging::{
    LINE_CHART_SIZE, comparison_figure_size, image_figure_rect, image_figure_size,
};
use ptycho_workflows::reconstruction::Reconstruction;
use serde_json::Value;

fn ok(args: &[&str]) -> String {
    let out = Command::new(ptycho_bin())
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run ptycho");
    assert!(
        out.status.success(),
        "ptycho {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn simulated(dir: &Path, n_images: usize) -> PathBuf {
    let path = dir.join("test.npz");
    ok(&[
        "simulate",
        "--output",
        s(&path),
        "--n-images",
        &n_images.to_string(),
        "--seed",
        "7",
    ]);
    path
}

/// A random-init gridsize-1 model saved as `dir/wts.h5.zip`.
fn archive(dir: &Path) -> PathBuf {
    let cfg = TrainingConfig {
        model: ModelConfig::default(),
        ..Default::default()
    };
    let params = Params::from_training(&cfg.validate().unwrap());
    let device = DeviceKind::Flex.to_device().unwrap();
    let model = PtychoPinn::new(&params, &device).unwrap();
    std::fs::create_dir_all(dir).unwrap();
    save_model(
        &dir.join("wts.h5.zip"),
        &model,
        &params,
        &SaveOptions::default(),
    )
    .unwrap();
    dir.to_path_buf()
}

fn png(path: &Path) -> image::RgbImage {
    assert!(path.is_file(), "{} missing", path.display());
    image::open(path).unwrap().to_rgb8()
}

fn json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn infer_writes_readable_figures_and_registered_metrics() {
    let tmp = tempfile::tempdir().unwrap();
    let data = simulated(tmp.path(), 64);
    let model = archive(&tmp.path().join("model"));
    let out = tmp.path().join("inference");
    let printed = ok(&[
        "infer",
        "--model",
        s(&model),
        "--test-data",
        s(&data),
        "--output-dir",
        s(&out),
        "--register",
    ]);
    assert!(
        printed.contains("registered (shift [x, y] = ["),
        "{printed}"
    );
    assert!(printed.contains("comparison.png"), "{printed}");

    // Amplitude and phase figures: the expected sizes for the reconstruction's shape.
    let recon = Reconstruction::from_npz(&out.join("reconstruction.npz")).unwrap();
    let (h, w) = recon.object.dim();
    let amp = png(&out.join("reconstructed_amplitude.png"));
    let phase = png(&out.join("reconstructed_phase.png"));
    assert_eq!(amp.dimensions(), image_figure_size(h, w));
    assert_eq!(phase.dimensions(), image_figure_size(h, w));

    // The covered pixels of the amplitude image span most of the grey range (5th–95th
    // percentile of their grey values over ≥ 60 % of 0–255).
    let (x0, y0, dw, dh) = image_figure_rect(h, w);
    let mut grey: Vec<u8> = Vec::new();
    for y in 0..dh {
        for x in 0..dw {
            let (r, c) = (
                (y as usize * h) / dh as usize,
                (x as usize * w) / dw as usize,
            );
            let z = recon.object[[r, c]];
            if z.re != 0.0 || z.im != 0.0 {
                let px = amp.get_pixel(x0 + x, y0 + y).0;
                assert!(
                    px[0] == px[1] && px[1] == px[2],
                    "covered pixel not grey: {px:?}"
                );
                grey.push(px[0]);
            }
        }
    }
    assert!(grey.len() > 1000, "{} covered display pixels", grey.len());
    grey.sort_unstable();
    let at = |q: f64| grey[((grey.len() - 1) as f64 * q).round() as usize];
    let (p5, p95) = (at(0.05), at(0.95));
    assert!(
        (p95 - p5) as f64 >= 0.6 * 255.0,
        "covered amplitude pixels span {p5}..{p95} of 0..255"
    );

    // metrics.json: unregistered metrics, the registration and the registered metrics.
    let m = json(&out.join("metrics.json"));
    assert_eq!(m["registered"], true);
    let reg = &m["registration"];
    assert_eq!(reg["upsample_factor"], 50);
    assert_eq!(reg["border_crop"], 2);
    let shift: Vec<f64> = reg["shift"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(shift.len(), 2);
    assert!(
        shift.iter().all(|v| v.is_finite() && v.abs() < 100.0),
        "{shift:?}"
    );
    // Shifts are on the 1/50-pixel grid.
    assert!(
        shift
            .iter()
            .all(|v| ((v * 50.0) - (v * 50.0).round()).abs() < 1e-6)
    );
    let aligned: Vec<usize> = m["metrics"]["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    let shape: Vec<usize> = reg["metrics"]["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    // Registration drops 2 more pixels from every side.
    assert_eq!(shape, [aligned[0] - 4, aligned[1] - 4]);
    assert!(
        reg["metrics"]["amplitude"]["mae"]
            .as_f64()
            .unwrap()
            .is_finite()
    );

    // The comparison figure: 2 × 3 panels of the registered images.
    let cmp = png(&out.join("comparison.png"));
    assert_eq!(cmp.dimensions(), comparison_figure_size(shape[0], shape[1]));

    // `ptycho evaluate --register` reproduces metrics.json and writes the same figure.
    let fig = tmp.path().join("eval_comparison.png");
    let ev: Value = serde_json::from_str(&ok(&[
        "evaluate",
        "--reconstruction",
        s(&out.join("reconstruction.npz")),
        "--ground-truth",
        s(&data),
        "--register",
        "--json",
        "--figure",
        s(&fig),
    ]))
    .unwrap();
    assert_eq!(ev, m);
    assert_eq!(png(&fig), cmp);
    // The table names the shift.
    let table = ok(&[
        "evaluate",
        "--reconstruction",
        s(&out.join("reconstruction.npz")),
        "--ground-truth",
        s(&data),
        "--register",
    ]);
    assert!(
        table.contains("shift [x, y]") && table.contains("phase reg."),
        "{table}"
    );
    // Without --register: no registration, same unregistered metrics.
    let plain: Value = serde_json::from_str(&ok(&[
        "evaluate",
        "--reconstruction",
        s(&out.join("reconstruction.npz")),
        "--ground-truth",
        s(&data),
        "--json",
    ]))
    .unwrap();
    assert_eq!(plain["registered"], false);
    assert!(plain["registration"].is_null());
    assert_eq!(plain["metrics"], m["metrics"]);
}

#[test]
fn no_comparison_figure_without_ground_truth() {
    let tmp = tempfile::tempdir().unwrap();
    let data = simulated(tmp.path(), 24);
    let mut raw = RawData::from_npz(&data).unwrap();
    raw.object_guess = None;
    let bare = tmp.path().join("bare.npz");
    raw.write_npz(&bare).unwrap();
    let model = archive(&tmp.path().join("model"));
    let out = tmp.path().join("inference");
    ok(&[
        "infer",
        "--model",
        s(&model),
        "--test-data",
        s(&bare),
        "--output-dir",
        s(&out),
    ]);
    let recon = Reconstruction::from_npz(&out.join("reconstruction.npz")).unwrap();
    let (h, w) = recon.object.dim();
    assert_eq!(
        png(&out.join("reconstructed_amplitude.png")).dimensions(),
        image_figure_size(h, w)
    );
    assert!(out.join("reconstructed_phase.png").is_file());
    assert!(!out.join("comparison.png").exists());
    assert!(!out.join("metrics.json").exists());
}

/// `ptycho train` writes the loss curve at its documented size.
#[test]
fn train_writes_the_loss_curve() {
    let tmp = tempfile::tempdir().unwrap();
    let data = simulated(tmp.path(), 48);
    let out = tmp.path().join("run");
    ok(&[
        "train",
        "--train-data",
        s(&data),
        "--nepochs",
        "2",
        "--n-groups",
        "32",
        "--output-dir",
        s(&out),
        "--quiet",
    ]);
    let curve = png(&out.join("loss_curve.png"));
    assert_eq!(curve.dimensions(), LINE_CHART_SIZE);
}
