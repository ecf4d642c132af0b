//! Inference plumbing on a randomly initialised archive and simulated data: output files, keys,
//! dtypes, shapes, canvas placement, the archive deciding N and gridsize, errors, evaluation.

use std::fs::File;
use std::path::{Path, PathBuf};

use ndarray::{Array0, Array1, Array2};
use ndarray_npy::NpzReader;
use num_complex::Complex32;
use ptycho_config::{
    EvaluationConfig, InferenceConfig, ModelConfig, Params, SimulationConfig, TrainingConfig, Valid,
};
use ptycho_model::{DeviceKind, PtychoPinn};
use ptycho_persist::{SaveOptions, save_model};
use ptycho_workflows::evaluate::evaluate;
use ptycho_workflows::infer::{InferRuntime, infer};
use ptycho_workflows::{RawData, Reconstruction, WorkflowError, simulate_lines};

/// A random-init model with the given gridsize saved to `dir/wts.h5.zip`; returns `dir`.
fn archive(dir: &Path, gridsize: usize) -> PathBuf {
    archive_of(
        dir,
        ModelConfig {
            gridsize,
            ..Default::default()
        },
    )
}

/// A random-init gridsize-2 model at filter scale 1 (for tests of grouping, where the
/// network's width does not matter and 1 makes it 4× cheaper) in `dir`.
fn narrow_gs2_archive(dir: &Path) -> PathBuf {
    archive_of(
        dir,
        ModelConfig {
            gridsize: 2,
            n_filters_scale: 1,
            ..Default::default()
        },
    )
}

