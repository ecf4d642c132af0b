//! The f32 kernels of the 3×3, stride-1, padding-1 convolution on contiguous NCHW buffers:
//! forward (bias and ReLU fused), input gradient (a forward convolution of the output gradient
//! with the flipped, transposed kernel: no scatter), weight and bias gradient (one accumulating
//! gemm per image into a per-thread sum).
//!
//! Every matrix product goes through the `gemm` crate (the one burn-flex uses), whose entry point
//! is `unsafe` because it takes raw pointers and strides. This module is the only place that calls
//! it: [`matmul`] checks every extent against its slice before the call.
//!
//! Buffers: the im2col matrix of one image is `(9·C) × (H·W)`, kept in a per-thread buffer that
//! grows to the largest layer and is then reused (no allocation per call or tile). Work is split
//! over the batch, one contiguous chunk of images per thread, so both cores are busy in every
//! phase; a batch smaller than the thread count runs image by image with gemm's own threads.
#![allow(unsafe_code)]

use std::cell::RefCell;

use rayon::prelude::*;

/// Shape of one convolution: batch, input and output channels, height and width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Shape {
    pub b: usize,
    pub cin: usize,
    pub cout: usize,
    pub h: usize,
    pub w: usize,
}

impl Shape {
    fn hw(&self) -> usize {
        self.h * self.w
    }
    /// Rows of the im2col matrix of the input: 9·Cin.
    fn k(&self) -> usize {
        9 * self.cin
    }
}

thread_local! {
    static COL: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with this thread's im2col buffer, grown to `len` (never shrunk).
fn with_col<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    COL.with(|cell| {
        let mut v = cell.borrow_mut();
        if v.len() < len {
            v.resize(len, 0.0);
        }
        f(&mut v[..len])
    })
}

/// im2col of one image `x` (`c × h × w`) for a 3×3 kernel with zero padding 1:
/// `col[(ci·9 + ky·3 + kx)·hw + y·w + x] = x[ci, y + ky − 1, x + kx − 1]` (0 outside).
///
/// Each of the 9 rows of a channel is the whole plane shifted by `(ky − 1)·w + kx − 1`: one copy
/// per row, then the wrapped-around border row and column are zeroed.
fn im2col(x: &[f32], c: usize, h: usize, w: usize, col: &mut [f32]) {
    let hw = h * w;
    debug_assert_eq!(x.len(), c * hw);
    debug_assert_eq!(col.len(), 9 * c * hw);
    for ci in 0..c {
        let src = &x[ci * hw..(ci + 1) * hw];
        for ky in 0..3 {
            for kx in 0..3 {
                let row = &mut col[((ci * 9) + ky * 3 + kx) * hw..][..hw];
                let off = (ky * w + kx) as isize - (w + 1) as isize;
                let o = off.unsigned_abs().min(hw);
                if off >= 0 {
                    row[..hw - o].copy_from_slice(&src[o..]);
                    row[hw - o..].fill(0.0);
                } else {
                    row[o..].copy_from_slice(&src[..hw - o]);
                    row[..o].fill(0.0);
                }
                match ky {
                    0 => row[..w].fill(0.0),
                    2 => row[hw - w..].fill(0.0),
                    _ => {}
                }
                match kx {
                    0 => row.iter_mut().step_by(w).for_each(|v| *v = 0.0),
                    2 => row[w - 1..].iter_mut().step_by(w).for_each(|v| *v = 0.0),
                    _ => {}
                }
            }
        }
    }
}

/// A strided view of a row-major-or-not matrix for [`matmul`].
#[derive(Clone, Copy)]
struct Mat {
    rows: usize,
    cols: usize,
    /// Stride between rows and between columns, in elements.
    rs: usize,
    cs: usize,
}

