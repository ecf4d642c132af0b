//! End-to-end tests of data as users have it (issue 16, item 5), through the real `ptycho`
//! binary: integer diffraction and explicit units (`--diffraction-units`), Ptychodus 1.7's
//! training export and training folder, the reference's coordinate transforms (`--flip-x`,
//! `--flip-y`, `--swap-xy`, `--coord-scale`), and `ptycho simulate --input-file` / `--object`.

use std::fs::File;
use std::path::{Path, PathBuf};

use ndarray::{Array1, Array2, Array3};
use ndarray_npy::{NpzReader, NpzWriter, WritableElement};
use num_complex::Complex32;
use ptycho_config::{ModelConfig, Params, TrainingConfig};
use ptycho_e2e::{Out, ptycho};
use ptycho_model::{DeviceKind, PtychoPinn};
use ptycho_persist::{SaveOptions, save_model};
use ptycho_workflows::RawData;

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
    assert_eq!(lines.len(), 1, "stderr is not one line:\n{}", o.stderr);
    for n in needles {
        assert!(lines[0].contains(n), "`{}` lacks `{n}`", lines[0]);
    }
    lines[0].to_string()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The Ptychodus 1.7 export committed under testdata/ (see its generator script).
fn ptychodus_fixture() -> PathBuf {
    let p = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/ptychodus/ptychodus_training.npz"
    ));
    assert!(p.is_file(), "{} is missing", p.display());
    p
}

/// A random-init gridsize-1 model (N = 64) saved as `dir/wts.h5.zip`.
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

/// `ptycho simulate` of `m` positions (object 128 px, seed) into `dir/name`, read back.
fn simulated(dir: &Path, name: &str, m: usize, seed: u64) -> RawData {
    let path = dir.join(name);
    ok(&[
        "simulate",
        "--output",
        s(&path),
        "--n-images",
        &m.to_string(),
        "--object-size",
        "128",
        "--seed",
        &seed.to_string(),
    ]);
    RawData::from_npz(&path).unwrap()
}

/// Write the scan of `raw` with `diff3d` replaced by `diff` (any dtype) and `objectGuess` only
/// when `with_object`.
fn write_scan<T: WritableElement>(path: &Path, raw: &RawData, diff: &Array3<T>, with_object: bool) {
    let mut w = NpzWriter::new(File::create(path).unwrap());
    w.add_array("xcoords", &raw.xcoords).unwrap();
    w.add_array("ycoords", &raw.ycoords).unwrap();
    w.add_array("diff3d", diff).unwrap();
    w.add_array("probeGuess", &raw.probe_guess).unwrap();
    if with_object {
        w.add_array("objectGuess", raw.object_guess.as_ref().unwrap())
            .unwrap();
    }
    w.finish().unwrap();
}

/// `object` and `origin` of a reconstruction.npz.
fn reconstruction(dir: &Path) -> (Array2<Complex32>, [f64; 2]) {
    let mut npz = NpzReader::new(File::open(dir.join("reconstruction.npz")).unwrap()).unwrap();
    let object: Array2<Complex32> = npz.by_name("object").unwrap();
    let origin: Array1<f64> = npz.by_name("origin").unwrap();
    (object, [origin[0], origin[1]])
}

/// `ptycho infer` of `data` with `model` into `dir/out`, plus extra flags; returns the run.
fn infer(model: &Path, data: &Path, out: &Path, extra: &[&str]) -> Out {
    let mut args = vec![
        "infer",
        "--model",
        s(model),
        "--test-data",
        s(data),
        "--output-dir",
        s(out),
    ];
    args.extend_from_slice(extra);
    ok(&args)
}

/// max |a − b| / max |a|.
fn max_rel_diff(a: &Array2<Complex32>, b: &Array2<Complex32>) -> f32 {
    assert_eq!(a.dim(), b.dim());
    let scale = a.iter().fold(0f32, |m, z| m.max(z.norm()));
    let diff = a
        .iter()
        .zip(b)
        .fold(0f32, |m, (x, y)| m.max((x - y).norm()));
    assert!(scale > 0.0);
    diff / scale
}

