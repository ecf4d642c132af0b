//! Sub-pixel registration before the metrics (spec §10.1 step 2, the reference
//! `register_and_align(image, reference, upsample_factor=50, border_crop=2)`).
//!
//! Method: phase cross-correlation with an upsampled DFT (Guizar-Sicairos, Thurman & Fienup,
//! "Efficient subpixel image registration algorithms", Opt. Lett. 33, 156 (2008)), as
//! scikit-image's `phase_cross_correlation` computes it with its default `normalization="phase"`:
//!
//! 1. `R = F_ref · conj(F_mov) / max(|F_ref · conj(F_mov)|, 100·ε)` (ε of float32, as the
//!    reference passes float32 magnitudes), `F` the unnormalised 2-D DFT of the magnitudes;
//! 2. the integer peak of `|IDFT(R)|` (first maximum in row-major order), wrapped to
//!    `(−n/2, n/2]`, rounded to the `1/u` grid;
//! 3. the cross-correlation is evaluated again on a `⌈1.5·u⌉²` grid of spacing `1/u` centred on
//!    that peak by a matrix-multiplied DFT (separable: columns, then rows) and its maximum refines
//!    the shift.
//!
//! The shift found is the translation to apply to the moving image (content moves by +shift) to
//! bring it onto the reference; it is applied with a Fourier phase ramp
//! `IDFT(DFT(img)·exp(−2πi(dy·k_y + dx·k_x)))` (`k` = `fftfreq`), then `border_crop` pixels are
//! dropped from every side of both images (the wrap-around of the periodic shift).

use ndarray::{Array2, ArrayView2, s};
use num_complex::{Complex32, Complex64};
use rustfft::FftPlanner;
use serde::Serialize;

use crate::error::WorkflowError;

/// Upsampling factor of the reference (shift precision 1/50 pixel).
pub const REGISTRATION_UPSAMPLE: usize = 50;
/// Pixels dropped from every side after the shift (reference `border_crop`).
pub const REGISTRATION_BORDER: usize = 2;

/// What [`register_and_align`] found and did.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Registration {
    /// Translation `[x, y]` (= `[column, row]`) in pixels applied to the reconstruction to align
    /// it with the ground truth (its content moves by +shift).
    pub shift: [f64; 2],
    /// Upsampling factor of the cross-correlation (precision `1/upsample_factor` pixels).
    pub upsample_factor: usize,
    /// Pixels dropped from every side of both images after the shift.
    pub border_crop: usize,
}

/// The translation `[dy, dx]` (rows, columns) to apply to `moving` to align it with `reference`
/// (equal shapes, real images), by phase cross-correlation upsampled by `upsample` (see the module
/// documentation). `upsample` ≤ 1 gives the integer peak.
pub fn phase_cross_correlation(
    reference: ArrayView2<f64>,
    moving: ArrayView2<f64>,
    upsample: usize,
) -> Result<[f64; 2], WorkflowError> {
    if reference.dim() != moving.dim() {
        return Err(WorkflowError::ShapeMismatch {
            recon: [moving.nrows(), moving.ncols()],
            gt: [reference.nrows(), reference.ncols()],
        });
    }
    let (h, w) = reference.dim();
    if h == 0 || w == 0 {
        return Err(WorkflowError::EmptyImage {
            which: "ground-truth",
            shape: [h, w],
        });
    }
    let mut planner = FftPlanner::<f64>::new();
    let to_c = |v: &f64| Complex64::new(*v, 0.0);
    let mut f_ref = reference.map(to_c);
    let mut f_mov = moving.map(to_c);
    fft2(&mut planner, &mut f_ref, false);
    fft2(&mut planner, &mut f_mov, false);
    let floor = 100.0 * f32::EPSILON as f64;
    let product = Array2::from_shape_fn((h, w), |(r, c)| {
        let p = f_ref[[r, c]] * f_mov[[r, c]].conj();
        p / p.norm().max(floor)
    });
    let mut cc = product.clone();
    fft2(&mut planner, &mut cc, true);
    let (pr, pc) = argmax_abs(cc.view());
    let wrap = |i: usize, n: usize| {
        if i > n / 2 {
            i as f64 - n as f64
        } else {
            i as f64
        }
    };
    let mut shift = [wrap(pr, h), wrap(pc, w)];
    if upsample > 1 {
        let u = upsample as f64;
        shift = shift.map(|v| (v * u).round() / u);
        let region = (u * 1.5).ceil() as usize;
        let centre = (region / 2) as f64;
        // Cross-correlation at y = shift_y + (i − centre)/u, x = shift_x + (j − centre)/u.
        let up = upsampled_correlation(product.view(), region, u, shift, centre);
        let (ur, uc) = argmax_abs(up.view());
        shift[0] += (ur as f64 - centre) / u;
        shift[1] += (uc as f64 - centre) / u;
    }
    // A dimension of size 1 has no shift.
    if h == 1 {
        shift[0] = 0.0;
    }
    if w == 1 {
        shift[1] = 0.0;
    }
    Ok(shift)
}

