//! Position-based stitching of reconstructed patches (spec §7.2, the reference
//! `tf_helper.reassemble_position`).
//!
//! Every patch `Z_g` (N×N complex, object amplitude·e^{iφ}) contributes its central M×M crop, placed
//! on a square canvas of side `S = M + 2·pad` and translated by `+a_g` (content moves towards larger
//! column / row indices), where `a_g = o_g − com` is the patch centre relative to the mean centre.
//! The canvas is the plain average of the overlapping crops: `num / (den + 1e-9)` with `den` the
//! same sum applied to an all-ones crop.
//!
//! The reference does this arithmetic in float32 (offsets cast to float32, sample coordinate
//! `x − a_x` and the bilinear weights in float32); this module reproduces those float32 roundings
//! for the coordinates and weights, because at the fringe of the scanned area (tiny overlap
//! weights) they decide the average, and accumulates the sums in float64.
//!
//! It is a streaming scatter-add: each patch only touches the `(M+1)×(M+1)` canvas footprint of its
//! shifted crop, so the cost is `O(G·M²)` independent of the canvas size; [`Stitcher`] takes the
//! patches in pieces, so that they need not all be held.

use ndarray::{Array2, ArrayView1, ArrayView2, ArrayView3, s};
use num_complex::{Complex32, Complex64};
use rayon::prelude::*;

use crate::error::WorkflowError;

/// The averaged, stitched object.
#[derive(Debug, Clone)]
pub struct Stitched {
    /// Canvas `S×S` (`S = M + 2·pad`), complex object (amplitude·e^{iφ}); uncovered pixels are 0.
    pub object: Array2<Complex32>,
    /// Object-pixel coordinate `[x, y]` of canvas pixel (row 0, col 0):
    /// `(com_x − M/2 − pad, com_y − M/2 − pad)`; canvas pixel `(r, c)` is object pixel
    /// `(origin_y + r, origin_x + c)`.
    pub origin: [f64; 2],
    /// Padding on every side of the central M×M window, pixels (even).
    pub pad: usize,
}

/// The two sums behind [`Stitched`] (the reference's `shift_and_sum` of the patches and of ones).
#[derive(Debug, Clone)]
pub struct ShiftSum {
    /// `num = Σ_g T(zeropad(crop(Z_g)), +a_g)`, `S×S` complex.
    pub numerator: Array2<Complex64>,
    /// `den = Σ_g T(zeropad(1_{M×M}), +a_g)`, `S×S`: the (fractional) number of crops covering a
    /// pixel.
    pub overlap: Array2<f64>,
    /// As [`Stitched::origin`].
    pub origin: [f64; 2],
    /// As [`Stitched::pad`].
    pub pad: usize,
}

impl ShiftSum {
    /// The average `num / (den + 1e-9)` (uncovered pixels are 0), rounded to complex64.
    pub fn average(&self) -> Stitched {
        let object = ndarray::Zip::from(&self.numerator)
            .and(&self.overlap)
            .map_collect(|n, d| {
                let v = n / (d + 1e-9);
                Complex32::new(v.re as f32, v.im as f32)
            });
        Stitched {
            object,
            origin: self.origin,
            pad: self.pad,
        }
    }

    /// The covered canvas pixels: those with a non-zero stitching weight (`overlap > 0`), i.e.
    /// reached by at least one crop.
    pub fn covered(&self) -> Array2<bool> {
        self.overlap.mapv(|d| d > 0.0)
    }
}

/// Fraction of the scan's bounding box (`[min x, max x] × [min y, max y]` of the positions
/// `xs`, `ys`, object pixels) that a canvas covers: the covered pixels (`covered`, e.g.
/// [`ShiftSum::covered`]) among the canvas pixels whose object coordinate
/// (`origin + [col, row]`) lies in the box; box pixels off the canvas count as uncovered.
/// 1 for an empty box (no positions) — nothing is missing.
pub fn scan_box_coverage(
    covered: ArrayView2<bool>,
    origin: [f64; 2],
    xs: ArrayView1<f64>,
    ys: ArrayView1<f64>,
) -> f64 {
    let range = |v: ArrayView1<f64>| {
        v.iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &a| {
                (lo.min(a), hi.max(a))
            })
    };
    let ((x0, x1), (y0, y1)) = (range(xs), range(ys));
    if !(x0 <= x1 && y0 <= y1) {
        return 1.0;
    }
    // Integer canvas offsets k with lo ≤ origin + k ≤ hi.
    let span = |lo: f64, hi: f64, o: f64| ((lo - o).ceil() as i64, (hi - o).floor() as i64);
    let (c0, c1) = span(x0, x1, origin[0]);
    let (r0, r1) = span(y0, y1, origin[1]);
    let total = ((c1 - c0 + 1).max(0) * (r1 - r0 + 1).max(0)) as f64;
    if total == 0.0 {
        return 1.0;
    }
    let (h, w) = covered.dim();
    let clip = |a: i64, b: i64, n: usize| (a.max(0), b.min(n as i64 - 1));
    let (cc0, cc1) = clip(c0, c1, w);
    let (rr0, rr1) = clip(r0, r1, h);
    let mut hit = 0usize;
    if cc0 <= cc1 && rr0 <= rr1 {
        hit = covered
            .slice(s![rr0 as usize..=rr1 as usize, cc0 as usize..=cc1 as usize])
            .iter()
            .filter(|&&b| b)
            .count();
    }
    hit as f64 / total
}