/// The issue's done-when: a uint16 counts file and the same data as float amplitudes give the
/// same reconstruction with the same model (within f32 noise); every integer dtype and float
/// counts are read as counts by `auto`; `--diffraction-units` overrides the guess.
#[test]
fn counts_in_any_dtype_and_float_amplitudes_reconstruct_alike() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let raw = simulated(t, "sim.npz", 32, 5);
    let model = archive(&t.join("model"));

    // Detector counts: the simulated (noisy) intensities rescaled to fit uint16 and rounded.
    let peak = raw.diff3d.iter().fold(0f32, |m, &v| m.max(v)) as f64;
    let k = 60_000.0 / (peak * peak);
    let counts: Array3<u16> = raw
        .diff3d
        .mapv(|a| (a as f64 * a as f64 * k).round() as u16);
    assert!(counts.iter().any(|&c| c > 1000));
    let amplitudes: Array3<f32> = counts.mapv(|c| (c as f64).sqrt() as f32);

    let u16_file = t.join("counts_u16.npz");
    write_scan(&u16_file, &raw, &counts, true);
    let amp_file = t.join("amplitudes_f32.npz");
    write_scan(&amp_file, &raw, &amplitudes, true);

    let run = infer(&model, &u16_file, &t.join("r_u16"), &[]);
    assert!(
        run.stdout
            .contains("`diff3d` (uint16) read as photon counts, square-rooted to amplitudes"),
        "{}",
        run.stdout
    );
    let run = infer(&model, &amp_file, &t.join("r_amp"), &[]);
    assert!(
        run.stdout
            .contains("`diff3d` (float32) read as amplitudes (sqrt of counts), used as stored"),
        "{}",
        run.stdout
    );
    let (o_counts, origin_counts) = reconstruction(&t.join("r_u16"));
    let (o_amp, origin_amp) = reconstruction(&t.join("r_amp"));
    let rel = max_rel_diff(&o_amp, &o_counts);
    eprintln!("uint16 counts vs float32 amplitudes: max relative difference {rel:e}");
    assert!(rel < 1e-4, "max relative difference {rel}");
    assert_eq!(origin_counts, origin_amp);
    // Amplitudes in other units (the simulator's object×probe units are √counts / s_sim): the
    // data normalisation removes the factor, up to f32 rounding.
    let scaled_file = t.join("amplitudes_scaled.npz");
    write_scan(&scaled_file, &raw, &amplitudes.mapv(|a| a * 0.037), true);
    infer(&model, &scaled_file, &t.join("r_scaled"), &[]);
    let rel = max_rel_diff(&o_counts, &reconstruction(&t.join("r_scaled")).0);
    eprintln!("uint16 counts vs float32 amplitudes × 0.037: max relative difference {rel:e}");
    assert!(rel < 1e-4, "max relative difference {rel}");

    // Other dtypes holding the same counts: int32, int64, uint32, float64 (integral, auto →
    // counts) give the same reconstruction; uint8 holds counts too (its own, smaller ones).
    let files = [
        ("int32", t.join("counts_int32.npz")),
        ("int64", t.join("counts_int64.npz")),
        ("uint32", t.join("counts_uint32.npz")),
        ("float64", t.join("counts_float64.npz")),
    ];
    write_scan(&files[0].1, &raw, &counts.mapv(i32::from), true);
    write_scan(&files[1].1, &raw, &counts.mapv(i64::from), true);
    write_scan(&files[2].1, &raw, &counts.mapv(u32::from), true);
    write_scan(&files[3].1, &raw, &counts.mapv(f64::from), true);
    for (dtype, f) in &files {
        let out = t.join(format!("r_{dtype}"));
        let run = infer(&model, f, &out, &[]);
        assert!(
            run.stdout
                .contains(&format!("`diff3d` ({dtype}) read as photon counts")),
            "{dtype}: {}",
            run.stdout
        );
        let rel = max_rel_diff(&o_counts, &reconstruction(&out).0);
        assert!(rel < 1e-4, "{dtype}: max relative difference {rel}");
    }
    let small: Array3<u8> = counts.mapv(|c| (c / 256) as u8);
    let u8_file = t.join("counts_u8.npz");
    write_scan(&u8_file, &raw, &small, true);
    let run = infer(&model, &u8_file, &t.join("r_u8"), &[]);
    assert!(
        run.stdout.contains("(uint8) read as photon counts"),
        "{}",
        run.stdout
    );

    // Explicit units win over the guess: counts read as amplitudes reconstruct differently, and
    // the flag is named in the note.
    let run = infer(
        &model,
        &u16_file,
        &t.join("r_u16_amp"),
        &["--diffraction-units", "amplitude"],
    );
    assert!(
        run.stdout
            .contains("read as amplitudes (sqrt of counts), used as stored: as set (diffraction_units = amplitude)"),
        "{}",
        run.stdout
    );
    let rel = max_rel_diff(&o_counts, &reconstruction(&t.join("r_u16_amp")).0);
    assert!(rel > 1e-3, "amplitude reading changed nothing: {rel}");
    // Amplitudes declared as counts are square-rooted once more: different again.
    let run = infer(
        &model,
        &amp_file,
        &t.join("r_amp_counts"),
        &["--diffraction_units", "counts"],
    );
    assert!(
        run.stdout.contains("(float32) read as photon counts"),
        "{}",
        run.stdout
    );
    let rel = max_rel_diff(&o_amp, &reconstruction(&t.join("r_amp_counts")).0);
    assert!(rel > 1e-3, "counts reading changed nothing: {rel}");
    // `ptycho evaluate` reads an integer ground-truth file too.
    let o = ok(&[
        "evaluate",
        "--reconstruction",
        s(&t.join("r_u16/reconstruction.npz")),
        "--ground-truth",
        s(&u16_file),
        "--diffraction-units",
        "counts",
    ]);
    assert!(o.stdout.contains("SSIM"), "{}", o.stdout);
}

