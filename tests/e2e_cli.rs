//! End-to-end tests of `ptycho simulate`, `ptycho inspect`, `ptycho infer` and `ptycho evaluate`
//! (the real binary as a subprocess), including bad inputs: exit ≠ 0 and one stderr line.

use std::fs::File;
use std::path::{Path, PathBuf};

use ndarray::Array3;
use ndarray_npy::NpzReader;
use ptycho_config::{ModelConfig, Params, SimulationConfig, TrainingConfig};
use ptycho_e2e::ptycho;
use ptycho_model::{DeviceKind, PtychoPinn};
use ptycho_persist::{SaveOptions, save_model};
use ptycho_workflows::simulate::diffract_positions;
use ptycho_workflows::{RawData, simulate_lines};
use serde_json::Value;

fn ok(args: &[&str]) -> String {
    let o = ptycho(args);
    assert_eq!(o.code, 0, "ptycho {args:?} failed: {}", o.stderr);
    o.stdout
}

/// Exit ≠ 0, exactly one stderr line, which contains `needle`; returns that line.
fn fails(args: &[&str], needle: &str) -> String {
    let o = ptycho(args);
    assert_ne!(
        o.code, 0,
        "ptycho {args:?} should fail; stdout: {}",
        o.stdout
    );
    assert!(!o.stderr.contains("panicked"), "panic: {}", o.stderr);
    let lines: Vec<&str> = o.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        lines.len(),
        1,
        "ptycho {args:?}: stderr is not one line:\n{}",
        o.stderr
    );
    assert!(
        lines[0].contains(needle),
        "ptycho {args:?}: `{}` lacks `{needle}`",
        lines[0]
    );
    lines[0].to_string()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `ptycho simulate` a lines scan of `n_images` positions with `seed` into `dir/name`.
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

