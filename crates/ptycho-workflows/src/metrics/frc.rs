//! Fourier ring correlation (spec §10.2, hoidn/FRC `fourier_ring_corr.FSC` with the reference's
//! threshold crossing).

use ndarray::{Array2, ArrayView2};
use num_complex::Complex64;
use rustfft::FftPlanner;

use super::align::centre_crop;
use crate::error::WorkflowError;

/// FRC threshold of the resolution estimate FRC50.
pub const FRC_HALF: f64 = 0.5;
/// The 1/7 threshold.
pub const FRC_ONE_SEVENTH: f64 = 1.0 / 7.0;

/// An FRC curve and its threshold crossings (ring-index units, i.e. cycles per image side).
#[derive(Debug, Clone, PartialEq)]
pub struct Frc {
    /// FRC per ring `ρ = 0..=ρ_max`.
    pub curve: Vec<f64>,
    /// Interpolated first crossing below 0.5.
    pub frc50: f64,
    /// Interpolated first crossing below 1/7.
    pub frc1over7: f64,
}

/// FRC of `target` vs `pred` (equal shapes, real images).
///
/// Returns `Ok(None)` when the target is identically 0 (the reference's `(None, nan)` case, e.g.
/// the phase of a real object) and an error when every prediction pixel is NaN. Both images are
/// centre-cropped to a square of side `n = min(H, W)`; with `F = fftshift(DFT2(img))` and ring index
/// `ρ = round(|(r, c) − (n/2, n/2)|)`, `FRC(ρ) = |⟨F1·F2*⟩_ρ| / sqrt(|⟨|F1|²⟩_ρ·⟨|F2|²⟩_ρ|)` (ring
/// means). `sigma > 0` smooths the curve with a Gaussian (pixels of ring index) before the
/// crossings are searched.
pub fn frc(
    target: ArrayView2<f64>,
    pred: ArrayView2<f64>,
    sigma: f64,
) -> Result<Option<Frc>, WorkflowError> {
    if target.dim() != pred.dim() {
        return Err(WorkflowError::ShapeMismatch {
            recon: [pred.nrows(), pred.ncols()],
            gt: [target.nrows(), target.ncols()],
        });
    }
    if pred.iter().all(|v| v.is_nan()) {
        return Err(WorkflowError::AllNanPrediction);
    }
    if target.iter().all(|&v| v == 0.0) {
        return Ok(None);
    }
    let n = target.nrows().min(target.ncols());
    let t = centre_crop(target, n, n);
    let p = centre_crop(pred, n, n);
    let f1 = shifted_fft2(t);
    let f2 = shifted_fft2(p);
    let c = n / 2;
    let ring = |r: usize, col: usize| -> usize {
        let dr = r as f64 - c as f64;
        let dc = col as f64 - c as f64;
        (dr * dr + dc * dc).sqrt().round() as usize
    };
    let rings = ring(0, 0).max(ring(n - 1, n - 1)).max(ring(0, n - 1)) + 1;
    let mut cross = vec![Complex64::new(0.0, 0.0); rings];
    let mut p1 = vec![0.0f64; rings];
    let mut p2 = vec![0.0f64; rings];
    let mut count = vec![0usize; rings];
    for r in 0..n {
        for col in 0..n {
            let k = ring(r, col);
            let (a, b) = (f1[[r, col]], f2[[r, col]]);
            cross[k] += a * b.conj();
            p1[k] += a.norm_sqr();
            p2[k] += b.norm_sqr();
            count[k] += 1;
        }
    }
    let mut curve: Vec<f64> = (0..rings)
        .map(|k| {
            let m = count[k] as f64;
            (cross[k] / m).norm() / ((p1[k] / m) * (p2[k] / m)).abs().sqrt()
        })
        .collect();
    if sigma > 0.0 {
        let row = Array2::from_shape_vec((1, curve.len()), curve).expect("1 x L shape");
        curve = ptycho_model::physics::gaussian_filter(row.view(), sigma)
            .into_iter()
            .collect();
    }
    Ok(Some(Frc {
        frc50: first_below_threshold(&curve, FRC_HALF),
        frc1over7: first_below_threshold(&curve, FRC_ONE_SEVENTH),
        curve,
    }))
}

/// First ring `i` with `curve[i] < threshold`, refined by linear interpolation between rings
/// `i−1` and `i` (clipped to `[i−1, i]`); 0 if `i = 0`, `len` if the curve never drops below.
/// NaN entries never count as below.
pub fn first_below_threshold(curve: &[f64], threshold: f64) -> f64 {
    let Some(i) = curve.iter().position(|&v| v < threshold) else {
        return curve.len() as f64;
    };
    if i == 0 {
        return 0.0;
    }
    let (prev, cur) = (curve[i - 1], curve[i]);
    let den = cur - prev;
    if den == 0.0 {
        return i as f64;
    }
    let x = (i - 1) as f64 + (threshold - prev) / den;
    x.clamp((i - 1) as f64, i as f64)
}