/// Stitch `patches` `(G, N, N)` centred at `centres` (`[x, y]` object pixels, one per patch)
/// using their central `m×m` windows; see the module documentation and spec §7.2.
pub fn reassemble_position(
    patches: ArrayView3<Complex32>,
    centres: &[[f64; 2]],
    m: usize,
) -> Result<Stitched, WorkflowError> {
    Ok(shift_and_sum(patches, centres, m)?.average())
}

/// Per-axis sampling of one translated crop: for each canvas index in `start..start+len`, the crop
/// index of the lower bilinear tap (may be outside `0..m`) and its float32 fractional weight.
struct AxisTaps {
    start: usize,
    lower: Vec<i64>,
    frac: Vec<f32>,
}

impl AxisTaps {
    /// Canvas indices `i` whose taps can reach the crop `[pad, pad+m)` after a shift by `a`.
    /// The sample coordinate is `fl32(i − a)` as in the reference (content moves by `+a`).
    fn new(a: f32, pad: usize, m: usize, size: usize) -> Self {
        let lo = ((pad as f64 + a as f64).floor() as i64 - 1).max(0) as usize;
        let hi = (((pad + m) as f64 + a as f64).ceil() as i64 + 1).min(size as i64 - 1);
        let mut taps = AxisTaps {
            start: lo,
            lower: Vec::new(),
            frac: Vec::new(),
        };
        if hi < lo as i64 {
            return taps;
        }
        for i in lo..=hi as usize {
            let s = i as f32 - a;
            let f = s.floor();
            taps.lower.push(f as i64 - pad as i64);
            taps.frac.push(s - f);
        }
        taps
    }
}

/// The reference's centre of mass and float32 relative offsets. The mean is TensorFlow's
/// `reduce_mean` over the patch axis of float32 offsets: a sequential float32 sum divided by the
/// count (this exact rounding reproduces the reference's overlap map bit for bit; a correctly
/// rounded mean is off by an ulp, ~1e-5 px, and moves the fringe averages by ~1e-5).
fn relative_offsets(centres: &[[f64; 2]]) -> ([f32; 2], Vec<[f32; 2]>) {
    let g = centres.len() as f32;
    let mut com = [0f32; 2];
    for axis in 0..2 {
        let sum = centres.iter().fold(0f32, |acc, c| acc + c[axis] as f32);
        com[axis] = sum / g;
    }
    let rel = centres
        .iter()
        .map(|c| [c[0] as f32 - com[0], c[1] as f32 - com[1]])
        .collect();
    (com, rel)
}

/// Numerator and overlap sums of the stitching (see [`ShiftSum`]).
pub fn shift_and_sum(
    patches: ArrayView3<Complex32>,
    centres: &[[f64; 2]],
    m: usize,
) -> Result<ShiftSum, WorkflowError> {
    let (g, h, w) = patches.dim();
    if g == 0 {
        return Err(WorkflowError::NoPatches);
    }
    if centres.len() != g {
        return Err(WorkflowError::CountMismatch {
            patches: g,
            centres: centres.len(),
        });
    }
    let mut stitcher = Stitcher::new(centres, m, [h, w])?;
    stitcher.add(0, patches)?;
    Ok(stitcher.finish())
}

/// The stitching of [`shift_and_sum`] fed in pieces: the canvas is laid out from all the centres
/// up front, then patches are scatter-added as they arrive ([`Stitcher::add`], in any order), so
/// that only the canvas and the patches of one piece are held. The sums equal those of
/// [`shift_and_sum`] up to the order of the float64 additions.
#[derive(Debug, Clone)]
pub struct Stitcher {
    /// Float32 offset of each patch from the mean centre (the reference's rounding).
    rel: Vec<[f32; 2]>,
    com: [f32; 2],
    m: usize,
    pad: usize,
    patch: [usize; 2],
    numerator: Array2<Complex64>,
    overlap: Array2<f64>,
}

