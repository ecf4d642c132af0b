//! Cropping and alignment before the metrics (spec §10.1 and §10.2 steps 1–2).

use ndarray::{Array2, ArrayView2, s};
use num_complex::Complex32;

use crate::error::WorkflowError;

/// Crop the ground truth to the scanned region and centre-crop both images to their common shape
/// (the reference `align_for_evaluation`, spec §10.1 step 1).
///
/// `scan_coords` are the scan positions `[x, y]` = `[column, row]` in object pixels (the
/// crate-wide convention; the reference takes `[y, x]`). The ground truth is cropped to rows
/// `[max(0, trunc(min_y) − m/2), min(H, trunc(max_y) + m/2))` and likewise columns, with `m` the
/// stitching crop size; then both images are centre-cropped (`start = (h − target)/2`) to
/// `(min H, min W)`. Returns `(aligned_recon, aligned_gt)` of equal shape.
pub fn align_for_evaluation(
    recon: ArrayView2<Complex32>,
    gt: ArrayView2<Complex32>,
    scan_coords: &[[f64; 2]],
    m: usize,
) -> Result<(Array2<Complex32>, Array2<Complex32>), WorkflowError> {
    if scan_coords.is_empty() {
        return Err(WorkflowError::NoScanCoordinates);
    }
    if let Some((index, c)) = scan_coords
        .iter()
        .enumerate()
        .find(|(_, c)| !(c[0].is_finite() && c[1].is_finite()))
    {
        return Err(WorkflowError::NonFiniteCoordinate {
            index,
            x: c[0],
            y: c[1],
        });
    }
    let fold = |axis: usize, f: fn(f64, f64) -> f64, init: f64| {
        scan_coords.iter().map(|c| c[axis]).fold(init, f)
    };
    let (min_x, max_x) = (
        fold(0, f64::min, f64::INFINITY),
        fold(0, f64::max, f64::NEG_INFINITY),
    );
    let (min_y, max_y) = (
        fold(1, f64::min, f64::INFINITY),
        fold(1, f64::max, f64::NEG_INFINITY),
    );
    let radius = (m / 2) as i64;
    let (gh, gw) = gt.dim();
    // Python's int() truncates towards zero.
    let start_row = (min_y.trunc() as i64 - radius).max(0);
    let end_row = (max_y.trunc() as i64 + radius).min(gh as i64);
    let start_col = (min_x.trunc() as i64 - radius).max(0);
    let end_col = (max_x.trunc() as i64 + radius).min(gw as i64);
    if end_row <= start_row || end_col <= start_col {
        return Err(WorkflowError::EmptyScanRegion {
            rows: [start_row, end_row],
            cols: [start_col, end_col],
            gt_shape: [gh, gw],
        });
    }
    let gt_cropped = gt.slice(s![
        start_row as usize..end_row as usize,
        start_col as usize..end_col as usize
    ]);
    let (rh, rw) = recon.dim();
    let th = rh.min(gt_cropped.nrows());
    let tw = rw.min(gt_cropped.ncols());
    if th == 0 || tw == 0 {
        return Err(WorkflowError::EmptyImage {
            which: "reconstruction",
            shape: [rh, rw],
        });
    }
    Ok((
        centre_crop(recon, th, tw).to_owned(),
        centre_crop(gt_cropped, th, tw).to_owned(),
    ))
}

/// Centre crop to `th × tw` with `start = (h − th)/2` (floor); `th ≤ h`, `tw ≤ w`.
pub(crate) fn centre_crop<T>(img: ArrayView2<T>, th: usize, tw: usize) -> ArrayView2<T> {
    let (h, w) = img.dim();
    let (r0, c0) = ((h - th) / 2, (w - tw) / 2);
    img.slice_move(s![r0..r0 + th, c0..c0 + tw])
}

/// Remove `border` pixels from every side (the reference `trim`, `offset/2` pixels).
pub(crate) fn trim<T: Clone>(
    img: ArrayView2<T>,
    border: usize,
    which: &'static str,
) -> Result<Array2<T>, WorkflowError> {
    let (h, w) = img.dim();
    if h <= 2 * border || w <= 2 * border {
        return Err(WorkflowError::TooSmallForTrim {
            which,
            shape: [h, w],
            border,
        });
    }
    Ok(img
        .slice(s![border..h - border, border..w - border])
        .to_owned())
}

