//! End-to-end tests of the settings surface through the real `ptycho` binary: gridsize 3 from
//! training to reconstruction without inference settings (K = max(7, gridsize²)), the inference
//! sampling flags, the common flags every command shares (`--quiet`, `--device`), and config files
//! in YAML as the reference writes them.

use std::fs::File;
use std::path::{Path, PathBuf};

use ndarray::{Array0, Array2};
use ndarray_npy::NpzReader;
use num_complex::Complex32;
use ptycho_e2e::{Out, ptycho};
use serde_json::Value;

fn ok(args: &[&str]) -> Out {
    let o = ptycho(args);
    assert_eq!(o.code, 0, "ptycho {args:?} failed: {}", o.stderr);
    o
}

/// Exit ≠ 0, exactly one stderr line, which contains every needle; returns that line.
fn fails(args: &[&str], needles: &[&str]) -> String {
    let o = ptycho(args);
    assert_ne!(o.code, 0, "ptycho {args:?} should fail: {}", o.stdout);
    assert!(!o.stderr.contains("panicked"), "panic: {}", o.stderr);
    let lines: Vec<&str> = o.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "ptycho {args:?}: stderr:\n{}", o.stderr);
    for needle in needles {
        assert!(lines[0].contains(needle), "`{}` lacks `{needle}`", lines[0]);
    }
    lines[0].to_string()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `ptycho simulate --quiet` a lines scan into `dir/name`.
fn simulated(dir: &Path, name: &str, n_images: usize, seed: u64, nphotons: &str) -> PathBuf {
    let path = dir.join(name);
    let (n, seed) = (n_images.to_string(), seed.to_string());
    let o = ok(&[
        "simulate",
        "--output",
        s(&path),
        "--n-images",
        &n,
        "--seed",
        &seed,
        "--nphotons",
        nphotons,
        "--quiet",
    ]);
    assert!(o.stdout.contains("wrote"), "{}", o.stdout);
    assert_eq!(o.stderr, "", "simulate --quiet");
    path
}

/// The reconstruction's object: finite, of the canvas shape, not all zero.
fn finite_object(dir: &Path) -> Array2<Complex32> {
    let path = dir.join("reconstruction.npz");
    assert!(path.is_file(), "{} missing", path.display());
    let mut z = NpzReader::new(File::open(&path).unwrap()).unwrap();
    let object: Array2<Complex32> = z.by_name("object").unwrap();
    assert!(!object.is_empty());
    assert!(object.iter().all(|c| c.re.is_finite() && c.im.is_finite()));
    assert!(object.iter().any(|c| c.norm() > 0.0));
    object
}