#[test]
fn bad_units_and_negative_counts_fail_with_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let raw = simulated(t, "sim.npz", 8, 2);
    let model = archive(&t.join("model"));
    let mut counts: Array3<i32> = raw.diff3d.mapv(|a| (a * a).round() as i32);
    counts[[1, 2, 3]] = -3;
    let f = t.join("negative.npz");
    write_scan(&f, &raw, &counts, false);
    let out = t.join("out");
    let line = fails(
        &[
            "infer",
            "--model",
            s(&model),
            "--test-data",
            s(&f),
            "--output-dir",
            s(&out),
        ],
        &["negative.npz", "key `diff3d`", "negative count -3"],
    );
    eprintln!("{line}");
    assert!(!out.join("reconstruction.npz").exists());
    // Float counts declared as such: the same error.
    let neg = counts.mapv(|v| v as f32);
    write_scan(&f, &raw, &neg, false);
    fails(
        &[
            "infer",
            "--model",
            s(&model),
            "--test-data",
            s(&f),
            "--diffraction-units",
            "counts",
        ],
        &["key `diff3d`", "negative count -3"],
    );
    // A units word that does not exist is refused by the parser.
    let o = ptycho(&["infer", "--diffraction-units", "photons"]);
    assert_ne!(o.code, 0);
    assert!(o.stderr.contains("'photons'"), "{}", o.stderr);
}

