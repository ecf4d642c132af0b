//! End-to-end `ptycho infer --product FILE.npz`: `ptycho simulate` → `ptycho train` (2 tiny
//! epochs) → `ptycho infer --product`, then the Ptychodus NPZ product read back (keys, shapes,
//! geometry, the loss history of the archive counted from 0), an archive without a history, and
//! the one-line refusals of missing or bad product flags.

use std::fs::File;
use std::path::Path;

use ndarray::{Array0, Array1, Array2, Array3, Array4, Axis, Ix0};
use ndarray_npy::NpzReader;
use num_complex::Complex32;
use ptycho_config::{ModelConfig, Params, TrainingConfig};
use ptycho_e2e::ptycho;
use ptycho_model::{DeviceKind, PtychoPinn};
use ptycho_persist::{SaveOptions, read_history, save_model};
use ptycho_workflows::RawData;
use ptycho_workflows::product::PRODUCT_KEYS;

fn ok(args: &[&str]) -> String {
    let o = ptycho(args);
    assert_eq!(o.code, 0, "ptycho {args:?} failed: {}", o.stderr);
    o.stdout
}

/// Exit ≠ 0 and exactly one stderr line, containing `needle`.
fn fails(args: &[&str], needle: &str) {
    let o = ptycho(args);
    assert_ne!(o.code, 0, "ptycho {args:?} should fail: {}", o.stdout);
    assert!(!o.stderr.contains("panicked"), "panic: {}", o.stderr);
    let lines: Vec<&str> = o.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "ptycho {args:?}: stderr:\n{}", o.stderr);
    assert!(
        lines[0].contains(needle),
        "ptycho {args:?}: `{}` lacks `{needle}`",
        lines[0]
    );
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn real(npz: &mut NpzReader<File>, key: &str) -> f64 {
    let a: ndarray::ArrayD<f64> = npz.by_name(key).unwrap();
    a.into_dimensionality::<Ix0>().unwrap().into_scalar()
}

fn keys(npz: &mut NpzReader<File>) -> Vec<String> {
    let mut k: Vec<String> = npz
        .names()
        .unwrap()
        .into_iter()
        .map(|n| n.trim_end_matches(".npy").to_string())
        .collect();
    k.sort();
    k
}

const PIXEL: f64 = 2.5e-8;

fn infer_product(model: &Path, data: &Path, out_dir: &Path, product: &Path) -> String {
    ok(&[
        "infer",
        "--model",
        s(model),
        "--test-data",
        s(data),
        "--output-dir",
        s(out_dir),
        "--n-groups",
        "16",
        "--product",
        s(product),
        "--pixel-size",
        "2.5e-8",
        "--photon-energy-ev",
        "8800",
        "--detector-distance-m",
        "1.5",
    ])
}

#[test]
fn train_then_infer_writes_a_ptychodus_product_with_the_loss_history() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("scan.npz");
    ok(&[
        "simulate",
        "--output",
        s(&data),
        "--n-images",
        "40",
        "--seed",
        "5",
    ]);
    let run = tmp.path().join("run");
    let nepochs = 2;
    ok(&[
        "train",
        "--train-data",
        s(&data),
        "--output-dir",
        s(&run),
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
        &nepochs.to_string(),
        "--quiet",
    ]);
    let archive = run.join("wts.h5.zip");
    let history = read_history(&archive).unwrap();
    assert_eq!(history.len(), nepochs);
    let inspect = ok(&["inspect", s(&run)]);
    assert!(inspect.contains("history: 2 epochs, loss "), "{inspect}");

    let product = tmp.path().join("product.npz");
    let out_dir = tmp.path().join("inf");
    let stdout = infer_product(&run, &data, &out_dir, &product);
    assert!(
        stdout.contains(&format!("wrote {}", product.display())),
        "{stdout}"
    );

    let mut npz = NpzReader::new(File::open(&product).unwrap()).unwrap();
    let mut want: Vec<String> = PRODUCT_KEYS.iter().map(|k| k.to_string()).collect();
    want.sort();
    assert_eq!(keys(&mut npz), want);

    // The loss history of the archive, epochs counted from 0 as Ptychodus counts them.
    let epochs: Array1<i64> = npz.by_name("loss_epochs").unwrap();
    let losses: Array1<f64> = npz.by_name("loss_values").unwrap();
    assert_eq!(epochs.to_vec(), [0, 1]);
    let want_losses: Vec<f64> = history.iter().map(|r| r.loss).collect();
    assert_eq!(losses.to_vec(), want_losses);
    assert!(losses.iter().all(|l| l.is_finite()));

    // Object = the stitched reconstruction; probe = probeGuess; every scan point in metres.
    let raw = RawData::from_npz(&data).unwrap();
    let mut recon =
        NpzReader::new(File::open(out_dir.join("reconstruction.npz")).unwrap()).unwrap();
    let stitched: Array2<Complex32> = recon.by_name("object").unwrap();
    let origin: Array1<f64> = recon.by_name("origin").unwrap();
    let object: Array3<Complex32> = npz.by_name("object").unwrap();
    assert_eq!(object.index_axis(Axis(0), 0), stitched);
    let probe: Array4<Complex32> = npz.by_name("probe").unwrap();
    assert_eq!(probe.dim(), (1, 1, 64, 64));
    assert_eq!(
        probe.index_axis(Axis(0), 0).index_axis(Axis(0), 0),
        raw.probe_guess
    );
    let x_m: Array1<f64> = npz.by_name("probe_position_x_m").unwrap();
    let y_m: Array1<f64> = npz.by_name("probe_position_y_m").unwrap();
    assert_eq!(x_m.len(), raw.n_points());
    assert_eq!(x_m, raw.xcoords.mapv(|x| x * PIXEL));
    assert_eq!(y_m, raw.ycoords.mapv(|y| y * PIXEL));
    // Ptychodus's mapping of a position to object pixels is the stitcher's canvas pixel.
    let (h, w) = stitched.dim();
    let (cx, cy) = (
        real(&mut npz, "object_center_x_m"),
        real(&mut npz, "object_center_y_m"),
    );
    for i in 0..raw.n_points() {
        let col = (x_m[i] - cx) / PIXEL + (w as f64 - 1.0) / 2.0;
        let row = (y_m[i] - cy) / PIXEL + (h as f64 - 1.0) / 2.0;
        assert!((col - (raw.xcoords[i] - origin[0])).abs() < 1e-6, "{i}");
        assert!((row - (raw.ycoords[i] - origin[1])).abs() < 1e-6, "{i}");
    }
    assert_eq!(real(&mut npz, "photon_energy_eV"), 8800.0);
    assert_eq!(real(&mut npz, "detector_object_distance_m"), 1.5);
    assert_eq!(real(&mut npz, "object_pixel_width_m"), PIXEL);
    // The simulator records 1e9 photons per pattern in the file's _metadata.
    assert_eq!(real(&mut npz, "probe_photon_count"), 1e9);
    let far: Array0<bool> = npz.by_name("far_field").unwrap();
    assert!(far.into_scalar());
}