/// `Σ_{k,l} R[k,l]·exp(+2πi(f_k·y/h + f_l·x/w))` on the grid `y = s_y + (i − centre)/u`,
/// `x = s_x + (j − centre)/u`, `i, j ∈ 0..region` (`f` = integer `fftfreq`), computed separably.
fn upsampled_correlation(
    r: ArrayView2<Complex64>,
    region: usize,
    u: f64,
    shift: [f64; 2],
    centre: f64,
) -> Array2<Complex64> {
    let (h, w) = r.dim();
    let freq = |k: usize, n: usize| {
        if k < n.div_ceil(2) {
            k as f64
        } else {
            k as f64 - n as f64
        }
    };
    let tau = 2.0 * std::f64::consts::PI;
    // Column kernel [j, l] and row kernel [i, k].
    let kx = Array2::from_shape_fn((region, w), |(j, l)| {
        let x = shift[1] + (j as f64 - centre) / u;
        Complex64::from_polar(1.0, tau * freq(l, w) * x / w as f64)
    });
    let ky = Array2::from_shape_fn((region, h), |(i, k)| {
        let y = shift[0] + (i as f64 - centre) / u;
        Complex64::from_polar(1.0, tau * freq(k, h) * y / h as f64)
    });
    // G[k, j] = Σ_l R[k, l]·kx[j, l]; C[i, j] = Σ_k ky[i, k]·G[k, j].
    let g = r.dot(&kx.t());
    ky.dot(&g)
}

/// Index (row, col) of the first maximum of `|z|` in row-major order.
fn argmax_abs(a: ArrayView2<Complex64>) -> (usize, usize) {
    let mut best = (0, 0);
    let mut best_v = f64::NEG_INFINITY;
    for ((r, c), z) in a.indexed_iter() {
        let v = z.norm();
        if v > best_v {
            best_v = v;
            best = (r, c);
        }
    }
    best
}

/// In-place unnormalised 2-D DFT (`inverse`: the unnormalised inverse, the 1/(h·w) not applied).
fn fft2(planner: &mut FftPlanner<f64>, data: &mut Array2<Complex64>, inverse: bool) {
    let (h, w) = data.dim();
    let plan = |p: &mut FftPlanner<f64>, n| {
        if inverse {
            p.plan_fft_inverse(n)
        } else {
            p.plan_fft_forward(n)
        }
    };
    let row_fft = plan(planner, w);
    let mut buf = vec![Complex64::new(0.0, 0.0); w.max(h)];
    for mut row in data.rows_mut() {
        let b = &mut buf[..w];
        b.iter_mut().zip(row.iter()).for_each(|(d, s)| *d = *s);
        row_fft.process(b);
        row.iter_mut().zip(b.iter()).for_each(|(d, s)| *d = *s);
    }
    let col_fft = plan(planner, h);
    for mut col in data.columns_mut() {
        let b = &mut buf[..h];
        b.iter_mut().zip(col.iter()).for_each(|(d, s)| *d = *s);
        col_fft.process(b);
        col.iter_mut().zip(b.iter()).for_each(|(d, s)| *d = *s);
    }
}