/// gridsize 3: train a tiny model, reconstruct during training (--test-data) and with
/// `ptycho infer` without any inference setting; K = 9 is chosen and said (unless --quiet); an
/// explicit K below 9 is a one-line error naming the flag, with nothing written.
#[test]
fn gridsize3_trains_and_reconstructs_without_settings() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let train = simulated(t, "train.npz", 48, 31, "1e9");
    let test = simulated(t, "test.npz", 36, 32, "1e9");
    let model = t.join("model");
    let o = ok(&[
        "train",
        "--train-data",
        s(&train),
        "--test-data",
        s(&test),
        "--output-dir",
        s(&model),
        "--gridsize",
        "3",
        "--neighbor-count",
        "9",
        "--n-filters-scale",
        "1",
        "--n-groups",
        "4",
        "--n-subsample",
        "48",
        "--batch-size",
        "4",
        "--nepochs",
        "1",
        "--early-stop-patience",
        "0",
        "--seed",
        "5",
        "--quiet",
    ]);
    assert!(o.stdout.contains("trained 1 epochs"), "{}", o.stdout);
    // The reconstruction inside `train` (default inference settings) works at gridsize 3.
    assert!(o.stdout.contains("reconstruction: "), "{}", o.stdout);
    finite_object(&model.join("reconstruction"));

    let inf = t.join("inference");
    let args = [
        "infer",
        "--model",
        s(&model),
        "--test-data",
        s(&test),
        "--output-dir",
        s(&inf),
    ];
    let o = ok(&args);
    // One group of 9 patterns per scan point: 36 groups.
    assert!(
        o.stdout
            .contains("36 groups (324 patterns, N = 64, gridsize = 3)"),
        "{}",
        o.stdout
    );
    assert!(
        o.stderr.contains("note: K = 9 neighbours per group"),
        "{}",
        o.stderr
    );
    let object = finite_object(&inf);

    // --quiet: the same reconstruction, no note.
    let quiet = t.join("quiet");
    let mut q = args.to_vec();
    q[6] = s(&quiet);
    q.push("--quiet");
    let o = ok(&q);
    assert_eq!(o.stderr, "", "infer --quiet");
    assert!(o.stdout.contains("gridsize = 3"), "{}", o.stdout);
    assert_eq!(finite_object(&quiet), object, "seeded: the same groups");

    // The sampling flags reach the grouping: 27 of the 36 points → 27 groups.
    let sub = t.join("sub");
    let o = ok(&[
        "infer",
        "--model",
        s(&model),
        "--test-data",
        s(&test),
        "--output-dir",
        s(&sub),
        "--n-subsample",
        "27",
        "--subsample-seed",
        "3",
        "--neighbor-count",
        "12",
        "-q",
    ]);
    assert!(o.stdout.contains("27 groups (243 patterns"), "{}", o.stdout);
    finite_object(&sub);

    // An explicit K too small for the model: one line naming the flag, nothing written.
    let bad = t.join("bad");
    let line = fails(
        &[
            "infer",
            "--model",
            s(&model),
            "--test-data",
            s(&test),
            "--output-dir",
            s(&bad),
            "--neighbor-count",
            "4",
        ],
        &["`neighbor_count`: 4", "--neighbor-count", "gridsize² = 9"],
    );
    assert!(line.starts_with("error: "), "{line}");
    assert!(!bad.exists(), "nothing written on error");
}