/// A random-init model of `model` saved to `dir/wts.h5.zip`; returns `dir`.
fn archive_of(dir: &Path, model: ModelConfig) -> PathBuf {
    let cfg = TrainingConfig {
        model,
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

/// The default inference settings with `f` applied, validated.
fn settings(f: impl FnOnce(&mut InferenceConfig)) -> Valid<InferenceConfig> {
    let mut c = InferenceConfig::default();
    f(&mut c);
    c.validate().unwrap()
}

/// Predict on the CPU and write the outputs into the settings' `output_dir`.
const WRITE: InferRuntime = InferRuntime {
    device: DeviceKind::Flex,
    write_outputs: true,
    quiet: true,
    piece_bytes: ptycho_workflows::infer::PIECE_INPUT_BYTES,
};

fn simulated(n_images: usize, n: usize, seed: u64) -> RawData {
    simulate_lines(
        &SimulationConfig {
            n_images,
            n,
            seed,
            ..Default::default()
        }
        .validate()
        .unwrap(),
    )
    .unwrap()
}

#[test]
fn infer_writes_reconstruction_png_and_metrics() {
    let tmp = tempfile::tempdir().unwrap();
    let model_dir = archive(&tmp.path().join("model"), 1);
    let test = simulated(64, 64, 7);
    let out = tmp.path().join("out/nested");
    let cfg = settings(|c| {
        c.output_dir = out.clone();
        c.batch_size = 16;
    });
    let res = infer(&model_dir, &test, &cfg, &WRITE).unwrap();
    assert_eq!(res.n_groups, 64);
    assert_eq!(res.n_patterns, 64);
    assert!(res.patterns_per_second > 0.0);
    assert_eq!(res.params.n(), 64);
    eprintln!(
        "infer: {} patterns in {:.2} s = {:.1} patterns/s",
        res.n_patterns, res.predict_seconds, res.patterns_per_second
    );

    // reconstruction.npz: keys, dtypes, shapes.
    let npz_path = out.join("reconstruction.npz");
    let mut npz = NpzReader::new(File::open(&npz_path).unwrap()).unwrap();
    let mut names = npz.names().unwrap();
    names.sort();
    assert_eq!(
        names,
        ["amplitude", "object", "origin", "phase", "stitch_crop"]
    );
    let object: Array2<Complex32> = npz.by_name("object").unwrap();
    let amplitude: Array2<f32> = npz.by_name("amplitude").unwrap();
    let phase: Array2<f32> = npz.by_name("phase").unwrap();
    let origin: Array1<f64> = npz.by_name("origin").unwrap();
    let crop: Array0<i64> = npz.by_name("stitch_crop").unwrap();
    assert_eq!(crop.into_scalar(), 20);
    let (s, s2) = object.dim();
    assert_eq!(s, s2, "the stitched canvas is square");
    assert_eq!(amplitude.dim(), (s, s));
    assert_eq!(phase.dim(), (s, s));
    assert_eq!(object, res.reconstruction.object);
    for ((z, a), p) in object.iter().zip(&amplitude).zip(&phase) {
        assert!((z.norm() - a).abs() <= 1e-6 * (1.0 + a));
        assert!((z.arg() - p).abs() <= 1e-6);
    }

    // The origin places the canvas: its centre is the mean scan centre (gridsize 1: group
    // centres = scan positions), and the canvas covers every crop [x − M/2, x + M/2).
    let (ox, oy) = (origin[0], origin[1]);
    let m = 20.0;
    let mean = |v: &Array1<f64>| v.sum() / v.len() as f64;
    let half = s as f64 / 2.0;
    assert!((ox + half - mean(&test.xcoords)).abs() < 1e-3, "{ox} {s}");
    assert!((oy + half - mean(&test.ycoords)).abs() < 1e-3, "{oy} {s}");
    let (min_x, max_x) = test
        .xcoords
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    let (min_y, max_y) = test
        .ycoords
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    assert!(ox <= min_x - m / 2.0 + 1e-6 && ox + s as f64 >= max_x + m / 2.0 - 1e-6);
    assert!(oy <= min_y - m / 2.0 + 1e-6 && oy + s as f64 >= max_y + m / 2.0 - 1e-6);
    // The pixel under the first scan position is covered (non-zero); the canvas corners,
    // beyond every crop's reach, are 0.
    let (r0, c0) = (
        (test.ycoords[0] - oy).round() as usize,
        (test.xcoords[0] - ox).round() as usize,
    );
    assert!(object[[r0, c0]].norm() > 0.0);
    let far = |r: usize, c: usize| {
        let (x, y) = (ox + c as f64, oy + r as f64);
        test.xcoords
            .iter()
            .zip(&test.ycoords)
            .all(|(&sx, &sy)| (x - sx).abs() > m / 2.0 + 1.0 || (y - sy).abs() > m / 2.0 + 1.0)
    };
    for (r, c) in [(0, 0), (0, s - 1), (s - 1, 0), (s - 1, s - 1)] {
        if far(r, c) {
            assert_eq!(object[[r, c]], Complex32::new(0.0, 0.0), "corner {r},{c}");
        }
    }

    // The figures decode with the size of the figure of an s × s canvas (image, axes, colour
    // bar, title: issue 16).
    for name in ["reconstructed_amplitude.png", "reconstructed_phase.png"] {
        let img = image::open(out.join(name)).unwrap();
        assert_eq!(
            (img.width(), img.height()),
            ptycho_workflows::imaging::image_figure_size(s, s),
            "{name}"
        );
    }
    // metrics.json (the test data has objectGuess).
    let metrics: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("metrics.json")).unwrap()).unwrap();
    let ssim = metrics["metrics"]["amplitude"]["ssim"].as_f64().unwrap();
    assert!(ssim.is_finite() && ssim <= 1.0);
    assert_eq!(metrics["stitch_crop"], 20);
    // The comparison figure (objectGuess present); nothing else (no temporary files).
    assert!(out.join("comparison.png").is_file());
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 5);

    // Batching is invisible: another batch size gives the same object.
    let res7 = infer(
        &model_dir.join("wts.h5.zip"),
        &test,
        &settings(|c| c.batch_size = 7),
        &InferRuntime::default(),
    )
    .unwrap();
    assert!(res7.files.is_empty());
    let diff = res7
        .reconstruction
        .object
        .iter()
        .zip(&object)
        .fold(0f32, |m, (a, b)| m.max((a - b).norm()));
    assert!(diff < 1e-5, "batch size changed the result by {diff}");
}