impl Stitcher {
    /// A canvas for patches of `patch = [N, N]` pixels centred at `centres` (`[x, y]` object
    /// pixels, one per patch, in patch order), of which the central `m×m` windows are stitched.
    pub fn new(centres: &[[f64; 2]], m: usize, patch: [usize; 2]) -> Result<Self, WorkflowError> {
        let [h, w] = patch;
        if centres.is_empty() {
            return Err(WorkflowError::NoPatches);
        }
        if m == 0 || m % 2 == 1 || m > h || m > w {
            return Err(WorkflowError::BadCropSize { m, h, w });
        }
        if let Some((index, c)) = centres
            .iter()
            .enumerate()
            .find(|(_, c)| !(c[0].is_finite() && c[1].is_finite()))
        {
            return Err(WorkflowError::NonFiniteCentre {
                index,
                x: c[0],
                y: c[1],
            });
        }
        let (com, rel) = relative_offsets(centres);
        let max_abs = rel
            .iter()
            .flat_map(|a| [a[0].abs(), a[1].abs()])
            .fold(0f32, f32::max);
        if max_abs as f64 > 1.0e6 {
            return Err(WorkflowError::CanvasTooLarge {
                span: max_abs as f64,
            });
        }
        let mut pad = max_abs.ceil() as usize;
        pad += pad % 2;
        let size = m + 2 * pad;
        Ok(Stitcher {
            rel,
            com,
            m,
            pad,
            patch,
            numerator: Array2::zeros((size, size)),
            overlap: Array2::zeros((size, size)),
        })
    }

    /// Scatter-add `patches` `(B, N, N)`, the patches `first..first + B` of the centres given
    /// to [`Stitcher::new`].
    pub fn add(
        &mut self,
        first: usize,
        patches: ArrayView3<Complex32>,
    ) -> Result<(), WorkflowError> {
        let (b, h, w) = patches.dim();
        if [h, w] != self.patch || first + b > self.rel.len() {
            return Err(WorkflowError::CountMismatch {
                patches: first + b,
                centres: self.rel.len(),
            });
        }
        if b == 0 {
            return Ok(());
        }
        let (m, pad) = (self.m, self.pad);
        let size = self.numerator.nrows();
        let (r0, c0) = (h / 2 - m / 2, w / 2 - m / 2);
        let rel = &self.rel[first..first + b];
        let zero = || {
            (
                Array2::<Complex64>::zeros((size, size)),
                Array2::<f64>::zeros((size, size)),
            )
        };
        let threads = rayon::current_num_threads().max(1);
        // A canvas per thread pays off when the piece's work outweighs zeroing and summing the
        // canvases (one piece of a large scan on a large canvas: scatter in place, no copies).
        let work = b * (m + 1) * (m + 1);
        if threads == 1 || b < 2 || work < 4 * size * size {
            for (k, a) in rel.iter().enumerate() {
                let crop = patches.slice(s![k, r0..r0 + m, c0..c0 + m]);
                scatter_patch(crop, *a, pad, &mut self.numerator, &mut self.overlap);
            }
            return Ok(());
        }
        let (num, den) = (0..b)
            .into_par_iter()
            // One canvas pair per worker thread, not per rayon split.
            .with_min_len(b.div_ceil(threads).max(1))
            .fold(zero, |(mut num, mut den), k| {
                let crop = patches.slice(s![k, r0..r0 + m, c0..c0 + m]);
                scatter_patch(crop, rel[k], pad, &mut num, &mut den);
                (num, den)
            })
            .reduce(zero, |(mut n1, mut d1), (n2, d2)| {
                n1 += &n2;
                d1 += &d2;
                (n1, d1)
            });
        self.numerator += &num;
        self.overlap += &den;
        Ok(())
    }

    /// The sums of every patch added.
    pub fn finish(self) -> ShiftSum {
        let half = (self.m / 2) as f64;
        ShiftSum {
            numerator: self.numerator,
            overlap: self.overlap,
            origin: [
                self.com[0] as f64 - half - self.pad as f64,
                self.com[1] as f64 - half - self.pad as f64,
            ],
            pad: self.pad,
        }
    }
}

