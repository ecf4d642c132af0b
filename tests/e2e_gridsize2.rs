//! End-to-end gridsize 2 through the real `ptycho` binary: simulate → train (1 epoch, tiny
//! model) → infer → evaluate, then the stitched canvas (`--stitch-at centres`, the reference's
//! layout) against the stitcher's geometry.
//!
//! `ptycho simulate` only makes the 'lines' object (real, zero phase) with the default probe, so
//! that is the data. The canvas is checked against the group centres formed the way `ptycho
//! infer` forms them (same grouping call, same defaults), with the origin and size rule of
//! `stitch::shift_and_sum`: `com` = float32 mean of the centres, `pad` = the largest |centre −
//! com| rounded up to an even integer, side `S = M + 2·pad`, origin `com − M/2 − pad`.

use std::fs::File;
use std::path::Path;
use std::process::Command;

use ndarray::{Array0, Array1, Array2};
use ndarray_npy::NpzReader;
use num_complex::Complex32;
use ptycho_config::{InferenceConfig, ModelConfig, Params, TrainingConfig};
use ptycho_e2e::ptycho_bin;
use ptycho_workflows::{RawData, group};
use serde_json::Value;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Run `ptycho ARGS`; panics with its stderr unless it succeeds. Returns stdout.
fn ok(args: &[&str]) -> String {
    let out = Command::new(ptycho_bin()).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ptycho {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Group centres `[x, y]` as `ptycho infer` forms them for a gridsize-2 model.
fn infer_group_centres(data: &Path) -> Vec<[f64; 2]> {
    let raw = RawData::from_npz(data).unwrap();
    let cfg = TrainingConfig {
        model: ModelConfig {
            gridsize: 2,
            n_filters_scale: 1,
            ..Default::default()
        },
        ..Default::default()
    };
    let params = Params::from_training(&cfg.validate().unwrap());
    let infer_cfg = InferenceConfig::default().validate().unwrap();
    let g = group(
        &raw,
        &params,
        &infer_cfg.grouping(raw.n_points(), 2).unwrap(),
    )
    .unwrap();
    (0..g.n_groups())
        .map(|k| {
            [
                g.coords_offsets[[k, 0, 0, 0]],
                g.coords_offsets[[k, 0, 1, 0]],
            ]
        })
        .collect()
}

#[test]
fn gridsize2_train_infer_evaluate_canvas_covers_every_group() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let (train, test) = (t.join("train.npz"), t.join("test.npz"));
    // The test scan on a 128-px object: 32 positions 11 px apart, so that every group (its seed
    // and 3 of the seed's 7 nearest neighbours) is compact and the merged object of a group
    // covers its stitching crop. (On the default 224-px object they are 28 px apart, wider than
    // a patch's core, and an undertrained model's crop can hold exact zeros.)
    for (path, n, seed, side) in [(&train, "48", "21", "224"), (&test, "32", "22", "128")] {
        ok(&[
            "simulate",
            "--output",
            s(path),
            "--n-images",
            n,
            "--seed",
            seed,
            "--object-size",
            side,
        ]);
    }

    let model = t.join("model");
    let out = ok(&[
        "train",
        "--train-data",
        s(&train),
        "--output-dir",
        s(&model),
        "--gridsize",
        "2",
        "--n-filters-scale",
        "1",
        "--n-groups",
        "8",
        "--batch-size",
        "8",
        "--nepochs",
        "1",
        "--early-stop-patience",
        "0",
        "--seed",
        "13",
        "--quiet",
    ]);
    assert!(out.contains("trained 1 epochs"), "{out}");

    // The default stitches a window at every member (issue #19); the geometry below is the
    // reference's centre stitching, so ask for it, and check that the default covers at least as
    // much of the scan.
    let covers = |out: &str| -> f64 {
        let at = out.find("covers ").expect("a coverage line") + "covers ".len();
        out[at..].split(' ').next().unwrap().parse().unwrap()
    };
    let infer = |dir: &Path, extra: &[&str]| {
        let mut args = vec![
            "infer",
            "--model",
            s(&model),
            "--test-data",
            s(&test),
            "--output-dir",
            s(dir),
        ];
        args.extend_from_slice(extra);
        ok(&args)
    };
    let members = infer(&t.join("inference-members"), &[]);
    let inf = t.join("inference");
    let out = infer(&inf, &["--stitch-at", "centres"]);
    assert!(
        covers(&members) >= covers(&out) && covers(&members) > 90.0,
        "members {members}\ncentres {out}"
    );
    // One group per test scan point (issue #19).
    assert!(
        out.contains("32 groups (128 patterns, N = 64, gridsize = 2)"),
        "{out}"
    );

    // The canvas: origin and size from the group centres, the crop M and the stitcher's rule.
    let mut z = NpzReader::new(File::open(inf.join("reconstruction.npz")).unwrap()).unwrap();
    let object: Array2<Complex32> = z.by_name("object").unwrap();
    let amplitude: Array2<f32> = z.by_name("amplitude").unwrap();
    let origin: Array1<f64> = z.by_name("origin").unwrap();
    let m: Array0<i64> = z.by_name("stitch_crop").unwrap();
    let m = m.into_scalar() as usize;
    assert_eq!(m, InferenceConfig::default().stitch_crop);

    let centres = infer_group_centres(&test);
    assert_eq!(centres.len(), 32);
    // Every centre is the mean of 4 scan positions, so it lies within their bounding box.
    let raw = RawData::from_npz(&test).unwrap();
    let (xs, ys) = (raw.xcoords.to_vec(), raw.ycoords.to_vec());
    let bounds = |v: &[f64]| {
        let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (lo, hi)
    };
    let ((x0, x1), (y0, y1)) = (bounds(&xs), bounds(&ys));
    for c in &centres {
        assert!(
            (x0..=x1).contains(&c[0]) && (y0..=y1).contains(&c[1]),
            "group centre {c:?} outside the scan [{x0}, {x1}] × [{y0}, {y1}]"
        );
    }
    let g = centres.len() as f32;
    let com: Vec<f32> = (0..2)
        .map(|a| centres.iter().fold(0f32, |acc, c| acc + c[a] as f32) / g)
        .collect();
    let rel: Vec<[f32; 2]> = centres
        .iter()
        .map(|c| [c[0] as f32 - com[0], c[1] as f32 - com[1]])
        .collect();
    let max_abs = rel
        .iter()
        .flat_map(|a| [a[0].abs(), a[1].abs()])
        .fold(0f32, f32::max);
    let mut pad = max_abs.ceil() as usize;
    pad += pad % 2;
    let side = m + 2 * pad;
    assert_eq!(object.dim(), (side, side), "canvas size");
    assert_eq!(amplitude.dim(), (side, side));
    let half = (m / 2) as f64;
    let want = [
        com[0] as f64 - half - pad as f64,
        com[1] as f64 - half - pad as f64,
    ];
    assert_eq!(origin.to_vec(), want, "canvas origin [x, y]");

    // Coverage: each group's M×M crop, centred on its centre, lies on the canvas, and the
    // amplitude is finite and non-zero over it (the pixels fully inside the crop).
    assert!(amplitude.iter().all(|v| v.is_finite()));
    let mut near_a_crop = Array2::from_elem((side, side), false);
    for c in &centres {
        let first = |a: usize| (c[a] - want[a] - half).ceil() as i64;
        let last = |a: usize| (c[a] - want[a] + half).floor() as i64 - 1;
        let (c0, c1, r0, r1) = (first(0), last(0), first(1), last(1));
        assert!(
            c0 >= 0 && r0 >= 0 && c1 < side as i64 && r1 < side as i64,
            "crop of centre {c:?} (canvas cols {c0}..={c1}, rows {r0}..={r1}) leaves the {side}×{side} canvas"
        );
        for r in (r0 - 2).max(0)..=(r1 + 2).min(side as i64 - 1) {
            for col in (c0 - 2).max(0)..=(c1 + 2).min(side as i64 - 1) {
                near_a_crop[[r as usize, col as usize]] = true;
            }
        }
        for r in r0..=r1 {
            for col in c0..=c1 {
                let a = amplitude[[r as usize, col as usize]];
                assert!(
                    a > 0.0,
                    "amplitude {a} at canvas ({r}, {col}) inside the crop of {c:?}"
                );
            }
        }
    }
    // Pixels that no crop reaches stay 0.
    for ((r, col), a) in amplitude.indexed_iter() {
        assert!(
            near_a_crop[[r, col]] || *a == 0.0,
            "amplitude {a} at canvas ({r}, {col}), which no crop reaches"
        );
    }

    // Metrics: written by infer, reproduced by evaluate.
    let saved: Value =
        serde_json::from_slice(&std::fs::read(inf.join("metrics.json")).unwrap()).unwrap();
    let ev: Value = serde_json::from_str(&ok(&[
        "evaluate",
        "--reconstruction",
        s(&inf.join("reconstruction.npz")),
        "--ground-truth",
        s(&test),
        "--json",
    ]))
    .unwrap();
    assert_eq!(ev, saved);
    // Every amplitude number is finite. The lines object has zero phase, so the phase FRC and the
    // data-range PSNR are undefined (null); the other phase metrics are numbers.
    fn numbers(v: &Value, at: &str, out: &mut Vec<(String, Option<f64>)>) {
        match v {
            Value::Object(m) => m
                .iter()
                .for_each(|(k, x)| numbers(x, &format!("{at}.{k}"), out)),
            Value::Array(a) => a
                .iter()
                .enumerate()
                .for_each(|(i, x)| numbers(x, &format!("{at}[{i}]"), out)),
            other => out.push((at.to_string(), other.as_f64())),
        }
    }
    let mut amp = Vec::new();
    numbers(&saved["metrics"]["amplitude"], "amplitude", &mut amp);
    assert!(amp.len() > 8, "{amp:?}");
    for (at, v) in &amp {
        assert!(v.is_some_and(f64::is_finite), "metrics.json {at} = {v:?}");
    }
    for key in ["mae", "mse", "psnr_peak255", "ssim", "ms_ssim"] {
        let v = &saved["metrics"]["phase"][key];
        assert!(
            v.as_f64().is_some_and(f64::is_finite),
            "metrics.json phase.{key} = {v}"
        );
    }
}