#[test]
fn archive_gridsize_decides_grouping() {
    let tmp = tempfile::tempdir().unwrap();
    let model_dir = narrow_gs2_archive(&tmp.path().join("gs2"));
    let test = simulated(48, 64, 11);
    let res = infer(
        &model_dir,
        &test,
        &settings(|_| {}),
        &InferRuntime::default(),
    )
    .unwrap();
    assert_eq!(res.params.gridsize(), 2);
    assert_eq!(res.n_groups, 48, "one group per scan point");
    assert_eq!(res.n_patterns, 192);
    assert!(res.evaluation.is_some() && res.evaluation_error.is_none());
    // An objectGuess far from the scan: the reconstruction is still made and written, the
    // metrics are skipped with the reason kept.
    let mut odd = test.clone();
    odd.object_guess = Some(Array2::from_elem((4, 4), Complex32::new(1.0, 0.0)));
    let out = tmp.path().join("odd");
    let res = infer(
        &model_dir,
        &odd,
        &settings(|c| {
            c.n_groups = Some(5);
            c.output_dir = out.clone();
        }),
        &WRITE,
    )
    .unwrap();
    assert_eq!(res.n_groups, 5);
    assert_eq!(res.n_patterns, 20);
    assert!(res.evaluation.is_none());
    let why = res.evaluation_error.unwrap();
    assert!(why.contains("does not overlap"), "{why}");
    assert!(out.join("reconstruction.npz").is_file() && !out.join("metrics.json").exists());
}

/// Fraction of the scan's bounding box that a canvas covers, written out here as the definition
/// the coverage test holds inference to: a canvas pixel is **covered** when its stitching weight
/// (the overlap sum of the M×M crops that reach it) is non-zero; canvas pixel `(r, c)` is object
/// pixel `(x, y) = (origin_x + c, origin_y + r)`; the box is `[min x, max x] × [min y, max y]` of
/// the scan positions; the fraction is covered box pixels over all integer pixels of the box
/// (box pixels off the canvas are uncovered).
fn box_fraction(covered: &Array2<bool>, origin: [f64; 2], scan: &RawData) -> f64 {
    let lo_hi = |v: &Array1<f64>| {
        v.iter()
            .fold((f64::MAX, f64::MIN), |(a, b), &x| (a.min(x), b.max(x)))
    };
    let ((x0, x1), (y0, y1)) = (lo_hi(&scan.xcoords), lo_hi(&scan.ycoords));
    let (mut inside, mut hit) = (0usize, 0usize);
    for r in ((y0 - origin[1]).ceil() as i64)..=((y1 - origin[1]).floor() as i64) {
        for c in ((x0 - origin[0]).ceil() as i64)..=((x1 - origin[0]).floor() as i64) {
            inside += 1;
            let on_canvas = r >= 0 && c >= 0 && (r as usize) < covered.nrows();
            if on_canvas && (c as usize) < covered.ncols() && covered[[r as usize, c as usize]] {
                hit += 1;
            }
        }
    }
    hit as f64 / inside as f64
}