/// Translate a complex image by `[dy, dx]` pixels (content moves by +shift) with a Fourier phase
/// ramp (periodic: what leaves one side enters the other).
pub fn fourier_shift(img: ArrayView2<Complex64>, shift: [f64; 2]) -> Array2<Complex64> {
    let (h, w) = img.dim();
    if h == 0 || w == 0 {
        return img.to_owned();
    }
    let mut planner = FftPlanner::<f64>::new();
    let mut f = img.to_owned();
    fft2(&mut planner, &mut f, false);
    let freq = |k: usize, n: usize| {
        let k = if k < n.div_ceil(2) {
            k as f64
        } else {
            k as f64 - n as f64
        };
        k / n as f64
    };
    let tau = 2.0 * std::f64::consts::PI;
    for ((r, c), z) in f.indexed_iter_mut() {
        let phase = -tau * (shift[0] * freq(r, h) + shift[1] * freq(c, w));
        *z *= Complex64::from_polar(1.0, phase);
    }
    fft2(&mut planner, &mut f, true);
    let norm = (h * w) as f64;
    f.mapv_inplace(|z| z / norm);
    f
}

/// The reference `register_and_align` on complex images of equal shape: the shift of
/// `|recon|` onto `|gt|` ([`phase_cross_correlation`], `upsample`), applied to `recon` by
/// [`fourier_shift`], then `border` pixels dropped from every side of both. Returns
/// `(registered recon, cropped gt, what was done)`.
pub fn register_and_align(
    recon: ArrayView2<Complex32>,
    gt: ArrayView2<Complex32>,
    upsample: usize,
    border: usize,
) -> Result<(Array2<Complex32>, Array2<Complex32>, Registration), WorkflowError> {
    let mag = |z: &Complex32| z.norm() as f64;
    let [dy, dx] = phase_cross_correlation(gt.map(mag).view(), recon.map(mag).view(), upsample)?;
    let (h, w) = recon.dim();
    if h <= 2 * border || w <= 2 * border {
        return Err(WorkflowError::TooSmallForTrim {
            which: "reconstruction",
            shape: [h, w],
            border,
        });
    }
    let shifted = fourier_shift(
        recon
            .map(|z| Complex64::new(z.re as f64, z.im as f64))
            .view(),
        [dy, dx],
    );
    let crop = s![border..h - border, border..w - border];
    let r = shifted
        .slice(crop)
        .mapv(|z| Complex32::new(z.re as f32, z.im as f32));
    let g = gt.slice(crop).to_owned();
    Ok((
        r,
        g,
        Registration {
            shift: [dx, dy],
            upsample_factor: upsample,
            border_crop: border,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A periodic, band-limited test object (a sum of whole-period waves), so that a Fourier
    /// shift moves it exactly: structure at several scales, no edge.
    fn object(h: usize, w: usize) -> Array2<Complex64> {
        let waves = [
            (1.0, 2.0, 0.30, 0.3),
            (3.0, -1.0, 0.20, 1.1),
            (5.0, 7.0, 0.12, 2.0),
            (-9.0, 4.0, 0.08, 0.7),
            (12.0, 13.0, 0.05, 2.9),
        ];
        Array2::from_shape_fn((h, w), |(r, c)| {
            let tau = 2.0 * std::f64::consts::PI;
            let (y, x) = (r as f64 / h as f64, c as f64 / w as f64);
            let a = 1.0
                + waves
                    .iter()
                    .map(|&(ky, kx, amp, ph)| amp * (tau * (ky * y + kx * x) + ph).cos())
                    .sum::<f64>();
            Complex64::from_polar(a, 0.4 * (tau * (2.0 * y + x)).sin())
        })
    }

    fn c32(a: &Array2<Complex64>) -> Array2<Complex32> {
        a.mapv(|z| Complex32::new(z.re as f32, z.im as f32))
    }

    #[test]
    fn known_subpixel_shift_is_recovered() {
        let gt = object(64, 72);
        // The reconstruction is the truth moved by x = 0.3, y = −1.7 pixels.
        let moved = fourier_shift(gt.view(), [-1.7, 0.3]);
        let mag = |a: &Array2<Complex64>| a.mapv(|z| z.norm());
        let [dy, dx] = phase_cross_correlation(mag(&gt).view(), mag(&moved).view(), 50).unwrap();
        assert!((dy - 1.7).abs() <= 0.02, "dy {dy}");
        assert!((dx + 0.3).abs() <= 0.02, "dx {dx}");
        // Whole pixels without upsampling, within a pixel of the truth.
        let [iy, ix] = phase_cross_correlation(mag(&gt).view(), mag(&moved).view(), 1).unwrap();
        assert!(iy.fract() == 0.0 && ix.fract() == 0.0, "{iy} {ix}");
        assert!(
            (iy - 1.7).abs() < 1.0 && (ix + 0.3).abs() < 1.0,
            "{iy} {ix}"
        );
        // Through the complex entry point: [x, y] reported, images cropped by 2.
        let (r, g, reg) = register_and_align(c32(&moved).view(), c32(&gt).view(), 50, 2).unwrap();
        assert_eq!(r.dim(), (60, 68));
        assert_eq!(g.dim(), (60, 68));
        assert!((reg.shift[0] + 0.3).abs() <= 0.02, "{:?}", reg.shift);
        assert!((reg.shift[1] - 1.7).abs() <= 0.02, "{:?}", reg.shift);
    }

    #[test]
    fn registered_metrics_of_a_shifted_copy_are_better() {
        use crate::metrics::{EvalOptions, eval_reconstruction};
        let gt = c32(&object(64, 64));
        let moved = c32(&fourier_shift(object(64, 64).view(), [0.8, -1.3]));
        let opts = EvalOptions::default();
        let plain = eval_reconstruction(moved.view(), gt.view(), &opts).unwrap();
        let (r, g, reg) = register_and_align(moved.view(), gt.view(), 50, 2).unwrap();
        let registered = eval_reconstruction(r.view(), g.view(), &opts).unwrap();
        assert!((reg.shift[0] - 1.3).abs() <= 0.02 && (reg.shift[1] + 0.8).abs() <= 0.02);
        assert!(registered.amplitude.mae < 0.05 * plain.amplitude.mae);
        assert!(registered.phase.mae < 0.05 * plain.phase.mae);
        assert!(registered.amplitude.ssim > plain.amplitude.ssim);
        assert!(
            registered.amplitude.ssim > 0.999,
            "{}",
            registered.amplitude.ssim
        );
    }

    #[test]
    fn integer_shifts_wrap_both_ways() {
        let gt = object(40, 40);
        let mag = |a: &Array2<Complex64>| a.mapv(|z| z.norm());
        for (sy, sx) in [(3.0, -5.0), (-7.0, 4.0), (0.0, 0.0)] {
            let moved = fourier_shift(gt.view(), [sy, sx]);
            let got = phase_cross_correlation(mag(&gt).view(), mag(&moved).view(), 50).unwrap();
            assert!(
                (got[0] + sy).abs() < 1e-9 && (got[1] + sx).abs() < 1e-9,
                "{got:?}"
            );
        }
    }

    #[test]
    fn fourier_shift_by_whole_pixels_rolls() {
        let a = object(12, 10);
        let b = fourier_shift(a.view(), [2.0, -3.0]);
        for ((r, c), z) in b.indexed_iter() {
            let src = a[[(r + 12 - 2) % 12, (c + 3) % 10]];
            assert!((z - src).norm() < 1e-9);
        }
    }

    #[test]
    fn mismatched_shapes_are_an_error() {
        let a = Array2::<f64>::zeros((8, 8));
        let b = Array2::<f64>::zeros((8, 9));
        assert!(matches!(
            phase_cross_correlation(a.view(), b.view(), 50),
            Err(WorkflowError::ShapeMismatch { .. })
        ));
    }
}
