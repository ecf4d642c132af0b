//! Ground-truth patch extraction from `objectGuess` (spec §2.4, §0.3).

use ndarray::{Array2, ArrayView2, s};
use num_complex::{Complex32, Complex64};
use ptycho_model::physics::shift_matrix;

/// Where each member's ground-truth patch is cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PatchConvention {
    /// Each patch is centred on its own scan position (physically correct).
    #[default]
    Physical,
    /// The reference's `get_image_patches`: centre at `offset + relative = 2·centre − position`,
    /// i.e. mirrored through the group centre for gridsize > 1 (identical for gridsize 1).
    ReferenceMirrored,
}

/// The `N×N` patch of `object` centred on `(x, y)` (object pixels, x = column, y = row):
/// `patch[i, j] = object(y − N/2 + i, x − N/2 + j)` with the bilinear rule of
/// [`ptycho_model::physics::translate`] (taps outside the object contribute 0). Works on an
/// `(N+2)²` window, not the whole padded object.
pub fn extract_patch(object: ArrayView2<Complex32>, x: f64, y: f64, n: usize) -> Array2<Complex64> {
    let half = (n / 2) as f64;
    let (ay, ax) = (y - half, x - half);
    let (r0, c0) = (ay.floor(), ax.floor());
    let win = n + 2;
    let mut w = Array2::<Complex64>::zeros((win, win));
    let (h, wd) = object.dim();
    let (r0i, c0i) = (r0 as i64, c0 as i64);
    let rs = r0i.clamp(0, h as i64) as usize;
    let re = (r0i + win as i64).clamp(0, h as i64) as usize;
    let cs = c0i.clamp(0, wd as i64) as usize;
    let ce = (c0i + win as i64).clamp(0, wd as i64) as usize;
    if rs < re && cs < ce {
        let src = object.slice(s![rs..re, cs..ce]);
        let dr = (rs as i64 - r0i) as usize;
        let dc = (cs as i64 - c0i) as usize;
        w.slice_mut(s![dr..dr + (re - rs), dc..dc + (ce - cs)])
            .zip_mut_with(&src, |d, v| *d = Complex64::new(v.re as f64, v.im as f64));
    }
    // out[i] = window(i + a − floor(a)) ⇔ shift by t = floor(a) − a.
    let ry = shift_matrix(n, win, r0 - ay).mapv(|v| Complex64::new(v, 0.0));
    let rx = shift_matrix(n, win, c0 - ax).mapv(|v| Complex64::new(v, 0.0));
    ry.dot(&w).dot(&rx.t())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_position_copies_object_window() {
        let obj = Array2::from_shape_fn((40, 50), |(r, c)| Complex32::new(r as f32, c as f32));
        let p = extract_patch(obj.view(), 20.0, 15.0, 8);
        // patch[i, j] = object(15 − 4 + i, 20 − 4 + j)
        assert_eq!(p[[0, 0]], Complex64::new(11.0, 16.0));
        assert_eq!(p[[7, 3]], Complex64::new(18.0, 19.0));
        let h = extract_patch(obj.view(), 20.5, 15.0, 8);
        assert!((h[[0, 0]].im - 16.5).abs() < 1e-12);
        // Outside the object: zeros.
        let z = extract_patch(obj.view(), 0.0, 0.0, 8);
        assert_eq!(z[[0, 0]], Complex64::new(0.0, 0.0));
        assert_eq!(z[[4, 4]], Complex64::new(0.0, 0.0));
    }
}
