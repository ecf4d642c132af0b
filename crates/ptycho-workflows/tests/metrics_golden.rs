//! Parity of `metrics::eval_reconstruction` with the reference `evaluation.eval_reconstruction`
//! goldens (metrics.npz, see metrics.json): every number in the file, 'plane' and 'mean' phase
//! alignment.
//!
//! Tolerances (relative): MAE, MSE, PSNR 1e-5; SSIM, MS-SSIM, FRC50, FRC@1/7 and the FRC curves
//! 1e-4 (the curves absolute). `frc_direct_curve` (an FRC of the same amplitudes computed by the
//! golden script through another float32 FFT path) differs from `frc_curve_amp` by up to 1.5e-4
//! in the outer corner rings, so it is compared at 5e-4 absolute.

use std::fs::File;

use ndarray::{Array0, Array1, Array2};
use ndarray_npy::NpzReader;
use num_complex::Complex32;
use ptycho_workflows::metrics::{
    ComponentMetrics, EvalOptions, PhaseAlign, eval_reconstruction, fit_and_remove_plane,
};

mod common;

fn open() -> NpzReader<File> {
    NpzReader::new(File::open(common::golden("metrics.npz")).unwrap()).unwrap()
}

fn scalar(npz: &mut NpzReader<File>, name: &str) -> f64 {
    let a: Array0<f64> = npz.by_name(name).unwrap();
    a.into_scalar()
}

fn check(name: &str, ours: f64, golden: f64, rel_tol: f64) {
    let rel = (ours - golden).abs() / golden.abs();
    eprintln!("{name:>28}: ours {ours:.10} golden {golden:.10} rel {rel:.2e}");
    assert!(
        rel <= rel_tol,
        "{name}: ours {ours} golden {golden} rel {rel:e} > {rel_tol:e}"
    );
}

fn check_component(
    npz: &mut NpzReader<File>,
    prefix: &str,
    suffix: &str,
    c: &ComponentMetrics,
    frc1over7: bool,
) {
    let key = |m: &str| format!("{prefix}{m}_{suffix}");
    check(&key("mae"), c.mae, scalar(npz, &key("mae")), 1e-5);
    check(&key("mse"), c.mse, scalar(npz, &key("mse")), 1e-5);
    check(
        &key("psnr"),
        c.psnr_peak255,
        scalar(npz, &key("psnr")),
        1e-5,
    );
    check(&key("ssim"), c.ssim, scalar(npz, &key("ssim")), 1e-4);
    check(
        &key("ms_ssim"),
        c.ms_ssim,
        scalar(npz, &key("ms_ssim")),
        1e-4,
    );
    check(
        &key("frc50"),
        c.frc50.unwrap(),
        scalar(npz, &key("frc50")),
        1e-4,
    );
    if frc1over7 {
        check(
            &key("frc1over7"),
            c.frc1over7.unwrap(),
            scalar(npz, &key("frc1over7")),
            1e-4,
        );
    }
}

fn max_abs_diff(a: &[f64], b: &Array1<f64>) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b.iter())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

fn inputs(npz: &mut NpzReader<File>) -> (Array2<Complex32>, Array2<Complex32>) {
    (npz.by_name("pred").unwrap(), npz.by_name("gt").unwrap())
}

#[test]
fn plane_alignment_matches_reference() {
    let mut npz = open();
    let (pred, gt) = inputs(&mut npz);
    let m = eval_reconstruction(pred.view(), gt.view(), &EvalOptions::default()).unwrap();
    assert_eq!(m.shape, [124, 124]);
    check_component(&mut npz, "", "amp", &m.amplitude, true);
    check_component(&mut npz, "", "phase", &m.phase, true);
    for (comp, c) in [("amp", &m.amplitude), ("phase", &m.phase)] {
        let golden: Array1<f64> = npz.by_name(&format!("frc_curve_{comp}")).unwrap();
        let d = max_abs_diff(c.frc_curve.as_ref().unwrap(), &golden);
        if std::env::var_os("PTYCHO_DEBUG_FRC").is_some() {
            for (i, (a, b)) in c
                .frc_curve
                .as_ref()
                .unwrap()
                .iter()
                .zip(golden.iter())
                .enumerate()
            {
                eprintln!("{comp} ring {i}: {a:.8} {b:.8} {:.2e}", a - b);
            }
        }
        eprintln!("{:>28}: max abs diff {d:.2e}", format!("frc_curve_{comp}"));
        assert!(d < 1e-4, "frc_curve_{comp}: {d}");
    }
    let direct: Array1<f64> = npz.by_name("frc_direct_curve").unwrap();
    let d = max_abs_diff(m.amplitude.frc_curve.as_ref().unwrap(), &direct);
    eprintln!("{:>28}: max abs diff {d:.2e}", "frc_direct_curve");
    assert!(d < 5e-4, "frc_direct_curve: {d}");
    // The data-range PSNR sits beside the peak-255 one and is much smaller.
    assert!(m.amplitude.psnr_data_range.unwrap() < m.amplitude.psnr_peak255);
}

#[test]
fn mean_alignment_matches_reference() {
    let mut npz = open();
    let (pred, gt) = inputs(&mut npz);
    let opts = EvalOptions {
        phase_align: PhaseAlign::Mean,
        ..EvalOptions::default()
    };
    let m = eval_reconstruction(pred.view(), gt.view(), &opts).unwrap();
    check_component(&mut npz, "meanalign_", "amp", &m.amplitude, false);
    check_component(&mut npz, "meanalign_", "phase", &m.phase, false);
}

#[test]
fn plane_removal_matches_reference() {
    let mut npz = open();
    let input: Array2<f32> = npz.by_name("fit_and_remove_plane_in").unwrap();
    let golden: Array2<f64> = npz.by_name("fit_and_remove_plane_out").unwrap();
    let out = fit_and_remove_plane(input.mapv(f64::from).view());
    let d = (&out - &golden).iter().fold(0.0f64, |m, v| m.max(v.abs()));
    eprintln!("fit_and_remove_plane: max abs diff {d:.2e}");
    assert!(d < 1e-9, "{d}");
}
