//! The reconstruction quality suite's short mode as a regression guard (issue #19): `ptycho bench
//! --quality --json` through the real binary simulates the complex object with the complex probe,
//! trains gridsize 1 and 2 (seed 1, 256 groups, 3 epochs, batch 4, N = 64 at filter scale 1),
//! reconstructs a held-out scan and scores it. The floors are loose: well below what the short
//! mode gives, above what a network that learned nothing gives.
//!
//! Measured on the 2-core machine (dev profile, 2026-12-02; seed 1), trained / untrained
//! (`--untrained`: the seeded initial network, no training step — what a training that learns
//! nothing, or a broken one, leaves):
//!
//! | gs | amp SSIM | amp PSNR | amp FRC50 | phase SSIM | phase PSNR | phase FRC50 |
//! |---|---|---|---|---|---|---|
//! | 1 | 0.202 / 0.208 | 65.60 / 65.64 | 0.69 / 0.72 | **0.760 / 0.692** | 59.97 / 59.44 | **0.88 / 0.61** |
//! | 2 | 0.162 / 0.188 | 59.31 / 59.32 | 0.82 / 0.81 | 0.694 / 0.690 | 59.16 / 59.36 | 0.56 / 0.56 |
//!
//! At this budget (192 Adam steps) only gridsize 1's phase has learned: its SSIM and FRC50 floors
//! (0.72, 0.72) lie between the trained and the untrained values, and the test checks that the
//! untrained network fails them. The other floors are pipeline floors — simulation, training,
//! grouping, stitching and evaluation working at all (a canvas with holes, patches stitched in the
//! wrong place, a flipped or NaN object fall below them) — set well below both: amplitude SSIM
//! 0.10, PSNR 55 (amplitude and phase), phase SSIM 0.60, coverage 95 %.

use ptycho_e2e::{Out, ptycho};
use serde_json::Value;

fn quality(extra: &[&str]) -> Value {
    let mut args = vec!["bench", "--quality", "--json", "--quiet"];
    args.extend_from_slice(extra);
    let Out {
        code,
        stdout,
        stderr,
    } = ptycho(&args);
    assert_eq!(code, 0, "ptycho {args:?} failed: {stderr}");
    assert_eq!(stderr, "", "--quiet");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

fn num(v: &Value, path: &[&str]) -> f64 {
    let mut x = v;
    for k in path {
        x = &x[*k];
    }
    x.as_f64()
        .unwrap_or_else(|| panic!("{path:?} is not a number: {v}"))
}

#[test]
fn short_quality_suite_clears_its_floors() {
    let r = quality(&[]);
    assert_eq!(r["settings"]["mode"], "short");
    let rows = r["rows"].as_array().expect("rows");
    let configs: Vec<(String, u64, u64)> = rows
        .iter()
        .map(|row| {
            (
                row["object"].as_str().unwrap().to_string(),
                row["gridsize"].as_u64().unwrap(),
                row["seed"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        configs,
        [("complex".into(), 1, 1), ("complex".into(), 2, 1)],
        "one row per gridsize"
    );
    for row in rows {
        let gs = row["gridsize"].as_u64().unwrap();
        let at = |path: &[&str]| num(row, path);
        eprintln!(
            "gs{gs}: amplitude SSIM {:.4} PSNR {:.2} FRC50 {}; phase SSIM {:.4} PSNR {:.2} FRC50 {}; coverage {:.4}",
            at(&["amplitude", "ssim"]),
            at(&["amplitude", "psnr"]),
            row["amplitude"]["frc50"],
            at(&["phase", "ssim"]),
            at(&["phase", "psnr"]),
            row["phase"]["frc50"],
            at(&["scan_coverage"])
        );
        assert_eq!(row["epochs"], 3, "gs{gs}: the short budget ran");
        assert!(at(&["final_loss"]).is_finite(), "gs{gs}");
        for (path, floor) in PIPELINE_FLOORS {
            let v = at(path);
            assert!(
                v >= *floor,
                "gs{gs}: {path:?} = {v:.4} below its floor {floor}"
            );
        }
        if gs == 1 {
            let missed = learned_phase(row);
            assert!(
                missed.is_empty(),
                "gs1: phase not learned: {}",
                missed.join(", ")
            );
        }
    }

    // The learned floors discriminate: the untrained network fails them.
    let untrained = quality(&["--untrained", "--gridsizes", "1"]);
    let row = &untrained["rows"][0];
    assert_eq!(row["epochs"], 0);
    let missed = learned_phase(row);
    assert_eq!(
        missed.len(),
        2,
        "the untrained network clears a learned floor: {missed:?}"
    );
}

/// Floors every configuration of the short mode clears (see the module documentation).
const PIPELINE_FLOORS: &[(&[&str], f64)] = &[
    (&["amplitude", "ssim"], 0.10),
    (&["amplitude", "psnr"], 55.0),
    (&["phase", "ssim"], 0.60),
    (&["phase", "psnr"], 55.0),
    (&["scan_coverage"], 0.95),
];

/// Gridsize 1's learned floors: phase SSIM ≥ 0.72 and phase FRC50 ≥ 0.72. Returns the floors
/// missed, described (empty: both cleared).
fn learned_phase(row: &Value) -> Vec<String> {
    let mut missed = Vec::new();
    let ssim = num(row, &["phase", "ssim"]);
    if ssim < 0.72 {
        missed.push(format!("phase SSIM {ssim:.4} < 0.72"));
    }
    match row["phase"]["frc50"].as_f64() {
        Some(f) if f >= 0.72 => {}
        f => missed.push(format!("phase FRC50 {f:?} < 0.72")),
    }
    missed
}