#[test]
fn archives_without_history_give_empty_losses_and_bad_flags_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("t.npz");
    ok(&[
        "simulate",
        "--output",
        s(&data),
        "--n-images",
        "24",
        "--seed",
        "4",
    ]);
    // An archive saved without a history (as every archive before history.json existed).
    let cfg = TrainingConfig {
        model: ModelConfig::default(),
        ..Default::default()
    };
    let params = Params::from_training(&cfg.validate().unwrap());
    let model = PtychoPinn::new(&params, &DeviceKind::Flex.to_device().unwrap()).unwrap();
    let model_dir = tmp.path().join("model");
    std::fs::create_dir_all(&model_dir).unwrap();
    save_model(
        &model_dir.join("wts.h5.zip"),
        &model,
        &params,
        &SaveOptions::default(),
    )
    .unwrap();
    let inspect = ok(&["inspect", s(&model_dir)]);
    assert!(inspect.contains("history: none stored"), "{inspect}");
    let product = tmp.path().join("p.npz");
    infer_product(&model_dir, &data, &tmp.path().join("o"), &product);
    let mut npz = NpzReader::new(File::open(&product).unwrap()).unwrap();
    let epochs: Array1<i64> = npz.by_name("loss_epochs").unwrap();
    let losses: Array1<f64> = npz.by_name("loss_values").unwrap();
    assert_eq!((epochs.len(), losses.len()), (0, 0));

    // Refusals: one stderr line, nothing written (neither the product nor the outputs).
    let bad = tmp.path().join("bad.npz");
    let out = tmp.path().join("never");
    let base = [
        "infer",
        "--model",
        s(&model_dir),
        "--test-data",
        s(&data),
        "--output-dir",
        s(&out),
    ];
    let with = |extra: &[&str]| -> Vec<String> {
        base.iter()
            .chain(extra)
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
    };
    let cases: [(Vec<String>, &str); 5] = [
        (
            with(&[
                "--product",
                s(&bad),
                "--photon-energy-ev",
                "8800",
                "--detector-distance-m",
                "1",
            ]),
            "--product needs --pixel-size",
        ),
        (
            with(&["--product", s(&bad), "--pixel-size", "1e-8"]),
            "--product needs --photon-energy-ev",
        ),
        (
            with(&[
                "--product",
                s(&bad),
                "--pixel-size",
                "0",
                "--photon-energy-ev",
                "8800",
                "--detector-distance-m",
                "1",
            ]),
            "pixel_size_m",
        ),
        (
            with(&[
                "--product",
                s(&bad),
                "--pixel-size",
                "1e-8",
                "--photon-energy-ev=-5",
                "--detector-distance-m",
                "1",
            ]),
            "photon_energy_ev",
        ),
        (
            with(&["--pixel-size", "1e-8"]),
            "--pixel-size is only used with --product",
        ),
    ];
    for (args, needle) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        fails(&args, needle);
        assert!(!bad.exists(), "{args:?} wrote the product");
        assert!(!out.exists(), "{args:?} wrote outputs");
    }
    // A product path in a missing directory is refused before anything is computed.
    let missing = tmp.path().join("no/such/p.npz");
    fails(
        &[
            "infer",
            "--model",
            s(&model_dir),
            "--test-data",
            s(&data),
            "--output-dir",
            s(&out),
            "--product",
            s(&missing),
            "--pixel-size",
            "1e-8",
            "--photon-energy-ev",
            "8800",
            "--detector-distance-m",
            "1",
        ],
        "no/such",
    );
    assert!(!tmp.path().join("no").exists());
    assert!(!out.exists());
}