/// Ptychodus 1.7's `save_ptychopinn_training_data` output loads as written (uint16 counts,
/// bad_pixels, a (2, N, N) probe stack, int scan_index), and a Ptychodus training folder works as
/// `--train-data DIR` (train_data.npz trains, test_data.npz is reconstructed).
#[test]
fn ptychodus_export_and_training_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let fixture = ptychodus_fixture();
    let model = archive(&t.join("model"));
    let run = infer(&model, &fixture, &t.join("r"), &[]);
    assert!(
        run.stdout
            .contains("`diff3d` (uint16) read as photon counts")
            && run
                .stdout
                .contains("`probeGuess` is a stack of 2 probe modes; using mode 0"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("8 patterns"), "{}", run.stdout);

    // The training folder as Ptychodus lays it out.
    let folder = t.join("ptychodus_train");
    std::fs::create_dir(&folder).unwrap();
    std::fs::copy(&fixture, folder.join("train_data.npz")).unwrap();
    std::fs::copy(&fixture, folder.join("test_data.npz")).unwrap();
    let out = t.join("trained");
    let run = ok(&[
        "train",
        "--train-data",
        s(&folder),
        "--output-dir",
        s(&out),
        "--nepochs",
        "1",
        "--n-groups",
        "8",
        "--batch-size",
        "4",
    ]);
    assert!(run.stdout.contains("trained 1 epochs"), "{}", run.stdout);
    assert!(
        run.stdout.contains("reconstruction:") && run.stdout.contains("(8 patterns"),
        "test_data.npz was not reconstructed: {}",
        run.stdout
    );
    assert!(
        run.stdout.contains(&format!(
            "{}: `diff3d` (uint16)",
            folder.join("train_data.npz").display()
        )),
        "{}",
        run.stdout
    );
    assert!(out.join("wts.h5.zip").is_file());
    assert!(out.join("reconstruction/reconstruction.npz").is_file());
    // --quiet hides the notes.
    let run = ok(&[
        "train",
        "--train-data",
        s(&folder),
        "--output-dir",
        s(&t.join("quiet")),
        "--nepochs",
        "1",
        "--n-groups",
        "8",
        "--batch-size",
        "4",
        "--quiet",
    ]);
    assert!(!run.stdout.contains("note:"), "{}", run.stdout);
    // The folder's test file at inference.
    let run = infer(&model, &folder, &t.join("r_folder"), &[]);
    assert!(run.stdout.contains("test_data.npz"), "{}", run.stdout);

    // A directory that is no training folder: one line naming what it lacks.
    let empty = t.join("empty");
    std::fs::create_dir(&empty).unwrap();
    fails(
        &[
            "train",
            "--train-data",
            s(&empty),
            "--output-dir",
            s(&t.join("x")),
        ],
        &["empty", "without train_data.npz"],
    );
    fails(
        &["infer", "--model", s(&model), "--test-data", s(&empty)],
        &["without test_data.npz"],
    );
}

/// flip_x / flip_y / swap_xy / coord_scale transform the coordinates at load, as the
/// reference's `load_data`: seen in the stitched canvas's origin and size.
#[test]
fn coordinate_transforms_move_the_stitched_canvas() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let raw = simulated(t, "sim.npz", 16, 7);
    let model = archive(&t.join("model"));
    // No objectGuess: a flipped scan would fall outside it and there is nothing to evaluate.
    let f = t.join("scan.npz");
    write_scan(&f, &raw, &raw.diff3d, false);
    let run = |name: &str, extra: &[&str]| {
        let out = t.join(name);
        let o = infer(&model, &f, &out, extra);
        (reconstruction(&out), o.stdout)
    };
    let ((o, origin), _) = run("plain", &[]);
    let side = o.nrows() as f64;
    assert_eq!(o.nrows(), o.ncols());

    let ((fx, ofx), note) = run("flip_x", &["--flip-x", "true"]);
    assert!(
        note.contains("flip_x true, flip_y false, swap_xy false, coord_scale 1"),
        "{note}"
    );
    assert_eq!(fx.dim(), o.dim());
    // Negated x: the canvas's x range is mirrored, [a, a + S) → (−a − S, −a].
    assert!(
        (ofx[0] + origin[0] + side).abs() < 1e-9,
        "{ofx:?} {origin:?}"
    );
    assert_eq!(ofx[1], origin[1]);

    let ((_, ofy), _) = run("flip_y", &["--flip_y", "yes"]);
    assert!(
        (ofy[1] + origin[1] + side).abs() < 1e-9,
        "{ofy:?} {origin:?}"
    );
    assert_eq!(ofy[0], origin[0]);

    let ((sw, osw), _) = run("swap", &["--swap-xy", "true"]);
    assert_eq!(sw.dim(), o.dim());
    assert_eq!(osw, [origin[1], origin[0]]);

    let ((sc, osc), _) = run("scale", &["--coord-scale", "2"]);
    assert!(sc.nrows() > o.nrows(), "{:?} vs {:?}", sc.dim(), o.dim());
    // The canvas spans com ± S/2 around the mean scan position com, which doubles.
    let centre = |org: [f64; 2], s: f64| [org[0] + s / 2.0, org[1] + s / 2.0];
    let (c0, c2) = (centre(origin, side), centre(osc, sc.nrows() as f64));
    assert!((c2[0] - 2.0 * c0[0]).abs() < 1e-9 && (c2[1] - 2.0 * c0[1]).abs() < 1e-9);

    fails(
        &[
            "infer",
            "--model",
            s(&model),
            "--test-data",
            s(&f),
            "--coord-scale",
            "0",
        ],
        &["coord_scale"],
    );
}