/// A random-init model of the given gridsize saved as `dir/wts.h5.zip`.
fn archive(dir: &Path, gridsize: usize) -> PathBuf {
    let cfg = TrainingConfig {
        model: ModelConfig {
            gridsize,
            ..Default::default()
        },
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

fn npz_keys(path: &Path) -> Vec<String> {
    let mut names = NpzReader::new(File::open(path).unwrap())
        .unwrap()
        .names()
        .unwrap();
    names.iter_mut().for_each(|n| {
        if let Some(k) = n.strip_suffix(".npy") {
            *n = k.to_string();
        }
    });
    names.sort();
    names
}

#[test]
fn simulate_writes_reference_keys_and_noise_free_forward_model() {
    let tmp = tempfile::tempdir().unwrap();
    let clean = tmp.path().join("clean.npz");
    let out = ok(&[
        "simulate",
        "--output",
        s(&clean),
        "--n-images",
        "16",
        "--object-size",
        "128",
        "--seed",
        "3",
        "--no-noise",
    ]);
    assert!(out.contains("16 patterns"), "{out}");
    assert_eq!(
        npz_keys(&clean),
        [
            "_metadata",
            "diff3d",
            "objectGuess",
            "probeGuess",
            "scan_index",
            "xcoords",
            "xcoords_start",
            "ycoords",
            "ycoords_start"
        ]
    );
    let raw = RawData::from_npz(&clean).unwrap();
    assert_eq!(raw.n_points(), 16);
    assert_eq!(raw.n(), 64);
    // `_metadata` records the photon count (the default, 1e9), as the reference simulator does.
    assert_eq!(raw.metadata_nphotons, Some(1e9));
    let obj = raw.object_guess.clone().unwrap();
    assert_eq!(obj.dim(), (128, 128));
    // diff3d is exactly the forward model of its own objectGuess, probeGuess and coordinates.
    let expect: Array3<f32> = diffract_positions(
        &obj,
        raw.probe_guess.view(),
        &raw.xcoords,
        &raw.ycoords,
        1e9,
        None,
    )
    .unwrap();
    let scale = expect.iter().fold(0f32, |m, v| m.max(v.abs()));
    let diff = expect
        .iter()
        .zip(&raw.diff3d)
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(
        scale > 0.0 && diff <= 1e-6 * scale,
        "diff {diff} of {scale}"
    );

    // With noise (default): same scan, different amplitudes.
    let noisy = tmp.path().join("noisy.npz");
    ok(&[
        "simulate",
        "--output",
        s(&noisy),
        "--n-images",
        "16",
        "--object-size",
        "128",
        "--seed",
        "3",
    ]);
    let n = RawData::from_npz(&noisy).unwrap();
    assert_eq!(n.xcoords, raw.xcoords);
    assert_ne!(n.diff3d, raw.diff3d);
}

#[test]
fn inspect_json_shows_manifest_params_and_counts() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = archive(&tmp.path().join("model"), 2);
    let v: Value = serde_json::from_str(&ok(&["inspect", s(&dir), "--json"])).unwrap();
    assert_eq!(v["manifest"]["format"], "ptycho-archive");
    assert_eq!(v["params"]["N"], 64);
    assert_eq!(v["params"]["gridsize"], 2);
    assert!(
        v["params"].get("probe").is_none(),
        "probe array must be left out"
    );
    let models = v["models"].as_array().unwrap();
    assert_eq!(models.len(), 2);
    let p0 = models[0]["parameters"].as_u64().unwrap();
    assert!(p0 > 100_000, "{p0}");
    assert_eq!(models[1]["parameters"].as_u64().unwrap(), p0);
    // Human-readable form on the zip itself.
    let text = ok(&["inspect", s(&dir.join("wts.h5.zip"))]);
    assert!(
        text.contains("parameters") && text.contains("gridsize = 2"),
        "{text}"
    );
}

#[test]
fn infer_then_evaluate() {
    let tmp = tempfile::tempdir().unwrap();
    let data = simulated(tmp.path(), "test.npz", 64, 9);
    let model = archive(&tmp.path().join("model"), 1);
    let out_dir = tmp.path().join("inference");
    let out = ok(&[
        "infer",
        "--model_path",
        s(&model),
        "--test_data",
        s(&data),
        "--output_dir",
        s(&out_dir),
        "--batch-size",
        "32",
    ]);
    assert!(
        out.contains("patterns/s") && out.contains("64 patterns"),
        "{out}"
    );
    eprintln!("{out}");
    for f in [
        "reconstruction.npz",
        "reconstructed_amplitude.png",
        "reconstructed_phase.png",
        "metrics.json",
    ] {
        assert!(out_dir.join(f).is_file(), "{f} missing");
    }
    assert_eq!(
        npz_keys(&out_dir.join("reconstruction.npz")),
        ["amplitude", "object", "origin", "phase", "stitch_crop"]
    );
    let recon = out_dir.join("reconstruction.npz");
    let ev: Value = serde_json::from_str(&ok(&[
        "evaluate",
        "--reconstruction",
        s(&recon),
        "--ground-truth",
        s(&data),
        "--json",
    ]))
    .unwrap();
    // `ptycho evaluate` on infer's output reproduces infer's own metrics.json.
    let saved: Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(ev, saved);
    let ssim = ev["metrics"]["amplitude"]["ssim"].as_f64().unwrap();
    assert!(ssim.is_finite() && ssim <= 1.0);
    let table = ok(&[
        "evaluate",
        "--reconstruction",
        s(&recon),
        "--ground_truth",
        s(&data),
    ]);
    assert!(
        table.contains("SSIM") && table.contains("amplitude"),
        "{table}"
    );
}

/// `ptycho infer --config FILE`: the file supplies the model, the data, the output directory,
/// the group count and a crop; a flag overrides the crop (defaults < file < flags).
#[test]
fn infer_config_file_then_flags() {
    let tmp = tempfile::tempdir().unwrap();
    let data = simulated(tmp.path(), "test.npz", 24, 4);
    let model = archive(&tmp.path().join("model"), 1);
    let out_dir = tmp.path().join("from_file");
    let cfg = tmp.path().join("infer.toml");
    std::fs::write(
        &cfg,
        format!(
            "model_path = {:?}\ntest_data_file = {:?}\noutput_dir = {:?}\nn_groups = 10\nstitch_crop = 12\n",
            s(&model),
            s(&data),
            s(&out_dir)
        ),
    )
    .unwrap();
    let out = ok(&["infer", "--config", s(&cfg), "--stitch-crop", "16"]);
    assert!(out.contains("reconstructed 10 groups"), "{out}");
    let mut npz = NpzReader::new(File::open(out_dir.join("reconstruction.npz")).unwrap()).unwrap();
    let crop: ndarray::Array0<i64> = npz.by_name("stitch_crop").unwrap();
    assert_eq!(crop.into_scalar(), 16, "the flag wins over the file");
    // Without the flag, the file's crop is used.
    ok(&["infer", "--config", s(&cfg)]);
    let mut npz = NpzReader::new(File::open(out_dir.join("reconstruction.npz")).unwrap()).unwrap();
    let crop: ndarray::Array0<i64> = npz.by_name("stitch_crop").unwrap();
    assert_eq!(crop.into_scalar(), 12);
    // An unknown key names the file and the key; an odd crop from the file names the field.
    let bad = tmp.path().join("bad.toml");
    std::fs::write(&bad, "stich_crop = 12\n").unwrap();
    let line = fails(&["infer", "--config", s(&bad)], "unknown key `stich_crop`");
    assert!(line.contains("bad.toml"), "{line}");
    std::fs::write(&bad, "stitch_crop = 13\n").unwrap();
    let line = fails(&["infer", "--config", s(&bad)], "`stitch_crop`: 13");
    assert!(line.contains("bad.toml"), "{line}");
    // Nothing names a model: one line saying so.
    fails(&["infer", "--test-data", s(&data)], "no model");
}

#[test]
fn gridsize2_archive_decides_over_test_data() {
    let tmp = tempfile::tempdir().unwrap();
    let data = simulated(tmp.path(), "t.npz", 32, 2);
    let model = archive(&tmp.path().join("gs2"), 2);
    let out_dir = tmp.path().join("o");
    let out = ok(&[
        "infer",
        "--model",
        s(&model),
        "--test-data",
        s(&data),
        "--output-dir",
        s(&out_dir),
    ]);
    assert!(
        out.contains("32 groups (128 patterns, N = 64, gridsize = 2)"),
        "{out}"
    );
    assert!(out_dir.join("reconstruction.npz").is_file());
}

#[test]
fn bad_inputs_fail_with_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let model = archive(&t.join("model"), 1);
    let out_dir = t.join("never");
    let o = s(&out_dir);
    let m = s(&model);

    // Missing test file (named once, its I/O cause once).
    let missing = t.join("missing.npz");
    let line = fails(
        &[
            "infer",
            "--model",
            m,
            "--test-data",
            s(&missing),
            "--output-dir",
            o,
        ],
        "missing.npz",
    );
    assert_eq!(line.matches("missing.npz").count(), 1, "{line}");
    assert_eq!(line.matches("os error").count(), 1, "{line}");
    // Not an NPZ.
    let junk = t.join("junk.npz");
    std::fs::write(&junk, "hello, not a zip").unwrap();
    fails(
        &[
            "infer",
            "--model",
            m,
            "--test-data",
            s(&junk),
            "--output-dir",
            o,
        ],
        "not a readable NPZ",
    );
    // Wrong N for the archive.
    let big = t.join("n128.npz");
    simulate_lines(
        &SimulationConfig {
            n_images: 4,
            n: 128,
            object_size: Some(160),
            ..Default::default()
        }
        .validate()
        .unwrap(),
    )
    .unwrap()
    .write_npz(&big)
    .unwrap();
    let line = fails(
        &[
            "infer",
            "--model",
            m,
            "--test-data",
            s(&big),
            "--output-dir",
            o,
        ],
        "test data has 128×128 patterns but the model in",
    );
    assert!(line.ends_with("expects N=64"), "{line}");
    // Archive missing (a directory without wts.h5.zip, and a path that does not exist).
    let small = t.join("small.npz");
    ok(&[
        "simulate",
        "--output",
        s(&small),
        "--n-images",
        "4",
        "--object-size",
        "96",
    ]);
    let empty = t.join("empty");
    std::fs::create_dir(&empty).unwrap();
    fails(
        &[
            "infer",
            "--model",
            s(&empty),
            "--test-data",
            s(&small),
            "--output-dir",
            o,
        ],
        "wts.h5.zip",
    );
    fails(
        &[
            "infer",
            "--model",
            s(&t.join("gone")),
            "--test-data",
            s(&small),
            "--output-dir",
            o,
        ],
        "gone",
    );
    // Bad options.
    fails(
        &[
            "infer",
            "--model",
            m,
            "--test-data",
            s(&small),
            "--output-dir",
            o,
            "--stitch-crop",
            "7",
        ],
        "stitch_crop",
    );
    fails(
        &[
            "infer",
            "--model",
            m,
            "--test-data",
            s(&small),
            "--output-dir",
            o,
            "--device",
            "gpu",
        ],
        "gpu",
    );
    assert!(
        !out_dir.exists(),
        "a failed infer created its output directory"
    );

    // evaluate: missing reconstruction, ground truth without objectGuess.
    fails(
        &[
            "evaluate",
            "--reconstruction",
            s(&missing),
            "--ground-truth",
            s(&small),
        ],
        "missing.npz",
    );
    let no_obj = t.join("noobj.npz");
    let mut raw = RawData::from_npz(&small).unwrap();
    raw.object_guess = None;
    raw.write_npz(&no_obj).unwrap();
    let recon = t.join("recon.npz");
    ptycho_workflows::Reconstruction {
        object: ndarray::Array2::zeros((30, 30)),
        origin: [0.0, 0.0],
        stitch_crop: Some(20),
    }
    .write_npz(&recon)
    .unwrap();
    fails(
        &[
            "evaluate",
            "--reconstruction",
            s(&recon),
            "--ground-truth",
            s(&no_obj),
        ],
        "objectGuess",
    );
    fails(
        &[
            "evaluate",
            "--reconstruction",
            s(&junk),
            "--ground-truth",
            s(&small),
        ],
        "junk.npz",
    );
    // inspect: not an archive; simulate: bad N, unwritable output.
    fails(&["inspect", s(&junk)], "junk.npz");
    fails(
        &["simulate", "--output", s(&t.join("x.npz")), "--n", "63"],
        "63",
    );
    let line = fails(
        &[
            "simulate",
            "--output",
            s(&t.join("no/such/dir/x.npz")),
            "--n-images",
            "4",
            "--object-size",
            "96",
        ],
        "x.npz",
    );
    assert_eq!(line.matches("x.npz").count(), 1, "{line}");
    assert_eq!(line.matches("os error").count(), 1, "{line}");
    assert!(!t.join("x.npz").exists());

    // train: a missing file is named once (the I/O cause is not repeated); a group count whose
    // grouped data cannot fit in memory is refused up front instead of aborting the allocation.
    let line = fails(
        &["train", "--train-data", s(&missing), "--output-dir", o],
        "missing.npz",
    );
    assert_eq!(line.matches("os error").count(), 1, "{line}");
    assert_eq!(line.matches("missing.npz").count(), 1, "{line}");
    assert!(
        line.ends_with(
            "missing.npz: I/O error (cannot open): No such file or directory (os error 2)"
        ),
        "{line}"
    );
    let line = fails(
        &[
            "train",
            "--train-data",
            s(&small),
            "--output-dir",
            o,
            "--gridsize",
            "2",
            "--enable-oversampling",
            "true",
            "--n-groups",
            "100000000000",
        ],
        "invalid `n_groups` = 100000000000",
    );
    assert!(line.ends_with("request fewer groups"), "{line}");
    assert!(
        !out_dir.exists(),
        "a failed train created its output directory"
    );
}