/// `--quiet` / `-q` is accepted by every command with one meaning (no progress, step lines or
/// notes on stderr; results still on stdout), and `--device` has one parser and help.
#[test]
fn common_flags_mean_the_same_on_every_command() {
    // Every command lists -q/--quiet with the same help; --device has one help on the model
    // commands (whitespace folded: clap aligns and wraps per command).
    let help = |cmd: &str| {
        let o = ok(&[cmd, "--help"]);
        o.stdout.split_whitespace().collect::<Vec<_>>().join(" ")
    };
    let quiet = "-q, --quiet No progress bar, step lines or notes on stderr; results on stdout and \
                 errors are still printed. Default: off";
    let device = "--device <DEVICE> Backend: cpu (= flex, pure Rust), tch-cpu or cuda[:N] \
                  (libtorch; needs a build with `--features tch`). Default: cpu";
    for cmd in [
        "run", "simulate", "train", "infer", "evaluate", "inspect", "params", "bench",
    ] {
        let h = help(cmd);
        assert!(h.contains(quiet), "`ptycho {cmd} --help`: {h}");
        let model_command = ["run", "train", "infer"].contains(&cmd);
        assert_eq!(h.contains(device), model_command, "{cmd}: {h}");
    }
    for cmd in ["run", "train", "infer"] {
        fails(&[cmd, "--device", "tpu"], &["--device", "tpu"]);
    }

    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    // simulate --quiet: checked inside `simulated`. The file says 1e6 photons, the config 1e9:
    // `train` notes that it takes the file's value, unless --quiet.
    let data = simulated(t, "d.npz", 24, 7, "1e6");
    let train = |dir: &Path, quiet: bool| {
        let mut a = vec![
            "train",
            "--train-data",
            s(&data),
            "--output-dir",
            s(dir),
            "--n-filters-scale",
            "1",
            "--n-groups",
            "8",
            "--batch-size",
            "8",
            "--nepochs",
            "1",
        ];
        if quiet {
            a.push("-q");
        }
        ok(&a)
    };
    let loud = train(&t.join("m1"), false);
    assert!(
        loud.stderr.contains("note: nphotons 1e6"),
        "{}",
        loud.stderr
    );
    let model = t.join("m2");
    let o = train(&model, true);
    assert_eq!(o.stderr, "", "train --quiet");
    assert!(o.stdout.contains("trained 1 epochs"), "{}", o.stdout);

    // infer, evaluate, inspect, params: accepted, results on stdout, stderr empty.
    let inf = t.join("inf");
    let o = ok(&[
        "infer",
        "--model",
        s(&model),
        "--test-data",
        s(&data),
        "--output-dir",
        s(&inf),
        "--quiet",
    ]);
    assert!(o.stdout.contains("reconstructed 24 groups"), "{}", o.stdout);
    assert_eq!(o.stderr, "");
    let rec = inf.join("reconstruction.npz");
    let o = ok(&[
        "evaluate",
        "--reconstruction",
        s(&rec),
        "--ground-truth",
        s(&data),
        "--json",
        "-q",
    ]);
    let v: Value = serde_json::from_str(&o.stdout).unwrap();
    assert!(v.get("metrics").is_some(), "{v}");
    assert_eq!(o.stderr, "");
    let o = ok(&["inspect", s(&model), "--quiet"]);
    assert!(o.stdout.contains("gridsize = 1"), "{}", o.stdout);
    assert_eq!(o.stderr, "");
    let o = ok(&["params", "--quiet", "--gridsize", "2"]);
    assert!(o.stdout.contains("gridsize = 2"), "{}", o.stdout);
    assert_eq!(o.stderr, "");

    // run: step lines on stderr without --quiet, none with it; the summary stays on stdout.
    let run = |dir: &Path, quiet: bool| {
        let mut a = vec![
            "run",
            "--output-dir",
            s(dir),
            "--n-train-images",
            "24",
            "--n-test-images",
            "16",
            "--n-groups",
            "8",
            "--nepochs",
            "1",
        ];
        if quiet {
            a.push("--quiet");
        }
        ok(&a)
    };
    let loud = run(&t.join("r1"), false);
    assert!(loud.stderr.contains("[1/4] simulating"), "{}", loud.stderr);
    let r2 = t.join("r2");
    let o = run(&r2, true);
    assert_eq!(o.stderr, "", "run --quiet");
    assert!(o.stdout.contains("ptycho run — summary"), "{}", o.stdout);
    // --overwrite means the same on train and run: the outputs of r2 are kept without it.
    let mut again = vec![
        "run",
        "--output-dir",
        s(&r2),
        "--n-train-images",
        "24",
        "--n-test-images",
        "16",
        "--n-groups",
        "8",
        "--nepochs",
        "1",
        "-q",
    ];
    assert_ne!(
        ptycho(&again).code,
        0,
        "run without --overwrite keeps outputs"
    );
    again.push("--overwrite");
    ok(&again);
}