/// Subtract the least-squares plane `a·x + b·y + c` (x = column, y = row index) from a phase image
/// (radians), the reference `fit_and_remove_plane`.
///
/// On a full regular grid the centred coordinates are orthogonal to each other and to the
/// constant, so the least-squares solution is `a = Σ(x−x̄)φ / Σ(x−x̄)²`, `b` likewise and the
/// constant term makes the residual zero-mean.
pub fn fit_and_remove_plane(phase: ArrayView2<f64>) -> Array2<f64> {
    let (h, w) = phase.dim();
    if h == 0 || w == 0 {
        return phase.to_owned();
    }
    let xm = (w as f64 - 1.0) / 2.0;
    let ym = (h as f64 - 1.0) / 2.0;
    let (mut sx, mut sy, mut sxx, mut syy, mut mean) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for ((r, c), &v) in phase.indexed_iter() {
        let (dx, dy) = (c as f64 - xm, r as f64 - ym);
        sx += dx * v;
        sy += dy * v;
        sxx += dx * dx;
        syy += dy * dy;
        mean += v;
    }
    mean /= (h * w) as f64;
    let a = if sxx > 0.0 { sx / sxx } else { 0.0 };
    let b = if syy > 0.0 { sy / syy } else { 0.0 };
    Array2::from_shape_fn((h, w), |(r, c)| {
        phase[[r, c]] - (a * (c as f64 - xm) + b * (r as f64 - ym) + mean)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plane_is_removed_exactly() {
        let img = Array2::from_shape_fn((9, 13), |(r, c)| 0.1 * c as f64 - 0.2 * r as f64 + 0.5);
        let out = fit_and_remove_plane(img.view());
        assert!(out.iter().all(|v| v.abs() < 1e-12));
        // A checkerboard is orthogonal to any plane on an even grid: unchanged up to its mean.
        let cb = Array2::from_shape_fn((8, 8), |(r, c)| if (r + c) % 2 == 0 { 1.0 } else { -1.0 });
        let out = fit_and_remove_plane(cb.view());
        assert!((&out - &cb).iter().all(|v| v.abs() < 1e-12));
    }

    #[test]
    fn align_crops_gt_to_scan_box_then_common_centre() {
        let gt = Array2::from_shape_fn((100, 120), |(r, c)| Complex32::new(r as f32, c as f32));
        let recon = Array2::from_shape_fn((50, 44), |(r, c)| Complex32::new(c as f32, r as f32));
        // x in [30.7, 70.2], y in [20.9, 60.5]; M = 20 -> gt rows [10, 70), cols [20, 80).
        let coords = [[30.7, 20.9], [70.2, 60.5], [50.0, 40.0]];
        let (ar, ag) = align_for_evaluation(recon.view(), gt.view(), &coords, 20).unwrap();
        // common shape (min(50, 60), min(44, 60)) = (50, 44)
        assert_eq!(ar.dim(), (50, 44));
        assert_eq!(ag.dim(), (50, 44));
        assert_eq!(ar, recon);
        // gt crop 60x60 starting at (10, 20), centre-cropped by (5, 8).
        assert_eq!(ag[[0, 0]], Complex32::new(15.0, 28.0));
        assert_eq!(ag[[49, 43]], Complex32::new(64.0, 71.0));
    }

    #[test]
    fn align_clamps_to_the_ground_truth_and_rejects_empty() {
        let gt = Array2::<Complex32>::zeros((40, 40));
        let recon = Array2::<Complex32>::zeros((80, 80));
        let (ar, ag) =
            align_for_evaluation(recon.view(), gt.view(), &[[2.0, 3.0], [38.0, 39.0]], 20).unwrap();
        assert_eq!(ag.dim(), (40, 40));
        assert_eq!(ar.dim(), (40, 40));
        assert!(matches!(
            align_for_evaluation(recon.view(), gt.view(), &[[200.0, 200.0]], 20),
            Err(WorkflowError::EmptyScanRegion { .. })
        ));
        assert!(matches!(
            align_for_evaluation(recon.view(), gt.view(), &[], 20),
            Err(WorkflowError::NoScanCoordinates)
        ));
    }
}
