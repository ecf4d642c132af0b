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
    let threads = rayon::current_num_threads();
    if s.b >= threads && threads > 1 {
        let per = chunk_len(s.b, threads);
        out.par_chunks_mut(per * out_img)
            .zip(x.par_chunks(per * in_img))
            .for_each(|(o, xi)| {
                for (o1, x1) in o.chunks_exact_mut(out_img).zip(xi.chunks_exact(in_img)) {
                    forward_image(x1, weight, bias, relu, s, o1, 1);
                }
            });
    } else {
        for (o1, x1) in out.chunks_exact_mut(out_img).zip(x.chunks_exact(in_img)) {
            forward_image(x1, weight, bias, relu, s, o1, threads);
        }
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
    // Accumulates the images of one chunk into (dw, db).
    let chunk = |xs: &[f32], dzs: &[f32], threads: usize| -> (Vec<f32>, Vec<f32>) {
        let mut dw = vec![0.0f32; s.cout * k];
        let mut db = vec![0.0f32; s.cout];
        for (i, (x1, dz1)) in xs
            .chunks_exact(in_img)
            .zip(dzs.chunks_exact(out_img))
            .enumerate()
        {
            with_col(k * hw, |col| {
                im2col(x1, s.cin, s.h, s.w, col);
                matmul(
                    &mut dw,
                    Mat::row_major(s.cout, k),
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
    if s.b >= threads && threads > 1 {
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
    }
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
                assert!(max_diff(&got, &want) < 1e-5, "{s:?} relu={relu}");
            }
        }
    }

    #[test]
    fn gradients_are_the_adjoint_of_the_forward() {
        // <conv(x; w), dz> = <x, input_grad(dz; w)> = <w, weight_grad(x, dz)>.
        let s = Shape {
            b: 3,
            cin: 5,
            cout: 4,
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