/// A training config in the reference's YAML (flat model keys, quoted words, `n_images`,
/// floats, comments) drives `ptycho train --config`; the run's config.toml holds its values.
#[test]
fn train_with_a_reference_yaml_config() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let train = simulated(t, "train.npz", 32, 41, "1e9");
    let out = t.join("yaml_run");
    let cfg = t.join("ref.yaml");
    std::fs::write(
        &cfg,
        format!(
            "# as the reference writes them\n\
             N: 64\n\
             gridsize: 1\n\
             n_filters_scale: 1\n\
             model_type: 'pinn'\n\
             amp_activation: 'sigmoid'\n\
             object_big: true\n\
             probe_big: true\n\
             nepochs: 1\n\
             batch_size: 8\n\
             output_dir: \"{}\"\n\
             train_data_file: \"{}\"\n\
             n_images: 16\n\
             nphotons: 1000000000.0\n\
             nll_weight: 1.0\n\
             mae_weight: 0.0\n\
             probe_trainable: false\n\
             intensity_scale_trainable: true\n\
             positions_provided: true\n\
             learning_rate: 0.002\n",
            s(&out),
            s(&train)
        ),
    )
    .unwrap();
    // The resolved params view shows the file's values (flags still win).
    let o = ok(&["params", "--config", s(&cfg), "--json", "--nepochs", "2"]);
    let v: Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(v["n_filters_scale"], 1);
    assert_eq!(v["n_groups"], 16);
    assert_eq!(v["batch_size"], 8);
    assert_eq!(v["nepochs"], 2);
    assert_eq!(v["learning_rate"], 0.002);

    let o = ok(&["train", "--config", s(&cfg), "-q"]);
    assert!(o.stdout.contains("trained 1 epochs"), "{}", o.stdout);
    assert!(out.join("wts.h5.zip").is_file());
    let written = std::fs::read_to_string(out.join("config.toml")).unwrap();
    for line in [
        "nepochs = 1",
        "batch_size = 8",
        "n_groups = 16",
        "learning_rate = 0.002",
        "n_filters_scale = 1",
    ] {
        assert!(
            written.contains(line),
            "config.toml lacks {line}:\n{written}"
        );
    }

    // A misspelt key: one line naming the file and the key, with a suggestion; nothing trained.
    let bad = t.join("bad.yml");
    let bad_out = t.join("bad_run");
    std::fs::write(
        &bad,
        format!(
            "train_data_file: {}\noutput_dir: {}\nmodel:\n  gridsize: 1\n  n_filter_scale: 1\n",
            s(&train),
            s(&bad_out)
        ),
    )
    .unwrap();
    fails(
        &["train", "--config", s(&bad)],
        &[
            s(&bad),
            "unknown key `model.n_filter_scale`",
            "did you mean `n_filters_scale`?",
        ],
    );
    assert!(!bad_out.exists());
}

/// `ptycho infer --config FILE.yaml`: model, data, output, sampling table and crop from YAML;
/// a flag over it.
#[test]
fn infer_with_a_yaml_config() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let train = simulated(t, "train.npz", 24, 51, "1e9");
    let test = simulated(t, "test.npz", 20, 52, "1e9");
    let model = t.join("model");
    ok(&[
        "train",
        "--train-data",
        s(&train),
        "--output-dir",
        s(&model),
        "--n-filters-scale",
        "1",
        "--n-groups",
        "8",
        "--batch-size",
        "8",
        "--nepochs",
        "1",
        "-q",
    ]);
    let out = t.join("yaml_inf");
    let cfg = t.join("infer.yaml");
    std::fs::write(
        &cfg,
        format!(
            "model_path: {}\ntest_data_file: {}\noutput_dir: {}\nstitch_crop: 12\n\
             model:\n  N: 64\nsampling:\n  n_images: 10\n  subsample_seed: 2\n",
            s(&model),
            s(&test),
            s(&out)
        ),
    )
    .unwrap();
    let o = ok(&["infer", "--config", s(&cfg), "--stitch-crop", "16", "-q"]);
    assert!(o.stdout.contains("reconstructed 10 groups"), "{}", o.stdout);
    let mut z = NpzReader::new(File::open(out.join("reconstruction.npz")).unwrap()).unwrap();
    let crop: Array0<i64> = z.by_name("stitch_crop").unwrap();
    assert_eq!(crop.into_scalar(), 16, "the flag wins over the file");
    finite_object(&out);
    // A YAML syntax error: one line with the file and the position.
    std::fs::write(&cfg, "stitch_crop: [12\n").unwrap();
    fails(
        &["infer", "--config", s(&cfg)],
        &[s(&cfg), "YAML syntax error at line"],
    );
}