/// Issue #19: gridsize-2 inference forms one group per scan point, each seeded by it, and the
/// stitched canvas covers the scan: ≥ 95 % of the scan's bounding box (see [`box_fraction`])
/// on the simulated scan of `ptycho simulate`'s defaults (512 positions, lines object, N = 64).
/// The old grouping (⌊512 / 4⌋ = 128 groups, K = 4, the seed not a member: the reference's
/// `inference.py`) is stitched from the same scan with all-ones patches (the weights do not
/// depend on the patches) and covers far less, so this test would have failed before.
#[test]
fn gridsize2_inference_covers_the_scan() {
    use ptycho_config::GroupingConfig;
    use ptycho_workflows::grouping::group_indices_of;
    use ptycho_workflows::stitch::Stitcher;

    let tmp = tempfile::tempdir().unwrap();
    let model_dir = narrow_gs2_archive(&tmp.path().join("gs2"));
    let test = simulated(512, 64, 19);
    let res = infer(
        &model_dir,
        &test,
        &settings(|_| {}),
        &InferRuntime::default(),
    )
    .unwrap();
    assert_eq!((res.n_groups, res.n_patterns), (512, 2048));
    assert_eq!(res.covered.dim(), res.reconstruction.object.dim());
    let new = box_fraction(&res.covered, res.reconstruction.origin, &test);
    assert!(
        (new - res.scan_coverage).abs() < 1e-12,
        "{new} vs {}",
        res.scan_coverage
    );

    // Each group holds its seed as the first member, then 3 of the seed's 7 nearest neighbours.
    let header = test.header();
    let cover = settings(|_| {}).grouping(512, 2).unwrap();
    let idx = group_indices_of(&header, 4, &cover).unwrap();
    assert_eq!(idx.column(0).to_vec(), (0..512).collect::<Vec<_>>());
    for (g, row) in idx.rows().into_iter().enumerate() {
        let d2 = |i: usize| {
            (test.xcoords[i] - test.xcoords[g]).powi(2)
                + (test.ycoords[i] - test.ycoords[g]).powi(2)
        };
        let mut others: Vec<f64> = (0..512).filter(|&i| i != g).map(d2).collect();
        others.sort_by(f64::total_cmp);
        for &m in row.iter().skip(1) {
            assert!(
                m != g && d2(m) <= others[6],
                "group {g}: {m} is not among the 7 nearest"
            );
        }
    }

    let old_opts = GroupingConfig {
        n_groups: 512 / 4,
        neighbor_count: 4,
        seed: 45,
        ..Default::default()
    }
    .validate()
    .unwrap();
    let old_idx = group_indices_of(&header, 4, &old_opts).unwrap();
    let centres: Vec<[f64; 2]> = old_idx
        .rows()
        .into_iter()
        .map(|row| {
            let mean = |v: &Array1<f64>| row.iter().map(|&i| v[i]).sum::<f64>() / 4.0;
            [mean(&test.xcoords), mean(&test.ycoords)]
        })
        .collect();
    let mut stitcher = Stitcher::new(&centres, 20, [64, 64]).unwrap();
    let ones = ndarray::Array3::from_elem((centres.len(), 64, 64), Complex32::new(1.0, 0.0));
    stitcher.add(0, ones.view()).unwrap();
    let sums = stitcher.finish();
    let old = box_fraction(&sums.covered(), sums.origin, &test);
    eprintln!(
        "covered fraction of the scan's bounding box: old grouping {old:.4}, new grouping {new:.4}"
    );
    assert!(
        new >= 0.95,
        "gridsize-2 inference covers only {new:.4} of the scan box"
    );
    assert!(
        old < 0.95,
        "the old grouping covered {old:.4}: this test would not catch it"
    );

    // Stitched at the group centres (the reference's way) the same groups cover less: the
    // outermost scan points are never a centre. The default stitches a window at every member.
    let at_centres = infer(
        &model_dir,
        &test,
        &settings(|c| c.stitch_at = ptycho_config::StitchAt::Centres),
        &InferRuntime::default(),
    )
    .unwrap();
    let centres_cover = at_centres.scan_coverage;
    eprintln!("stitched at the members {new:.4}, at the group centres {centres_cover:.4}");
    assert!(
        new > centres_cover + 0.005,
        "members {new:.4} vs centres {centres_cover:.4}"
    );
    assert_ne!(at_centres.reconstruction.object, res.reconstruction.object);
}