/// `fftshift(DFT2(img))` of a real image (unnormalised forward DFT, zero frequency at `n/2`).
fn shifted_fft2(img: ArrayView2<f64>) -> Array2<Complex64> {
    let (h, w) = img.dim();
    let mut planner = FftPlanner::<f64>::new();
    let mut data: Array2<Complex64> = img.mapv(|v| Complex64::new(v, 0.0));
    let row_fft = planner.plan_fft_forward(w);
    for mut row in data.rows_mut() {
        let mut buf: Vec<Complex64> = row.to_vec();
        row_fft.process(&mut buf);
        row.assign(&ndarray::ArrayView1::from(&buf));
    }
    let col_fft = planner.plan_fft_forward(h);
    for mut col in data.columns_mut() {
        let mut buf: Vec<Complex64> = col.to_vec();
        col_fft.process(&mut buf);
        col.assign(&ndarray::ArrayView1::from(&buf));
    }
    Array2::from_shape_fn((h, w), |(r, c)| {
        data[[(r + h - h / 2) % h, (c + w - w / 2) % w]]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texture(n: usize) -> Array2<f64> {
        Array2::from_shape_fn((n, n), |(r, c)| {
            ((r as f64 * 0.37).sin() + (c as f64 * 0.91).cos() + ((r * c) % 7) as f64 * 0.1).abs()
        })
    }

    #[test]
    fn identical_images_have_frc_one() {
        let a = texture(32);
        let f = frc(a.view(), a.view(), 0.0).unwrap().unwrap();
        // rings 0..=round(sqrt(2)*16) = 23
        assert_eq!(f.curve.len(), 24);
        assert!(f.curve.iter().all(|v| (v - 1.0).abs() < 1e-12));
        assert_eq!(f.frc50, 24.0);
        assert_eq!(f.frc1over7, 24.0);
    }

    #[test]
    fn scaled_and_shifted_prediction() {
        // A positive scale leaves the FRC at 1. A circular shift multiplies F2 by a phase ramp,
        // which averages out over the larger rings: ring 0 stays 1, the curve must drop.
        let a = texture(32);
        let b = a.mapv(|v| 3.0 * v);
        let f = frc(a.view(), b.view(), 0.0).unwrap().unwrap();
        assert!(f.curve.iter().all(|v| (v - 1.0).abs() < 1e-12));
        let shifted = Array2::from_shape_fn((32, 32), |(r, c)| a[[(r + 3) % 32, c]]);
        let g = frc(a.view(), shifted.view(), 0.0).unwrap().unwrap();
        assert!((g.curve[0] - 1.0).abs() < 1e-12);
        assert!(g.frc50 < 24.0);
    }

    #[test]
    fn zero_target_is_none_and_nan_prediction_is_error() {
        let z = Array2::<f64>::zeros((16, 16));
        let a = texture(16);
        assert!(frc(z.view(), a.view(), 0.0).unwrap().is_none());
        let nan = Array2::from_elem((16, 16), f64::NAN);
        assert!(matches!(
            frc(a.view(), nan.view(), 0.0),
            Err(WorkflowError::AllNanPrediction)
        ));
    }

    #[test]
    fn threshold_crossing_interpolates() {
        let c = [1.0, 0.9, 0.7, 0.3, 0.1];
        assert!((first_below_threshold(&c, 0.5) - 2.5).abs() < 1e-12);
        assert!(
            (first_below_threshold(&c, 1.0 / 7.0) - (3.0 + (0.3 - 1.0 / 7.0) / 0.2)).abs() < 1e-12
        );
        assert_eq!(first_below_threshold(&c, 0.05), 5.0);
        assert_eq!(first_below_threshold(&[0.2, 0.1], 0.5), 0.0);
        assert!((first_below_threshold(&[f64::NAN, 0.9, 0.4], 0.5) - 1.8).abs() < 1e-12);
    }

    #[test]
    fn rectangular_images_are_centre_cropped_to_square() {
        let a = Array2::from_shape_fn((20, 26), |(r, c)| (r * 26 + c) as f64 % 5.0);
        let f = frc(a.view(), a.view(), 0.0).unwrap().unwrap();
        assert_eq!(f.curve.len(), 15); // round(sqrt(2)*10) + 1
    }
}