/// Add one crop, translated by `a = [ax, ay]` on the padded canvas, to `num` and its bilinear
/// coverage to `den`. Weights and the 4-tap sums are float32, as in the reference.
fn scatter_patch(
    crop: ArrayView2<Complex32>,
    a: [f32; 2],
    pad: usize,
    num: &mut Array2<Complex64>,
    den: &mut Array2<f64>,
) {
    let m = crop.nrows();
    let size = num.nrows();
    let cols = AxisTaps::new(a[0], pad, m, size);
    let rows = AxisTaps::new(a[1], pad, m, size);
    let mi = m as i64;
    let inside = |j: i64| (0..mi).contains(&j);
    let tap = |i: i64, j: i64| -> Option<Complex32> {
        (inside(i) && inside(j)).then(|| crop[[i as usize, j as usize]])
    };
    for (ri, (&i0, &wy)) in rows.lower.iter().zip(&rows.frac).enumerate() {
        let r = rows.start + ri;
        let (y0_in, y1_in) = (inside(i0), inside(i0 + 1));
        if !(y0_in || y1_in) {
            continue;
        }
        for (ci, (&j0, &wx)) in cols.lower.iter().zip(&cols.frac).enumerate() {
            let (x0_in, x1_in) = (inside(j0), inside(j0 + 1));
            if !(x0_in || x1_in) {
                continue;
            }
            let c = cols.start + ci;
            let wa = (1.0 - wx) * (1.0 - wy);
            let wb = wx * (1.0 - wy);
            let wc = (1.0 - wx) * wy;
            let wd = wx * wy;
            let z = Complex32::new(0.0, 0.0);
            let ia = tap(i0, j0).unwrap_or(z);
            let ib = tap(i0, j0 + 1).unwrap_or(z);
            let ic = tap(i0 + 1, j0).unwrap_or(z);
            let id = tap(i0 + 1, j0 + 1).unwrap_or(z);
            let re = wa * ia.re + wb * ib.re + wc * ic.re + wd * id.re;
            let im = wa * ia.im + wb * ib.im + wc * ic.im + wd * id.im;
            let ones = |b: bool| if b { 1.0f32 } else { 0.0 };
            let cover = wa * ones(y0_in && x0_in)
                + wb * ones(y0_in && x1_in)
                + wc * ones(y1_in && x0_in)
                + wd * ones(y1_in && x1_in);
            num[[r, c]] += Complex64::new(re as f64, im as f64);
            den[[r, c]] += cover as f64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array3;

    fn constant_patches(g: usize, n: usize, v: Complex32) -> Array3<Complex32> {
        Array3::from_elem((g, n, n), v)
    }

    #[test]
    fn box_coverage_counts_covered_pixels_inside_the_scan_box() {
        use ndarray::array;
        // Canvas 4×4 at origin [10, 20]: columns are x = 10..13, rows y = 20..23.
        let mut covered = Array2::from_elem((4, 4), true);
        covered[[1, 1]] = false; // (x 11, y 21): inside the box below
        covered[[3, 3]] = false; // (x 13, y 23): outside it
        // Box x ∈ [10.5, 12.5] → columns 1, 2; y ∈ [20, 22] → rows 0, 1, 2: 6 pixels, 1 missing.
        let (xs, ys) = (array![10.5, 12.5, 11.0], array![20.0, 22.0, 21.0]);
        let f = scan_box_coverage(covered.view(), [10.0, 20.0], xs.view(), ys.view());
        assert!((f - 5.0 / 6.0).abs() < 1e-12, "{f}");
        // Box pixels off the canvas count as uncovered: x up to 15 adds columns 4, 5 (off it).
        let xs = array![10.5, 15.0];
        let f = scan_box_coverage(covered.view(), [10.0, 20.0], xs.view(), ys.view());
        assert!((f - 8.0 / 15.0).abs() < 1e-12, "{f}");
        // The overlap decides coverage, not the object's value.
        let sums = shift_and_sum(
            constant_patches(1, 8, Complex32::new(0.0, 0.0)).view(),
            &[[5.0, 5.0]],
            4,
        )
        .unwrap();
        assert!(sums.covered().iter().all(|&b| b));
    }

    #[test]
    fn single_patch_lands_centred_with_origin() {
        let n = 16;
        let m = 8;
        let mut p = Array3::<Complex32>::zeros((1, n, n));
        // Mark the patch centre pixel (N/2, N/2) = object (y=20, x=30).
        p[[0, n / 2, n / 2]] = Complex32::new(2.0, -1.0);
        for r in n / 2 - m / 2..n / 2 + m / 2 {
            for c in n / 2 - m / 2..n / 2 + m / 2 {
                if (r, c) != (n / 2, n / 2) {
                    p[[0, r, c]] = Complex32::new(1.0, 0.0);
                }
            }
        }
        let st = reassemble_position(p.view(), &[[30.0, 20.0]], m).unwrap();
        assert_eq!(st.pad, 0);
        assert_eq!(st.object.dim(), (m, m));
        assert_eq!(st.origin, [30.0 - 4.0, 20.0 - 4.0]);
        // Object pixel (20, 30) is canvas (20 - origin_y, 30 - origin_x) = (4, 4).
        let v = st.object[[4, 4]];
        assert!((v.re - 2.0).abs() < 1e-6 && (v.im + 1.0).abs() < 1e-6);
        assert!((st.object[[0, 0]].re - 1.0).abs() < 1e-6);
    }

    #[test]
    fn constant_patches_average_to_constant_where_covered() {
        let v = Complex32::new(0.7, 0.3);
        let p = constant_patches(3, 12, v);
        let centres = [[10.0, 10.0], [13.5, 11.25], [8.2, 15.0]];
        let st = reassemble_position(p.view(), &centres, 6).unwrap();
        let sums = shift_and_sum(p.view(), &centres, 6).unwrap();
        let mut covered = 0;
        for ((idx, z), d) in st.object.indexed_iter().zip(sums.overlap.iter()) {
            if *d > 1e-3 {
                covered += 1;
                assert!(
                    (z.re - v.re).abs() < 1e-5 && (z.im - v.im).abs() < 1e-5,
                    "{idx:?}"
                );
            } else if *d == 0.0 {
                assert_eq!(*z, Complex32::new(0.0, 0.0));
            }
        }
        assert!(covered > 36);
        // Total coverage is conserved by the bilinear shift: 3 crops of 6x6.
        assert!((sums.overlap.sum() - 3.0 * 36.0).abs() < 1e-4);
    }

    #[test]
    fn integer_shift_matches_dense_translate() {
        // Compare the scatter kernel with the dense physics::translate on the padded canvas.
        let n = 10;
        let m = 6;
        let p = Array3::from_shape_fn((2, n, n), |(k, r, c)| {
            Complex32::new(
                (r * n + c) as f32 * 0.01 + k as f32,
                (r as f32 - c as f32) * 0.1,
            )
        });
        let centres = [[5.0, 5.0], [7.25, 3.5]];
        let sums = shift_and_sum(p.view(), &centres, m).unwrap();
        let size = sums.numerator.nrows();
        let pad = sums.pad;
        let (com_x, com_y) = (6.125, 4.25);
        let mut dense = Array2::<num_complex::Complex64>::zeros((size, size));
        for (k, c) in centres.iter().enumerate() {
            let mut canvas = Array2::<num_complex::Complex64>::zeros((size, size));
            for r in 0..m {
                for cc in 0..m {
                    let z = p[[k, n / 2 - m / 2 + r, n / 2 - m / 2 + cc]];
                    canvas[[pad + r, pad + cc]] =
                        num_complex::Complex64::new(z.re as f64, z.im as f64);
                }
            }
            dense += &ptycho_model::physics::translate(canvas.view(), c[0] - com_x, c[1] - com_y);
        }
        for (a, b) in sums.numerator.iter().zip(dense.iter()) {
            assert!((a - b).norm() < 1e-5, "{a} vs {b}");
        }
    }

    #[test]
    fn bad_inputs_are_errors() {
        let p = constant_patches(2, 8, Complex32::new(1.0, 0.0));
        assert!(matches!(
            reassemble_position(p.view(), &[[0.0, 0.0]], 4),
            Err(WorkflowError::CountMismatch { .. })
        ));
        assert!(matches!(
            reassemble_position(p.view(), &[[0.0, 0.0], [1.0, 1.0]], 5),
            Err(WorkflowError::BadCropSize { .. })
        ));
        assert!(matches!(
            reassemble_position(p.view(), &[[0.0, 0.0], [1.0, 1.0]], 10),
            Err(WorkflowError::BadCropSize { .. })
        ));
        assert!(matches!(
            reassemble_position(p.view(), &[[0.0, f64::NAN], [1.0, 1.0]], 4),
            Err(WorkflowError::NonFiniteCentre { index: 0, .. })
        ));
        let empty = Array3::<Complex32>::zeros((0, 8, 8));
        assert!(matches!(
            reassemble_position(empty.view(), &[], 4),
            Err(WorkflowError::NoPatches)
        ));
    }
}
