//! Structural similarity: single-scale SSIM as `skimage.metrics.structural_similarity` with its
//! defaults, and the reference's custom multi-scale variant (spec §10.2).

use ndarray::{Array2, ArrayView2, s};

use crate::error::WorkflowError;

/// Side of the uniform SSIM window (skimage default).
pub const SSIM_WINDOW: usize = 7;
const K1: f64 = 0.01;
const K2: f64 = 0.03;
/// Weights of the five MS-SSIM levels.
pub const MS_SSIM_WEIGHTS: [f64; 5] = [0.0448, 0.2856, 0.3001, 0.2363, 0.1333];

/// Mean SSIM of two equally shaped images (skimage defaults: 7×7 uniform window, K1 = 0.01,
/// K2 = 0.03, sample covariance `N/(N−1)`, `C1 = (K1·R)²`, `C2 = (K2·R)²`), averaged over the image
/// without its `(7−1)/2 = 3`-pixel border. `data_range` is `R` (same units as the images).
pub fn ssim(a: ArrayView2<f64>, b: ArrayView2<f64>, data_range: f64) -> Result<f64, WorkflowError> {
    if a.dim() != b.dim() {
        return Err(WorkflowError::ShapeMismatch {
            recon: [b.nrows(), b.ncols()],
            gt: [a.nrows(), a.ncols()],
        });
    }
    let (h, w) = a.dim();
    if h < SSIM_WINDOW || w < SSIM_WINDOW {
        return Err(WorkflowError::TooSmallForSsim { shape: [h, w] });
    }
    let np = (SSIM_WINDOW * SSIM_WINDOW) as f64;
    let cov_norm = np / (np - 1.0);
    let c1 = (K1 * data_range).powi(2);
    let c2 = (K2 * data_range).powi(2);
    let ux = window_means(a);
    let uy = window_means(b);
    let uxx = window_means((&a * &a).view());
    let uyy = window_means((&b * &b).view());
    let uxy = window_means((&a * &b).view());
    let mut total = 0.0;
    for (((&ux, &uy), (&uxx, &uyy)), &uxy) in ux
        .iter()
        .zip(uy.iter())
        .zip(uxx.iter().zip(uyy.iter()))
        .zip(uxy.iter())
    {
        let vx = cov_norm * (uxx - ux * ux);
        let vy = cov_norm * (uyy - uy * uy);
        let vxy = cov_norm * (uxy - ux * uy);
        let num = (2.0 * ux * uy + c1) * (2.0 * vxy + c2);
        let den = (ux * ux + uy * uy + c1) * (vx + vy + c2);
        total += num / den;
    }
    Ok(total / ux.len() as f64)
}

/// Means over every full 7×7 window: output `(h−6)×(w−6)`, element `(i, j)` is the window centred
/// on input pixel `(i+3, j+3)` (the pixels skimage keeps after cropping its filtered maps).
fn window_means(img: ArrayView2<f64>) -> Array2<f64> {
    let k = SSIM_WINDOW;
    let (h, w) = img.dim();
    let mut rows = Array2::<f64>::zeros((h, w - k + 1));
    for r in 0..h {
        let line = img.row(r);
        for j in 0..w - k + 1 {
            rows[[r, j]] = line.slice(s![j..j + k]).sum();
        }
    }
    let mut out = Array2::<f64>::zeros((h - k + 1, w - k + 1));
    let norm = (k * k) as f64;
    for i in 0..h - k + 1 {
        for j in 0..w - k + 1 {
            out[[i, j]] = rows.slice(s![i..i + k, j]).sum() / norm;
        }
    }
    out
}

/// The reference's multi-scale SSIM (`evaluation.ms_ssim`): optional Gaussian blur (`sigma` pixels,
/// 0 = none) of both images, `data_range = max(range(a), range(b))` fixed at level 0, then for up
/// to five levels multiply in `SSIM^weight` (NaN → return 0, negative → 1e-4), decimating by
/// `[::2, ::2]` between levels and stopping once the smaller side drops below 7.
pub fn ms_ssim(a: ArrayView2<f64>, b: ArrayView2<f64>, sigma: f64) -> Result<f64, WorkflowError> {
    let (mut x, mut y) = if sigma > 0.0 {
        (
            ptycho_model::physics::gaussian_filter(a, sigma),
            ptycho_model::physics::gaussian_filter(b, sigma),
        )
    } else {
        (a.to_owned(), b.to_owned())
    };
    let range = |m: &Array2<f64>| {
        let (lo, hi) = m
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
                (lo.min(v), hi.max(v))
            });
        hi - lo
    };
    let data_range = range(&x).max(range(&y));
    let mut value = 1.0f64;
    for (level, weight) in MS_SSIM_WEIGHTS.iter().enumerate() {
        let mut s = ssim(x.view(), y.view(), data_range)?;
        if s.is_nan() {
            return Ok(0.0);
        }
        if s < 0.0 {
            s = 1e-4;
        }
        value *= s.powf(*weight);
        if value.is_nan() {
            return Ok(0.0);
        }
        if level + 1 < MS_SSIM_WEIGHTS.len() {
            x = x.slice(s![..;2, ..;2]).to_owned();
            y = y.slice(s![..;2, ..;2]).to_owned();
            if x.nrows().min(x.ncols()) < SSIM_WINDOW {
                break;
            }
        }
    }
    Ok(if value.is_nan() { 0.0 } else { value })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(h: usize, w: usize) -> Array2<f64> {
        Array2::from_shape_fn((h, w), |(r, c)| ((r * 7 + c * 3) % 11) as f64 / 10.0)
    }

    #[test]
    fn identical_images_have_ssim_one() {
        let a = ramp(20, 24);
        assert!((ssim(a.view(), a.view(), 1.0).unwrap() - 1.0).abs() < 1e-12);
        assert!((ms_ssim(a.view(), a.view(), 1.0).unwrap() - 1.0).abs() < 1e-12);
        assert!((ms_ssim(a.view(), a.view(), 0.0).unwrap() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn ssim_of_constant_images_is_the_luminance_term() {
        // Constant images: variances vanish, SSIM = (2·μx·μy + C1)/(μx² + μy² + C1).
        let a = Array2::from_elem((9, 9), 0.2);
        let b = Array2::from_elem((9, 9), 0.6);
        let c1 = (0.01f64 * 1.0).powi(2);
        let expect = (2.0 * 0.2 * 0.6 + c1) / (0.04 + 0.36 + c1);
        assert!((ssim(a.view(), b.view(), 1.0).unwrap() - expect).abs() < 1e-12);
    }

    #[test]
    fn anticorrelated_images_have_negative_ssim() {
        let a = ramp(16, 16);
        let b = a.mapv(|v| 1.0 - v);
        let s = ssim(a.view(), b.view(), 1.0).unwrap();
        assert!(s < 0.0, "{s}");
        // MS-SSIM clamps negative levels to 1e-4 instead of producing NaN.
        let m = ms_ssim(a.view(), b.view(), 0.0).unwrap();
        assert!(m > 0.0 && m < 0.1, "{m}");
    }

    #[test]
    fn too_small_is_an_error() {
        let a = Array2::<f64>::zeros((6, 10));
        assert!(matches!(
            ssim(a.view(), a.view(), 1.0),
            Err(WorkflowError::TooSmallForSsim { .. })
        ));
    }
}