#[test]
fn wrong_pattern_size_is_one_clear_error_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let model_dir = archive(&tmp.path().join("m"), 1);
    let test = simulate_lines(
        &SimulationConfig {
            n_images: 4,
            n: 128,
            object_size: Some(160),
            ..Default::default()
        }
        .validate()
        .unwrap(),
    )
    .unwrap();
    let out = tmp.path().join("out");
    let err = infer(
        &model_dir,
        &test,
        &settings(|c| c.output_dir = out.clone()),
        &WRITE,
    )
    .unwrap_err();
    assert!(matches!(
        err,
        WorkflowError::PatternSize {
            got: 128,
            expected: 64,
            ..
        }
    ));
    let msg = err.to_string();
    assert_eq!(
        msg,
        format!(
            "test data has 128×128 patterns but the model in {} expects N=64",
            model_dir.join("wts.h5.zip").display()
        )
    );
    assert!(!out.exists(), "output directory created before validation");

    // A missing archive names its path.
    let err = infer(
        &tmp.path().join("nope"),
        &test,
        &settings(|_| {}),
        &InferRuntime::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("nope"), "{err}");
}

#[test]
fn evaluate_truth_against_itself_is_perfect_and_shift_is_not() {
    let mut truth = simulated(32, 64, 5);
    // Give the object a non-trivial phase so that the phase metrics are exercised too.
    let obj = truth.object_guess.as_ref().unwrap().clone();
    let obj = Array2::from_shape_fn(obj.dim(), |(r, c)| {
        obj[[r, c]]
            * Complex32::from_polar(
                1.0,
                0.8 * ((r as f32) * 0.11).sin() * ((c as f32) * 0.07).cos(),
            )
    });
    truth.object_guess = Some(obj.clone());
    let m = 20usize;
    // The scanned region ± M/2, as `align_for_evaluation` crops it.
    let lo = |v: &Array1<f64>| {
        (v.iter().fold(f64::MAX, |a, &b| a.min(b)).trunc() as i64 - 10).max(0) as usize
    };
    let hi = |v: &Array1<f64>, len: usize| {
        ((v.iter().fold(f64::MIN, |a, &b| a.max(b)).trunc() as i64 + 10).min(len as i64)) as usize
    };
    let (r0, r1) = (lo(&truth.ycoords), hi(&truth.ycoords, obj.nrows()));
    let (c0, c1) = (lo(&truth.xcoords), hi(&truth.xcoords, obj.ncols()));
    let cropped = obj.slice(ndarray::s![r0..r1, c0..c1]).to_owned();
    let recon = Reconstruction {
        object: cropped.clone(),
        origin: [c0 as f64, r0 as f64],
        stitch_crop: Some(m),
    };
    let ev = evaluate(
        &recon,
        &truth,
        &EvaluationConfig::default().validate().unwrap(),
    )
    .unwrap();
    assert_eq!(ev.aligned_shape, [r1 - r0, c1 - c0]);
    let (a, p) = (&ev.metrics.amplitude, &ev.metrics.phase);
    assert!((a.ssim - 1.0).abs() < 1e-6, "amplitude SSIM {}", a.ssim);
    assert!((p.ssim - 1.0).abs() < 1e-6, "phase SSIM {}", p.ssim);
    assert!(a.mae < 1e-5 && p.mae < 1e-5);
    let json = serde_json::to_value(&ev).unwrap();
    assert_eq!(json["aligned_shape"], serde_json::json!([r1 - r0, c1 - c0]));

    // A reconstruction shifted by 3 pixels scores clearly worse.
    let shifted = obj
        .slice(ndarray::s![r0 + 3..r1 + 3, c0 + 3..c1 + 3])
        .to_owned();
    let ev = evaluate(
        &Reconstruction {
            object: shifted,
            ..recon
        },
        &truth,
        &EvaluationConfig::default().validate().unwrap(),
    )
    .unwrap();
    assert!(
        ev.metrics.amplitude.ssim < 0.95,
        "{}",
        ev.metrics.amplitude.ssim
    );

    // Without objectGuess there is nothing to evaluate against.
    truth.object_guess = None;
    let err = evaluate(
        &Reconstruction {
            object: cropped,
            origin: [0.0, 0.0],
            stitch_crop: None,
        },
        &truth,
        &EvaluationConfig::default().validate().unwrap(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("objectGuess"), "{err}");
}