/// `ptycho simulate --input-file F.npz` scans the file's objectGuess with its probeGuess (mode 0
/// of a stack); `--object grf|points|diagonals` draw the reference's other objects, seeded.
#[test]
fn simulate_takes_the_users_object_and_the_other_objects() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let fixture = ptychodus_fixture();
    let out = t.join("from_file.npz");
    let o = ok(&[
        "simulate",
        "--input-file",
        s(&fixture),
        "--n-images",
        "12",
        "--output",
        s(&out),
    ]);
    assert!(
        o.stdout.contains("objectGuess and probeGuess of"),
        "{}",
        o.stdout
    );
    let sim = RawData::from_npz(&out).unwrap();
    let mut npz = NpzReader::new(File::open(&fixture).unwrap()).unwrap();
    let object: Array2<Complex32> = npz.by_name("objectGuess").unwrap();
    let probes: Array3<Complex32> = npz.by_name("probeGuess").unwrap();
    assert_eq!(sim.object_guess.as_ref().unwrap(), &object);
    assert_eq!(sim.probe_guess, probes.index_axis(ndarray::Axis(0), 0));
    assert_eq!(sim.n_points(), 12);
    // Positions stay N/2 from the 72-pixel object's border.
    assert!(
        sim.xcoords
            .iter()
            .chain(&sim.ycoords)
            .all(|&v| (32.0..40.0).contains(&v))
    );
    assert!(sim.diff3d.iter().any(|&v| v > 0.0));

    // N must be the probe's width; an object size makes no sense with a given object.
    fails(
        &[
            "simulate",
            "--input-file",
            s(&fixture),
            "--n",
            "128",
            "--output",
            s(&t.join("x.npz")),
        ],
        &["probeGuess", "N = 128"],
    );
    fails(
        &[
            "simulate",
            "--input-file",
            s(&fixture),
            "--object-size",
            "100",
            "--output",
            s(&t.join("x.npz")),
        ],
        &["object_size"],
    );
    assert!(!t.join("x.npz").exists());

    for (kind, lo, hi) in [
        ("grf", (0.05, 0.45), (0.55, 1.0)),
        ("points", (0.2, 0.5), (0.9, 2.0)),
        ("diagonals", (0.3, 3.0), (3.0, 6.5)),
    ] {
        let draw = |seed: &str, name: &str| {
            let p = t.join(name);
            let o = ok(&[
                "simulate",
                "--object",
                kind,
                "--n-images",
                "4",
                "--seed",
                seed,
                "--no-noise",
                "--output",
                s(&p),
            ]);
            assert!(
                o.stdout.contains(&format!("synthetic {kind} object")),
                "{}",
                o.stdout
            );
            RawData::from_npz(&p).unwrap()
        };
        let a = draw("11", &format!("{kind}_a.npz"));
        let obj = a.object_guess.clone().unwrap();
        assert_eq!(obj.dim(), (224, 224));
        assert!(obj.iter().all(|z| z.im == 0.0));
        let re: Vec<f32> = obj.iter().map(|z| z.re).collect();
        let min = re.iter().copied().fold(f32::INFINITY, f32::min) as f64;
        let max = re.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
        assert!(min >= lo.0 && min <= lo.1, "{kind}: min {min}");
        assert!(max >= hi.0 && max <= hi.1, "{kind}: max {max}");
        assert!(max - min > 0.1, "{kind}: flat object");
        // Reproducible per seed, different across seeds.
        assert_eq!(draw("11", &format!("{kind}_b.npz")), a);
        assert_ne!(
            draw("12", &format!("{kind}_c.npz")).object_guess,
            a.object_guess
        );
    }
}
