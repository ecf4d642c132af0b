//! Array-level physics shared by simulation, the data layer, stitching and the Burn model.
//!
//! Conventions (spec §0.3): images are indexed `[row, col]`; a translation `t = (tx, ty)` moves the
//! content by `+t` (towards larger column / row indices) with bilinear interpolation in which each
//! corner sample outside the image contributes 0. The far-field amplitude is `|DFT2 ψ| / N` with
//! the zero frequency at index `N/2` (fftshifted).

use ndarray::{Array2, ArrayView2, Axis};
use num_complex::Complex64;

use crate::complex::ComplexTensor;
use crate::error::ModelError;

/// Interpolation matrix of a 1-D bilinear shift by `t` pixels: `out = R · in` with `R` of shape
/// `(n_out, n_in)`, `out[i] = (1−w)·in[⌊i−t⌋] + w·in[⌊i−t⌋+1]`, `w = (i−t) − ⌊i−t⌋`; taps outside
/// `[0, n_in)` contribute 0. The 2-D translation is separable: `T(img, t) = R(ty) · img · R(tx)ᵀ`.
pub fn shift_matrix(n_out: usize, n_in: usize, t: f64) -> Array2<f64> {
    let mut r = Array2::<f64>::zeros((n_out, n_in));
    for i in 0..n_out {
        let s = i as f64 - t;
        let j0 = s.floor();
        let w = s - j0;
        let j0 = j0 as i64;
        if j0 >= 0 && (j0 as usize) < n_in {
            r[[i, j0 as usize]] += 1.0 - w;
        }
        let j1 = j0 + 1;
        if j1 >= 0 && (j1 as usize) < n_in {
            r[[i, j1 as usize]] += w;
        }
    }
    r
}

/// Translate a complex image by `(tx, ty)` pixels (content moves by `+t`), same output size.
pub fn translate(img: ArrayView2<Complex64>, tx: f64, ty: f64) -> Array2<Complex64> {
    let (h, w) = img.dim();
    let ry = shift_matrix(h, h, ty).mapv(|v| Complex64::new(v, 0.0));
    let rx = shift_matrix(w, w, tx).mapv(|v| Complex64::new(v, 0.0));
    ry.dot(&img).dot(&rx.t())
}

/// Far-field amplitude `|fftshift(DFT2 ψ)| / N` of one N×N exit wave (amplitude, not intensity).
///
/// Runs the model's Burn op [`crate::ops::far_field_amplitude`] on the flex CPU device in float64,
/// so the forward model exists once. Errors when the result cannot be read back.
pub fn far_field_amplitude(psi: ArrayView2<Complex64>) -> Result<Array2<f64>, ModelError> {
    use crate::ops::{DftMats, read_back, tensor_from};
    use burn::tensor::{DType, Device};
    let (h, w) = psi.dim();
    let device = Device::flex();
    let re: Vec<f64> = psi.iter().map(|z| z.re).collect();
    let im: Vec<f64> = psi.iter().map(|z| z.im).collect();
    let psi = ComplexTensor::new(
        tensor_from(re, [1, 1, h, w], &device, DType::F64),
        tensor_from(im, [1, 1, h, w], &device, DType::F64),
    );
    let f = DftMats::new(h, &device, DType::F64);
    let amp = crate::ops::far_field_amplitude(psi, &f, 0.0);
    let v = read_back(amp, "far-field amplitude")?;
    let got = v.len();
    Array2::from_shape_vec((h, w), v).map_err(|_| ModelError::Shape {
        what: "far-field amplitude",
        got: vec![got],
        expected: format!("{} values ({h}, {w})", h * w),
    })
}

/// Probe normalisation of the model (spec §4.7):
/// `P_n = probe / (probe_scale · mean_{all N² pixels} |D ⊙ probe|)` with the N/4 disk `D` of
/// [`disk_mask`]; afterwards `mean|D ⊙ P_n| = 1/probe_scale`. Complex amplitude in, same out.
pub fn normalize_probe(probe: ArrayView2<Complex64>, probe_scale: f64) -> Array2<Complex64> {
    let n = probe.nrows();
    let d = disk_mask(n);
    let mean = probe
        .iter()
        .zip(d.iter())
        .map(|(p, m)| p.norm() * m)
        .sum::<f64>()
        / probe.len() as f64;
    let k = probe_scale * mean;
    if k > 0.0 && k.is_finite() {
        probe.mapv(|p| p / k)
    } else {
        probe.to_owned()
    }
}

/// Disk mask D of the probe normalisation: `D[i,j] = 1` iff
/// `sqrt((i − N/2 + 0.5)² + (j − N/2 + 0.5)²) < ⌊N/4⌋` (812 pixels for N = 64).
pub fn disk_mask(n: usize) -> Array2<f64> {
    let r = (n / 4) as f64;
    let c = n as f64 / 2.0 - 0.5;
    Array2::from_shape_fn((n, n), |(i, j)| {
        let d = ((i as f64 - c).powi(2) + (j as f64 - c).powi(2)).sqrt();
        if d < r { 1.0 } else { 0.0 }
    })
}