impl Mat {
    fn row_major(rows: usize, cols: usize) -> Self {
        Self {
            rows,
            cols,
            rs: cols,
            cs: 1,
        }
    }
    fn transposed(self) -> Self {
        Self {
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
        }
    }
    /// Smallest slice length that holds every element.
    fn span(&self) -> usize {
        if self.rows == 0 || self.cols == 0 {
            0
        } else {
            (self.rows - 1) * self.rs + (self.cols - 1) * self.cs + 1
        }
    }
}

/// `dst = (accumulate ? dst : 0) + lhs · rhs`, all f32, with gemm's threads when `threads > 1`.
///
/// Panics unless the extents agree and every slice holds its matrix.
fn matmul(
    dst: &mut [f32],
    d: Mat,
    accumulate: bool,
    lhs: &[f32],
    l: Mat,
    rhs: &[f32],
    r: Mat,
    threads: usize,
) {
    assert!(d.rows == l.rows && d.cols == r.cols && l.cols == r.rows);
    assert!(d.span() <= dst.len() && l.span() <= lhs.len() && r.span() <= rhs.len());
    // gemm writes dst[i·rs + j·cs] for every i < m, j < n; the two strides of `d` must not make
    // distinct (i, j) collide, which holds for the row-major (and transposed) views used here.
    assert!((d.cs == 1 && d.rs >= d.cols) || (d.rs == 1 && d.cs >= d.rows));
    let par = if threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: the assertions above show that every index gemm reads (`lhs`, `rhs`) or writes
    // (`dst`) lies inside its slice, and that no two output elements alias; `dst` is borrowed
    // mutably for the call, so nothing else reads or writes it; the inputs are immutable borrows
    // that cannot overlap `dst`. Strides fit `isize` because they are bounded by slice lengths.
    unsafe {
        gemm::gemm(
            d.rows,
            d.cols,
            l.cols,
            dst.as_mut_ptr(),
            d.cs as isize,
            d.rs as isize,
            accumulate,
            lhs.as_ptr(),
            l.cs as isize,
            l.rs as isize,
            rhs.as_ptr(),
            r.cs as isize,
            r.rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            par,
        );
    }
}

/// Images per thread: the batch in `threads` contiguous chunks (the last may be shorter).
fn chunk_len(b: usize, threads: usize) -> usize {
    b.div_ceil(threads.max(1)).max(1)
}

/// One image's forward: `out (cout × hw) = wmat (cout × 9cin) · im2col(x)` then bias and ReLU.
fn forward_image(
    x: &[f32],
    wmat: &[f32],
    bias: Option<&[f32]>,
    relu: bool,
    s: Shape,
    out: &mut [f32],
    threads: usize,
) {
    let hw = s.hw();
    with_col(s.k() * hw, |col| {
        im2col(x, s.cin, s.h, s.w, col);
        matmul(
            out,
            Mat::row_major(s.cout, hw),
            false,
            wmat,
            Mat::row_major(s.cout, s.k()),
            col,
            Mat::row_major(s.k(), hw),
            threads,
        );
    });
    if bias.is_some() || relu {
        for (o, plane) in out.chunks_exact_mut(hw).enumerate() {
            let b = bias.map_or(0.0, |b| b[o]);
            if relu {
                plane.iter_mut().for_each(|v| *v = (*v + b).max(0.0));
            } else {
                plane.iter_mut().for_each(|v| *v += b);
            }
        }
    }
}

/// Output channels up to which a layer is computed directly (shifted multiply-adds over the
/// planes, no im2col): a gemm with so few rows would spend its time packing.
const DIRECT_MAX_COUT: usize = 4;

/// The valid output range `lo..hi` along one axis of length `n` for tap offset `k − 1`.
fn tap_range(k: usize, n: usize) -> (usize, usize) {
    match k {
        0 => (1, n),
        1 => (0, n),
        _ => (0, n.saturating_sub(1)),
    }
}

