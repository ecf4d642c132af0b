//! The Burn forward model vs forward_model.npz (TF reference) and vs rustfft.

mod common;

use std::fs::File;

use burn::tensor::{DType, Device};
use ndarray::{Array2, Array4, Ix0, Ix2, Ix3, Ix4, s};
use ndarray_npy::NpzReader;
use num_complex::{Complex32, Complex64};
use ptycho_model::{ComplexTensor, ops, physics, poisson_nll};

fn open() -> NpzReader<File> {
    NpzReader::new(File::open(common::golden("forward_model.npz")).unwrap()).unwrap()
}

/// `(B, N, N, 1)` complex64 → a complex tensor `(B, 1, N, N)` (f32 device default).
fn complex_to_tensors(a: &Array4<Complex32>, device: &Device) -> ComplexTensor {
    let (b, n, m, _) = a.dim();
    let re: Vec<f64> = a.iter().map(|z| z.re as f64).collect();
    let im: Vec<f64> = a.iter().map(|z| z.im as f64).collect();
    ComplexTensor::new(
        ops::tensor_from(re, [b, 1, n, m], device, DType::F32),
        ops::tensor_from(im, [b, 1, n, m], device, DType::F32),
    )
}

fn f32s(a: &Array4<f32>) -> Vec<f64> {
    a.iter().map(|v| *v as f64).collect()
}

#[test]
fn diffraction_matches_reference_pad_and_diffract() {
    let mut z = open();
    let device = Device::flex();
    let f = ops::DftMats::new(64, &device, DType::F32);
    for (wave, amp) in [
        ("exit_wave_default", "diffraction_amp_default"),
        ("exit_wave_complex", "diffraction_amp_complex"),
    ] {
        let psi: Array4<Complex32> = z.by_name(wave).unwrap();
        let want: Array4<f32> = z.by_name(amp).unwrap();
        let psi = complex_to_tensors(&psi, &device);
        let got = ops::to_vec_f64(ops::far_field_amplitude(psi, &f, ops::AMP_EPS)).unwrap();
        let e = common::rel_err(&got, &f32s(&want));
        eprintln!("{amp}: max rel err {e:.2e}");
        assert!(e <= 1e-5, "{amp}: {e}");
    }
}

#[test]
fn array_far_field_uses_the_burn_op_and_matches_reference() {
    let mut z = open();
    let psi: Array4<Complex32> = z.by_name("exit_wave_complex").unwrap();
    let want: Array4<f32> = z.by_name("diffraction_amp_complex").unwrap();
    let p0 = psi
        .slice(s![0, .., .., 0])
        .mapv(|v| Complex64::new(v.re as f64, v.im as f64));
    let got = physics::far_field_amplitude(p0.view()).unwrap();
    let w0: Vec<f64> = want
        .slice(s![0, .., .., 0])
        .iter()
        .map(|v| *v as f64)
        .collect();
    let e = common::rel_err(&got.iter().copied().collect::<Vec<_>>(), &w0);
    eprintln!("array far field: max rel err {e:.2e}");
    assert!(e <= 1e-5);
}

#[test]
fn probe_normalisation_matches_reference() {
    let mut z = open();
    let probe: Array2<Complex32> = z.by_name::<_, Ix2>("probe_complex").unwrap();
    let want: ndarray::Array3<Complex32> = z
        .by_name::<_, Ix3>("probe_complex_model_normalized")
        .unwrap();
    let p = probe.mapv(|v| Complex64::new(v.re as f64, v.im as f64));
    let got = physics::normalize_probe(p.view(), 4.0);
    let g: Vec<f64> = got.iter().flat_map(|z| [z.re, z.im]).collect();
    let w: Vec<f64> = want
        .iter()
        .flat_map(|z| [z.re as f64, z.im as f64])
        .collect();
    let e = common::rel_err(&g, &w);
    eprintln!("probe normalisation: max rel err {e:.2e}");
    assert!(e <= 1e-5);
    let d = physics::disk_mask(64);
    let mean = got
        .iter()
        .zip(d.iter())
        .map(|(p, m)| p.norm() * m)
        .sum::<f64>()
        / 4096.0;
    assert!((mean - 0.25).abs() < 1e-9);
}