/// 1-D Gaussian smoothing along both axes of a real image, like `scipy.ndimage.gaussian_filter`
/// with its defaults (`mode='reflect'`, i.e. half-sample symmetric `d c b a | a b c d | d c b a`,
/// `truncate=4.0`). `sigma` in pixels; `sigma = 0` returns a copy.
pub fn gaussian_filter(img: ArrayView2<f64>, sigma: f64) -> Array2<f64> {
    if sigma <= 0.0 {
        return img.to_owned();
    }
    let radius = (4.0 * sigma + 0.5) as i64;
    let mut w: Vec<f64> = (-radius..=radius)
        .map(|x| (-0.5 * (x as f64 / sigma).powi(2)).exp())
        .collect();
    let total: f64 = w.iter().sum();
    w.iter_mut().for_each(|v| *v /= total);
    let rows = smooth_axis(img, &w, radius, Axis(0));
    smooth_axis(rows.view(), &w, radius, Axis(1))
}

/// The reference default probe (spec §8.3), real and non-negative, `(n, n)`: a symmetric 1-D
/// Gaussian window (std = `n / (default_probe_scale · π²)`, centre `(n−1)/2`, max 1), its outer
/// product thresholded at `> 0.5` to a binary disk, smoothed by [`gaussian_filter`] with σ = 1 px,
/// plus 1e-9. For `n = 64`, scale 0.7: 376 pixels > 0.5, max 1.0. Amplitude units (max 1).
pub fn default_probe(n: usize, default_probe_scale: f64) -> Array2<Complex64> {
    let std = n as f64 / (default_probe_scale * std::f64::consts::PI.powi(2));
    let c = (n as f64 - 1.0) / 2.0;
    let w: Vec<f64> = (0..n)
        .map(|k| (-0.5 * ((k as f64 - c) / std).powi(2)).exp())
        .collect();
    let wmax = w.iter().cloned().fold(0.0_f64, f64::max);
    let w: Vec<f64> = w.iter().map(|v| v / wmax).collect();
    let disk = Array2::from_shape_fn((n, n), |(i, j)| if w[i] * w[j] > 0.5 { 1.0 } else { 0.0 });
    gaussian_filter(disk.view(), 1.0).mapv(|v| Complex64::new(v + 1e-9, 0.0))
}

fn reflect_index(i: i64, n: i64) -> usize {
    // Half-sample symmetric reflection, periodic with period 2n.
    let period = 2 * n;
    let mut k = i.rem_euclid(period);
    if k >= n {
        k = period - 1 - k;
    }
    k as usize
}

fn smooth_axis(img: ArrayView2<f64>, w: &[f64], radius: i64, axis: Axis) -> Array2<f64> {
    let mut out = Array2::<f64>::zeros(img.dim());
    let n = img.len_of(axis) as i64;
    for (lane_in, mut lane_out) in img.lanes(axis).into_iter().zip(out.lanes_mut(axis)) {
        for i in 0..n {
            let mut acc = 0.0;
            for (k, wk) in w.iter().enumerate() {
                acc += wk * lane_in[reflect_index(i + k as i64 - radius, n)];
            }
            lane_out[i as usize] = acc;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_mask_has_reference_pixel_count() {
        assert_eq!(disk_mask(64).sum() as usize, 812);
        assert_eq!(disk_mask(128).sum() as usize, 3228);
    }

    #[test]
    fn translate_moves_content_by_plus_t() {
        let mut img = Array2::<Complex64>::zeros((16, 16));
        img[[4, 8]] = Complex64::new(1.0, 0.0);
        let out = translate(img.view(), 3.0, 0.0);
        assert!((out[[4, 11]].re - 1.0).abs() < 1e-12);
        let half = translate(img.view(), 0.5, 0.0);
        assert!((half[[4, 8]].re - 0.5).abs() < 1e-12);
        assert!((half[[4, 9]].re - 0.5).abs() < 1e-12);
    }

    #[test]
    fn gaussian_filter_preserves_sum_and_constants() {
        let c = Array2::from_elem((9, 7), 2.5);
        let f = gaussian_filter(c.view(), 1.5);
        assert!(f.iter().all(|v| (v - 2.5).abs() < 1e-12));
        let mut d = Array2::<f64>::zeros((21, 21));
        d[[10, 10]] = 1.0;
        let g = gaussian_filter(d.view(), 1.0);
        assert!((g.sum() - 1.0).abs() < 1e-12);
        assert!(g[[10, 10]] > g[[10, 11]] && g[[10, 11]] > g[[10, 12]]);
    }

    #[test]
    fn default_probe_has_reference_footprint() {
        let p = default_probe(64, 0.7);
        assert_eq!(p.iter().filter(|z| z.re > 0.5).count(), 376);
        let max = p.iter().map(|z| z.re).fold(0.0, f64::max);
        assert!((max - 1.0).abs() < 1e-6);
        assert!(p.iter().all(|z| z.im == 0.0 && z.re >= 1e-9));
        let p128 = default_probe(128, 0.7);
        assert_eq!(p128.iter().filter(|z| z.re > 0.5).count(), 1500);
    }

    #[test]
    fn far_field_of_constant_is_centred_delta() {
        let n = 8;
        let psi = Array2::from_elem((n, n), Complex64::new(1.0, 0.0));
        let a = far_field_amplitude(psi.view()).unwrap();
        assert!((a[[n / 2, n / 2]] - n as f64).abs() < 1e-9);
        assert!((a.sum() - n as f64).abs() < 1e-9);
    }
}
