//! End-to-end `ptycho infer` over many scans with the model loaded once: `--test-data A B ...`
//! and `--manifest FILE`, one output folder per scan, a summary table, a bad file reported and
//! skipped with a non-zero exit; the objects equal those of one-scan runs.

use std::fs::File;
use std::path::Path;

use ndarray::Array2;
use ndarray_npy::NpzReader;
use num_complex::Complex32;
use ptycho_config::{ModelConfig, Params, TrainingConfig};
use ptycho_e2e::ptycho;
use ptycho_model::{DeviceKind, PtychoPinn};
use ptycho_persist::{SaveOptions, save_model};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn ok(args: &[&str]) -> String {
    let o = ptycho(args);
    assert_eq!(o.code, 0, "ptycho {args:?} failed: {}", o.stderr);
    o.stdout
}

fn object(path: &Path) -> Array2<Complex32> {
    let mut npz = NpzReader::new(File::open(path).unwrap()).unwrap();
    npz.by_name("object").unwrap()
}

/// A random-init gridsize-1 model under `dir`.
fn archive(dir: &Path) {
    let cfg = TrainingConfig {
        model: ModelConfig::default(),
        ..Default::default()
    };
    let params = Params::from_training(&cfg.validate().unwrap());
    let model = PtychoPinn::new(&params, &DeviceKind::Flex.to_device().unwrap()).unwrap();
    std::fs::create_dir_all(dir).unwrap();
    save_model(
        &dir.join("wts.h5.zip"),
        &model,
        &params,
        &SaveOptions::default(),
    )
    .unwrap();
}

#[test]
fn many_scans_one_model_load_a_bad_file_skipped() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let model = t.join("model");
    archive(&model);
    for (name, seed) in [("a", "1"), ("b", "2")] {
        ok(&[
            "simulate",
            "--n-images",
            "40",
            "--object-size",
            "128",
            "--seed",
            seed,
            "--output",
            s(&t.join(format!("{name}.npz"))),
            "-q",
        ]);
    }
    std::fs::write(t.join("bad.npz"), b"not a zip").unwrap();
    let (a, b, bad) = (t.join("a.npz"), t.join("b.npz"), t.join("bad.npz"));

    // One scan alone: the reference output.
    ok(&[
        "infer",
        "--model",
        s(&model),
        "--test-data",
        s(&a),
        "--output-dir",
        s(&t.join("one")),
        "-q",
    ]);
    let alone = object(&t.join("one/reconstruction.npz"));

    // Three scans, one unreadable: the other two are reconstructed, the exit code says one failed.
    let out = t.join("many");
    let o = ptycho(&[
        "infer",
        "--model",
        s(&model),
        "--test-data",
        s(&a),
        s(&bad),
        s(&b),
        "--output-dir",
        s(&out),
        "-q",
    ]);
    assert_eq!(o.code, 1, "stdout:\n{}\nstderr:\n{}", o.stdout, o.stderr);
    assert!(!o.stderr.contains("panicked"), "{}", o.stderr);
    let errors: Vec<&str> = o.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(errors.len(), 2, "{}", o.stderr);
    assert!(
        errors[0].starts_with(&format!("error: {}: ", bad.display())),
        "{}",
        errors[0]
    );
    assert_eq!(errors[1], "error: 1 of 3 scans failed");
    println!("{}", o.stdout);
    let table: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(table.len(), 5, "header, 3 scans, total:\n{}", o.stdout);
    assert!(table[0].starts_with("scan") && table[0].contains("patterns/s"));
    assert!(table[1].contains(" 40 ") && table[1].ends_with(&out.join("a").display().to_string()));
    assert!(table[2].contains("FAILED: "), "{}", table[2]);
    assert!(table[4].starts_with("total") && table[4].contains(" 80 "));
    assert!(
        table[4].ends_with("2 of 3 scans reconstructed"),
        "{}",
        table[4]
    );
    assert!(!out.join("bad").exists());
    // The same object as the one-scan run.
    assert_eq!(object(&out.join("a/reconstruction.npz")), alone);
    assert_ne!(object(&out.join("b/reconstruction.npz")), alone);
    assert!(out.join("b/reconstructed_amplitude.png").is_file());
    assert!(
        out.join("a/metrics.json").is_file(),
        "the simulated scans carry objectGuess"
    );

    // A manifest: paths relative to it, comments and blank lines skipped; a repeated stem gets
    // its own folder.
    std::fs::write(t.join("scans.txt"), "# two scans\na.npz\n\nb.npz\na.npz\n").unwrap();
    let out = t.join("listed");
    let stdout = ok(&[
        "infer",
        "--model",
        s(&model),
        "--manifest",
        s(&t.join("scans.txt")),
        "--output-dir",
        s(&out),
        "-q",
    ]);
    assert!(stdout.contains("3 of 3 scans reconstructed"), "{stdout}");
    assert_eq!(object(&out.join("a/reconstruction.npz")), alone);
    assert_eq!(object(&out.join("a-2/reconstruction.npz")), alone);
    assert!(out.join("b/reconstruction.npz").is_file());

    // Refusals: one line each, nothing run.
    let x = t.join("x");
    for (args, needle) in [
        (
            vec!["--manifest", s(&t.join("scans.txt")), "--test-data", s(&a)],
            "--manifest and --test-data",
        ),
        (
            vec![
                "--test-data",
                s(&a),
                s(&b),
                "--product",
                s(&t.join("p.npz")),
            ],
            "--product writes the product of one test scan",
        ),
        (vec!["--manifest", s(&t.join("none.txt"))], "none.txt"),
    ] {
        let mut argv = vec!["infer", "--model", s(&model), "--output-dir", s(&x)];
        argv.extend(args);
        let o = ptycho(&argv);
        assert_ne!(o.code, 0);
        let lines: Vec<&str> = o.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{}", o.stderr);
        assert!(lines[0].contains(needle), "{}", lines[0]);
    }
    assert!(!x.exists());
}