/// Direct forward of one image for few output channels: `out[o] += w[o, c, t] · shift_t(x[c])`.
fn direct_forward_image(
    x: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    relu: bool,
    s: Shape,
    out: &mut [f32],
) {
    let (h, w, hw) = (s.h, s.w, s.hw());
    for o in 0..s.cout {
        let dst = &mut out[o * hw..(o + 1) * hw];
        dst.fill(bias.map_or(0.0, |b| b[o]));
        for c in 0..s.cin {
            let src = &x[c * hw..(c + 1) * hw];
            for ky in 0..3 {
                let (y0, y1) = tap_range(ky, h);
                for kx in 0..3 {
                    let (x0, x1) = tap_range(kx, w);
                    let wv = weight[(o * s.cin + c) * 9 + ky * 3 + kx];
                    for y in y0..y1 {
                        let sy = y + ky - 1;
                        let d = &mut dst[y * w + x0..y * w + x1];
                        let r = &src[sy * w + x0 + kx - 1..sy * w + x1 + kx - 1];
                        d.iter_mut().zip(r).for_each(|(a, b)| *a += wv * b);
                    }
                }
            }
        }
        if relu {
            dst.iter_mut().for_each(|v| *v = v.max(0.0));
        }
    }
}

/// `⟨a, b⟩` in 8 independent lanes (a sequential f32 sum would not vectorise).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(p, q)| p * q)
        .sum();
    for (u, v) in ca.zip(cb) {
        for l in 0..8 {
            lanes[l] += u[l] * v[l];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// Direct weight and bias gradient of one image for few output channels, accumulated into
/// `dw` and `db`: `dw[o, c, t] += ⟨dz[o], shift_t(x[c])⟩`.
fn direct_weight_grad_image(x: &[f32], dz: &[f32], s: Shape, dw: &mut [f32], db: &mut [f32]) {
    let (h, w, hw) = (s.h, s.w, s.hw());
    for o in 0..s.cout {
        let g = &dz[o * hw..(o + 1) * hw];
        db[o] += g.iter().sum::<f32>();
        for c in 0..s.cin {
            let src = &x[c * hw..(c + 1) * hw];
            for ky in 0..3 {
                let (y0, y1) = tap_range(ky, h);
                for kx in 0..3 {
                    let (x0, x1) = tap_range(kx, w);
                    let mut acc = 0.0f32;
                    for y in y0..y1 {
                        let sy = y + ky - 1;
                        let a = &g[y * w + x0..y * w + x1];
                        let b = &src[sy * w + x0 + kx - 1..sy * w + x1 + kx - 1];
                        acc += dot(a, b);
                    }
                    dw[(o * s.cin + c) * 9 + ky * 3 + kx] += acc;
                }
            }
        }
    }
}

/// Forward convolution of `x` (`b × cin × h × w`) with `weight` (`cout × cin × 3 × 3`, i.e.
/// `cout × 9cin` row-major), plus `bias` (`cout`) and an optional ReLU. Returns `b × cout × h × w`.
pub(crate) fn forward(
    x: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    relu: bool,
    s: Shape,
) -> Vec<f32> {
    assert_eq!(x.len(), s.b * s.cin * s.hw());
    assert_eq!(weight.len(), s.cout * s.k());
    assert!(bias.is_none_or(|b| b.len() == s.cout));
    let mut out = vec![0.0f32; s.b * s.cout * s.hw()];
    let (in_img, out_img) = (s.cin * s.hw(), s.cout * s.hw());
    // A run of images (one thread's chunk, or the whole batch with gemm's threads).
    let run = |xs: &[f32], os: &mut [f32], threads: usize| {
        for (o1, x1) in os.chunks_exact_mut(out_img).zip(xs.chunks_exact(in_img)) {
            if s.cout <= DIRECT_MAX_COUT {
                direct_forward_image(x1, weight, bias, relu, s, o1);
            } else {
                forward_image(x1, weight, bias, relu, s, o1, threads);
            }
        }
    };
    let threads = rayon::current_num_threads();
    if s.b >= threads && threads > 1 {
        let per = chunk_len(s.b, threads);
        out.par_chunks_mut(per * out_img)
            .zip(x.par_chunks(per * in_img))
            .for_each(|(o, xi)| run(xi, o, 1));
    } else {
        run(x, &mut out, threads);
    }
    out
}

/// The kernel of the input gradient: `wf[ci, o·9 + (8 − t)] = w[o, ci·9 + t]` (transposed in
/// the channels, flipped in space), so that `dx = conv(dz, wf)` with the same padding.
fn flipped_transposed(weight: &[f32], cin: usize, cout: usize) -> Vec<f32> {
    let mut wf = vec![0.0f32; weight.len()];
    for o in 0..cout {
        for ci in 0..cin {
            for t in 0..9 {
                wf[ci * cout * 9 + o * 9 + (8 - t)] = weight[(o * cin + ci) * 9 + t];
            }
        }
    }
    wf
}

/// Input gradient: `dx = conv(dz, flip(wᵀ))`, `dz` being `b × cout × h × w`.
pub(crate) fn input_grad(dz: &[f32], weight: &[f32], s: Shape) -> Vec<f32> {
    let wf = flipped_transposed(weight, s.cin, s.cout);
    let t = Shape {
        cin: s.cout,
        cout: s.cin,
        ..s
    };
    forward(dz, &wf, None, false, t)
}

/// Weight and bias gradients: `dw (cout × 9cin) = Σ_b dz_b · im2col(x_b)ᵀ`, `db = Σ_{b,h,w} dz`.
pub(crate) fn weight_grad(x: &[f32], dz: &[f32], s: Shape) -> (Vec<f32>, Vec<f32>) {
    assert_eq!(x.len(), s.b * s.cin * s.hw());
    assert_eq!(dz.len(), s.b * s.cout * s.hw());
    let (hw, k) = (s.hw(), s.k());
    let (in_img, out_img) = (s.cin * hw, s.cout * hw);
    // Accumulates the images of one chunk into (dw, db). The gemm path sums into `dw`
    // transposed (`9cin × cout`, i.e. a column-major `cout × 9cin` destination): gemm then
    // tiles the few output channels as rows and streams the im2col rows, which measured
    // faster than the row-major destination (plans/BENCHMARKS.md); [`weight_grad`] transposes
    // the sum back once.
    let chunk = |xs: &[f32], dzs: &[f32], threads: usize| -> (Vec<f32>, Vec<f32>) {
        let mut dw = vec![0.0f32; s.cout * k];
        let mut db = vec![0.0f32; s.cout];
        for (i, (x1, dz1)) in xs
            .chunks_exact(in_img)
            .zip(dzs.chunks_exact(out_img))
            .enumerate()
        {
            if s.cout <= DIRECT_MAX_COUT {
                direct_weight_grad_image(x1, dz1, s, &mut dw, &mut db);
                continue;
            }
            with_col(k * hw, |col| {
                im2col(x1, s.cin, s.h, s.w, col);
                matmul(
                    &mut dw,
                    Mat::row_major(k, s.cout).transposed(),
                    i > 0,
                    dz1,
                    Mat::row_major(s.cout, hw),
                    col,
                    Mat::row_major(k, hw).transposed(),
                    threads,
                );
            });
            for (o, plane) in dz1.chunks_exact(hw).enumerate() {
                db[o] += plane.iter().sum::<f32>();
            }
        }
        (dw, db)
    };
    let threads = rayon::current_num_threads();
    let (mut dw, db) = if s.b >= threads && threads > 1 {
        let per = chunk_len(s.b, threads);
        x.par_chunks(per * in_img)
            .zip(dz.par_chunks(per * out_img))
            .map(|(xs, dzs)| chunk(xs, dzs, 1))
            .reduce_with(|(mut a, mut ab), (b, bb)| {
                a.iter_mut().zip(&b).for_each(|(u, v)| *u += v);
                ab.iter_mut().zip(&bb).for_each(|(u, v)| *u += v);
                (a, ab)
            })
            .expect("a non-empty batch has one chunk")
    } else {
        chunk(x, dz, threads)
    };
    if s.cout > DIRECT_MAX_COUT {
        // `9cin × cout` → `cout × 9cin`.
        let t = dw;
        dw = vec![0.0f32; t.len()];
        for (kk, row) in t.chunks_exact(s.cout).enumerate() {
            for (o, v) in row.iter().enumerate() {
                dw[o * k + kk] = *v;
            }
        }
    }
    (dw, db)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Direct (textbook) convolution, f64 accumulation.
    fn naive(x: &[f32], w: &[f32], bias: Option<&[f32]>, relu: bool, s: Shape) -> Vec<f32> {
        let (h, wd) = (s.h as isize, s.w as isize);
        let mut out = vec![0.0f32; s.b * s.cout * s.h * s.w];
        for b in 0..s.b {
            for o in 0..s.cout {
                for y in 0..h {
                    for xx in 0..wd {
                        let mut acc = bias.map_or(0.0, |bb| bb[o] as f64);
                        for c in 0..s.cin {
                            for ky in 0..3isize {
                                for kx in 0..3isize {
                                    let (sy, sx) = (y + ky - 1, xx + kx - 1);
                                    if sy < 0 || sy >= h || sx < 0 || sx >= wd {
                                        continue;
                                    }
                                    let xi =
                                        ((b * s.cin + c) * s.h + sy as usize) * s.w + sx as usize;
                                    let wi = (o * s.cin + c) * 9 + (ky * 3 + kx) as usize;
                                    acc += x[xi] as f64 * w[wi] as f64;
                                }
                            }
                        }
                        let v = if relu { acc.max(0.0) } else { acc };
                        out[((b * s.cout + o) * s.h + y as usize) * s.w + xx as usize] = v as f32;
                    }
                }
            }
        }
        out
    }

    fn lcg(n: usize, seed: u64) -> Vec<f32> {
        let mut st = seed;
        (0..n)
            .map(|_| {
                st = st
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((st >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    fn max_diff(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len());
        a.iter()
            .zip(b)
            .map(|(u, v)| (u - v).abs())
            .fold(0.0, f32::max)
    }

    #[test]
    fn forward_matches_the_direct_convolution() {
        for (i, &(b, cin, cout, h, w)) in [
            (1, 1, 1, 1, 1),
            (1, 1, 3, 2, 5),
            (3, 2, 4, 7, 3),
            (5, 4, 8, 6, 6),
            (2, 3, 2, 1, 9),
            (2, 3, 6, 5, 7),
            (3, 1, 9, 1, 4),
            // More input channels: odd and even sizes, a single pixel, one row.
            (2, 17, 6, 5, 7),
            (1, 16, 8, 1, 1),
            (2, 16, 5, 3, 8),
            (3, 20, 7, 8, 8),
        ]
        .iter()
        .enumerate()
        {
            let s = Shape { b, cin, cout, h, w };
            let x = lcg(b * cin * h * w, 1 + i as u64);
            let wt = lcg(cout * cin * 9, 100 + i as u64);
            let bias = lcg(cout, 200 + i as u64);
            for relu in [false, true] {
                let got = forward(&x, &wt, Some(&bias), relu, s);
                let want = naive(&x, &wt, Some(&bias), relu, s);
                let e = max_diff(&got, &want);
                assert!(e < 1e-5, "{s:?} relu={relu}: {e}");
            }
        }
    }

    #[test]
    fn gradients_are_the_adjoint_of_the_forward() {
        // Direct (cout ≤ 4) and im2col paths, narrow and wide.
        adjoint(4, 5);
        adjoint(6, 5);
        adjoint(6, 18);
        adjoint(20, 18);
    }

    /// <conv(x; w), dz> = <x, input_grad(dz; w)> = <w, weight_grad(x, dz)>.
    fn adjoint(cout: usize, cin: usize) {
        let s = Shape {
            b: 3,
            cin,
            cout,
            h: 7,
            w: 6,
        };
        let x = lcg(s.b * s.cin * 42, 7);
        let wt = lcg(s.cout * s.cin * 9, 8);
        let dz = lcg(s.b * s.cout * 42, 9);
        let y = forward(&x, &wt, None, false, s);
        let dot = |a: &[f32], b: &[f32]| {
            a.iter()
                .zip(b)
                .map(|(u, v)| *u as f64 * *v as f64)
                .sum::<f64>()
        };
        let lhs = dot(&y, &dz);
        let dx = input_grad(&dz, &wt, s);
        let (dw, db) = weight_grad(&x, &dz, s);
        assert!((lhs - dot(&x, &dx)).abs() < 1e-4 * lhs.abs().max(1.0));
        assert!((lhs - dot(&wt, &dw)).abs() < 1e-4 * lhs.abs().max(1.0));
        let want_db: Vec<f32> = (0..s.cout)
            .map(|o| {
                (0..s.b)
                    .map(|b| dz[(b * s.cout + o) * 42..][..42].iter().sum::<f32>())
                    .sum()
            })
            .collect();
        assert!(max_diff(&db, &want_db) < 1e-4);
    }
}

#[cfg(test)]
mod timing {
    use super::*;

    /// Phase times of one layer (not a test of anything: `cargo test --release -p ptycho-model
    /// --lib conv::kernel::timing -- --ignored --nocapture`).
    #[test]
    #[ignore]
    fn phases() {
        let mut tot = [0.0f64; 3];
        // The N = 64, nfs = 2 model: encoder, one decoder (run twice), their heads.
        let layers = [
            (1, 64, 64, 1),
            (64, 64, 64, 1),
            (64, 128, 32, 1),
            (128, 128, 32, 1),
            (128, 256, 16, 1),
            (256, 256, 16, 1),
            (256, 128, 8, 2),
            (128, 128, 8, 2),
            (128, 64, 16, 2),
            (64, 64, 16, 2),
            (60, 1, 32, 2),
            (4, 64, 32, 2),
            (64, 64, 32, 2),
            (64, 1, 64, 2),
        ];
        for &(cin, cout, h, times) in &layers {
            let s = Shape {
                b: 16,
                cin,
                cout,
                h,
                w: h,
            };
            let x: Vec<f32> = (0..s.b * cin * h * h)
                .map(|i| ((i * 7919) % 1000) as f32 / 1e3)
                .collect();
            let wt: Vec<f32> = (0..cout * cin * 9)
                .map(|i| ((i * 104729) % 1000) as f32 / 1e3 - 0.5)
                .collect();
            let dz: Vec<f32> = (0..s.b * cout * h * h)
                .map(|i| ((i * 31) % 1000) as f32 / 1e3 - 0.5)
                .collect();
            let t = |f: &dyn Fn()| {
                f();
                let t0 = std::time::Instant::now();
                for _ in 0..5 {
                    f();
                }
                t0.elapsed().as_secs_f64() / 5.0 * 1e3
            };
            let gf = 2.0 * (s.b * cout * cin * 9 * h * h) as f64 / 1e9;
            let f = t(&|| drop(forward(&x, &wt, None, true, s)));
            let dx = t(&|| drop(input_grad(&dz, &wt, s)));
            let dw = t(&|| drop(weight_grad(&x, &dz, s)));
            tot[0] += f * times as f64;
            tot[1] += if cin > 4 { dx * times as f64 } else { 0.0 };
            tot[2] += dw * times as f64;
            println!(
                "{cin}→{cout}@{h}: fwd {f:.2} ms ({:.0} GF/s), dx {dx:.2} ms ({:.0}), dw {dw:.2} ms ({:.0})",
                gf / f * 1e3,
                gf / dx * 1e3,
                gf / dw * 1e3
            );
        }
        println!(
            "model total: fwd {:.1} ms, dx {:.1} ms, dw {:.1} ms",
            tot[0], tot[1], tot[2]
        );
    }
}