#[test]
fn model_prediction_and_nll_match_reference() {
    let mut z = open();
    let device = Device::flex();
    let obj: Array4<Complex32> = z.by_name::<_, Ix4>("object_patches").unwrap();
    let probe: ndarray::Array3<Complex32> = z
        .by_name::<_, Ix3>("probe_complex_model_normalized")
        .unwrap();
    let s: f64 = z
        .by_name::<ndarray::OwnedRepr<f64>, Ix0>("model_intensity_scale")
        .unwrap()[()];
    let unscaled: Array4<f32> = z.by_name("model_pred_amp_unscaled").unwrap();
    let scaled: Array4<f32> = z.by_name("model_pred_amp_scaled").unwrap();
    let obj = complex_to_tensors(&obj, &device);
    let pr: Vec<f64> = probe.iter().map(|v| v.re as f64).collect();
    let pi: Vec<f64> = probe.iter().map(|v| v.im as f64).collect();
    let pr = ops::tensor_from(pr, [1, 1, 64, 64], &device, DType::F32);
    let pi = ops::tensor_from(pi, [1, 1, 64, 64], &device, DType::F32);
    let psi = ops::illuminate(obj, ComplexTensor::new(pr, pi), 0.0, None);
    let f = ops::DftMats::new(64, &device, DType::F32);
    let amp = ops::far_field_amplitude(psi, &f, ops::AMP_EPS);
    let e1 = common::rel_err(&ops::to_vec_f64(amp.clone()).unwrap(), &f32s(&unscaled));
    let e2 = common::rel_err(&ops::to_vec_f64(amp * s).unwrap(), &f32s(&scaled));
    eprintln!("model pred amp: unscaled {e1:.2e}, scaled {e2:.2e}");
    assert!(e1 <= 1e-5 && e2 <= 1e-5);

    let y_true: Array4<f32> = z.by_name("nll_y_true").unwrap();
    let y_pred: Array4<f32> = z.by_name("nll_y_pred").unwrap();
    let nll_mean: f64 = z
        .by_name::<ndarray::OwnedRepr<f64>, Ix0>("nll_mean")
        .unwrap()[()];
    let elem: Array4<f32> = z.by_name("nll_elementwise").unwrap();
    let sh = [8, 1, 64, 64];
    let amp_t: Vec<f64> = y_true.iter().map(|v| (*v as f64).sqrt()).collect();
    // Element-wise in f32 (λ − y ln λ): the terms the mean is taken over.
    let lam = ops::tensor_from(f32s(&y_pred), sh, &device, DType::F32);
    let tgt = ops::tensor_from(amp_t.clone(), sh, &device, DType::F32);
    let y = tgt.powi_scalar(2);
    let el = lam.clone() - y * lam.log();
    let e = common::rel_err(&ops::to_vec_f64(el).unwrap(), &f32s(&elem));
    eprintln!("nll element-wise (f32) rel err {e:.2e}");
    assert!(e <= 1e-5);
    // The mean: in f64 (the f32 sum of 32768 terms of mixed sign loses ~3e-5).
    let lam = ops::tensor_from(f32s(&y_pred), sh, &device, DType::F64);
    let tgt = ops::tensor_from(amp_t, sh, &device, DType::F64);
    let got = ops::to_vec_f64(poisson_nll(lam, tgt)).unwrap()[0];
    let e = ((got - nll_mean) / nll_mean).abs();
    eprintln!("nll mean (f64): got {got}, reference {nll_mean}, rel {e:.2e}");
    assert!(e <= 1e-5);
}

#[test]
fn far_field_matches_rustfft() {
    use rustfft::FftPlanner;
    for n in [16usize, 64] {
        let psi = Array2::from_shape_fn((n, n), |(i, j)| {
            let x = i as f64 * 0.37 + j as f64 * 0.11;
            Complex64::new(x.sin() + 0.2, (1.3 * x).cos() * 0.5)
        });
        // Reference: 2-D FFT by rows then columns, fftshift, |·|/N.
        let mut planner = FftPlanner::<f64>::new();
        let fft = planner.plan_fft_forward(n);
        let mut a = psi.clone();
        for mut row in a.rows_mut() {
            let mut v: Vec<Complex64> = row.to_vec();
            fft.process(&mut v);
            row.assign(&ndarray::Array1::from(v));
        }
        for mut col in a.columns_mut() {
            let mut v: Vec<Complex64> = col.to_vec();
            fft.process(&mut v);
            col.assign(&ndarray::Array1::from(v));
        }
        let want: Vec<f64> = (0..n * n)
            .map(|k| {
                let (i, j) = (k / n, k % n);
                a[[(i + n / 2) % n, (j + n / 2) % n]].norm() / n as f64
            })
            .collect();
        let got: Vec<f64> = physics::far_field_amplitude(psi.view())
            .unwrap()
            .iter()
            .copied()
            .collect();
        let e = common::rel_err(&got, &want);
        eprintln!("N={n}: far field vs rustfft (f64) rel err {e:.2e}");
        assert!(e <= 1e-10);
        // f32 model path
        let device = Device::flex();
        let re = ops::tensor_from(
            psi.iter().map(|z| z.re).collect(),
            [1, 1, n, n],
            &device,
            DType::F32,
        );
        let im = ops::tensor_from(
            psi.iter().map(|z| z.im).collect(),
            [1, 1, n, n],
            &device,
            DType::F32,
        );
        let f = ops::DftMats::new(n, &device, DType::F32);
        let psi = ComplexTensor::new(re, im);
        let g32 = ops::to_vec_f64(ops::far_field_amplitude(psi, &f, ops::AMP_EPS)).unwrap();
        let e32 = common::rel_err(&g32, &want);
        eprintln!("N={n}: far field vs rustfft (f32) rel err {e32:.2e}");
        assert!(e32 <= 1e-5);
    }
}
