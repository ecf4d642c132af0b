//! End-to-end `ptycho train` with the real-space loss (`--realspace-weight`, `--tv-weight`,
//! `--realspace-mae-weight`) and with a detector bad-pixel mask (NPZ key `bad_pixels`, as
//! Ptychodus' training export writes it).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ndarray::Array2;
use ptycho_config::SimulationConfig;
use ptycho_e2e::ptycho_bin;
use ptycho_workflows::{RawData, simulate_lines};

/// 40 simulated patterns (N = 64) with `objectGuess` (the ground truth).
fn simulated(seed: u64) -> RawData {
    simulate_lines(
        &SimulationConfig {
            n_images: 40,
            seed,
            ..Default::default()
        }
        .validate()
        .unwrap(),
    )
    .unwrap()
}

fn write(raw: &RawData, dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    raw.write_npz(&path).unwrap();
    path
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// `ptycho train` of a tiny model for one epoch on `data` into `out`, plus `extra` flags.
fn train(data: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args: Vec<String> = vec![
        "train".into(),
        "--train-data".into(),
        s(data),
        "--output-dir".into(),
        s(out),
    ];
    args.extend(
        [
            "--seed",
            "42",
            "--n-filters-scale",
            "1",
            "--n_groups",
            "32",
            "--batch_size",
            "16",
            "--nepochs",
            "1",
            "--quiet",
        ]
        .iter()
        .chain(extra)
        .map(|a| a.to_string()),
    );
    Command::new(ptycho_bin()).args(&args).output().unwrap()
}

fn ok(out: &Output) {
    assert!(
        out.status.success(),
        "ptycho train failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Columns of the last line of `DIR/history.csv`, by header name.
fn last_epoch(dir: &Path) -> Vec<(String, String)> {
    let csv = std::fs::read_to_string(dir.join("history.csv")).unwrap();
    let mut lines = csv.lines();
    let header: Vec<String> = lines
        .next()
        .unwrap()
        .split(',')
        .map(str::to_string)
        .collect();
    let last: Vec<String> = lines
        .last()
        .unwrap()
        .split(',')
        .map(str::to_string)
        .collect();
    assert_eq!(header.len(), last.len(), "{csv}");
    header.into_iter().zip(last).collect()
}

fn col(row: &[(String, String)], name: &str) -> f64 {
    row.iter()
        .find(|(k, _)| k == name)
        .unwrap_or_else(|| panic!("no column {name} in {row:?}"))
        .1
        .parse()
        .unwrap()
}

#[test]
fn realspace_and_tv_weights_train_with_finite_losses() {
    let dir = tempfile::tempdir().unwrap();
    let data = write(&simulated(3), dir.path(), "train.npz");

    // TV only (needs no ground truth), with the reference's flag spellings.
    let out_tv = dir.path().join("tv");
    ok(&train(
        &data,
        &out_tv,
        &["--realspace_weight", "1", "--tv_weight", "0.1"],
    ));
    let row = last_epoch(&out_tv);
    let (loss, nll, rs) = (col(&row, "loss"), col(&row, "nll"), col(&row, "realspace"));
    assert!(loss.is_finite() && nll.is_finite(), "{row:?}");
    assert!(
        rs.is_finite() && rs > 0.0,
        "TV of the predicted object: {row:?}"
    );
    // loss = nll_weight·nll + realspace_weight·realspace (epoch means of per-batch values).
    assert!(
        (loss - (nll + rs)).abs() <= 1e-6 * loss.abs().max(1.0),
        "{row:?}"
    );
    assert!(out_tv.join("wts.h5.zip").is_file());

    // TV and the amplitude MAE against the ground truth cut from objectGuess.
    let out_mae = dir.path().join("mae");
    ok(&train(
        &data,
        &out_mae,
        &[
            "--realspace-weight",
            "1",
            "--tv-weight",
            "0.1",
            "--realspace-mae-weight",
            "1",
        ],
    ));
    let row = last_epoch(&out_mae);
    let rs_mae = col(&row, "realspace");
    assert!(rs_mae.is_finite(), "{row:?}");
    assert_ne!(rs_mae, rs, "the MAE term adds to L_rs");

    // The default run has no realspace column (history.csv as before).
    let out_plain = dir.path().join("plain");
    ok(&train(&data, &out_plain, &[]));
    let csv = std::fs::read_to_string(out_plain.join("history.csv")).unwrap();
    assert!(
        csv.starts_with("epoch,loss,nll,mae,val_loss,lr,seconds,samples_per_s\n"),
        "{csv}"
    );
}

#[test]
fn realspace_mae_without_ground_truth_is_a_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut raw = simulated(4);
    raw.object_guess = None;
    raw.y = None;
    let data = write(&raw, dir.path(), "no_truth.npz");
    let out_dir = dir.path().join("out");
    let out = train(
        &data,
        &out_dir,
        &["--realspace-weight", "1", "--realspace-mae-weight", "0.5"],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.starts_with("error:") && !err.contains("panicked"),
        "{err}"
    );
    assert!(
        err.contains("realspace_mae_weight = 0.5") && err.contains("objectGuess"),
        "{err}"
    );
    assert!(!out_dir.exists(), "nothing written on bad input");

    // TV alone needs no ground truth: the same file trains.
    ok(&train(
        &data,
        &out_dir,
        &["--realspace-weight", "1", "--tv-weight", "0.01"],
    ));

    // The reference's rule: an inner weight without the outer one is refused by name.
    let out = train(&data, &dir.path().join("x"), &["--tv-weight", "0.1"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("tv_weight") && err.contains("realspace_weight"),
        "{err}"
    );
}

#[test]
fn bad_pixels_take_no_part_in_the_loss() {
    let dir = tempfile::tempdir().unwrap();
    let raw = simulated(5);
    let n = raw.n();
    let mut mask = Array2::from_elem((n, n), false);
    // A bright pixel near the centre (the zero frequency at N/2) and a column of a detector gap.
    mask[[n / 2, n / 2 + 1]] = true;
    for r in 0..n {
        mask[[r, 5]] = true;
    }
    let masked = RawData {
        bad_pixels: Some(mask.clone()),
        ..raw.clone()
    };
    let a = write(&masked, dir.path(), "a.npz");
    // The same data with other values at the bad pixels (a hot pixel, saturated counts).
    let mut hot = masked.clone();
    for mut frame in hot.diff3d.outer_iter_mut() {
        frame[[n / 2, n / 2 + 1]] = 5e3;
        for r in 0..n {
            frame[[r, 5]] = 77.0;
        }
    }
    let b = write(&hot, dir.path(), "b.npz");
    let plain = write(&raw, dir.path(), "plain.npz");

    let (out_a, out_b, out_p) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("p"),
    );
    ok(&train(&a, &out_a, &[]));
    ok(&train(&b, &out_b, &[]));
    ok(&train(&plain, &out_p, &[]));
    let (ra, rb, rp) = (last_epoch(&out_a), last_epoch(&out_b), last_epoch(&out_p));
    for name in ["loss", "nll", "val_loss"] {
        assert!(col(&ra, name).is_finite(), "{ra:?}");
        // Bit-identical: the values at bad pixels reach neither the input nor the loss.
        assert_eq!(col(&ra, name), col(&rb, name), "{name}: {ra:?} vs {rb:?}");
    }
    // The mask does change the run (the loss is a mean over the good pixels only).
    assert_ne!(col(&ra, "loss"), col(&rp, "loss"));
}
