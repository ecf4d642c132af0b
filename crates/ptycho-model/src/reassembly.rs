//! Group reassembly on the object canvas and re-extraction of patches (spec §4.6), per sample.
//!
//! A translation by `t = (tx, ty)` pixels is the separable product `R(ty) · img · R(tx)ᵀ` with the
//! bilinear interpolation matrices of [`physics::shift_matrix`] (corner taps outside the image
//! contribute 0). Zero-padding to the canvas (`pad_P`) and centre-cropping to N (`trim_N`) are folded
//! into those matrices, so merge and extract are two batched matmuls each. The matrices depend only
//! on the positions (inputs, not trained) and are built on the host.
//!
//! Positions are the relative offsets `r` fed to the model, `(B, C, 2)` with `[x, y]` in pixels.
//! Unlike the reference's batched branch (B·C ≥ 64 sums the whole batch into one canvas), every
//! group gets its own canvas.

use burn::tensor::{DType, Device, Tensor};

use crate::complex::ComplexTensor;
use crate::error::ModelError;
use crate::ops::tensor_from;
use crate::physics::shift_matrix;

/// Offsets of one batch on the host: `data[(b·C + c)·2 + k]`, k = 0 → x (column), 1 → y (row).
#[derive(Debug, Clone, PartialEq)]
pub struct Offsets {
    pub b: usize,
    pub c: usize,
    pub data: Vec<f64>,
}

impl Offsets {
    /// Read a `(B, C, 2)` positions tensor back to the host.
    pub fn from_tensor(positions: &Tensor<3>) -> Result<Self, ModelError> {
        let [b, c, two] = positions.dims();
        if two != 2 {
            return Err(ModelError::Shape {
                what: "positions",
                got: vec![b, c, two],
                expected: "(B, C, 2)".into(),
            });
        }
        let data = positions
            .to_data()
            .convert::<f64>()
            .try_to_vec::<f64>()
            .map_err(|e| ModelError::Readback {
                what: "positions",
                message: format!("{e:?}"),
            })?;
        Ok(Self { b, c, data })
    }

    fn get(&self, b: usize, c: usize) -> (f64, f64) {
        let i = (b * self.c + c) * 2;
        (self.data[i], self.data[i + 1])
    }
}

/// Stack per-(b, c) matrices `f(x, y) -> (rows × cols)` into a `(B, C, rows, cols)` tensor.
fn stack_mats(
    off: &Offsets,
    rows: usize,
    cols: usize,
    transpose: bool,
    mut f: impl FnMut(f64, f64) -> ndarray::Array2<f64>,
    device: &Device,
    dtype: DType,
) -> Tensor<4> {
    let mut v = Vec::with_capacity(off.b * off.c * rows * cols);
    for b in 0..off.b {
        for c in 0..off.c {
            let (x, y) = off.get(b, c);
            let m = f(x, y);
            if transpose {
                v.extend(m.t().iter().copied());
            } else {
                v.extend(m.iter().copied());
            }
        }
    }
    let (r, c) = if transpose {
        (cols, rows)
    } else {
        (rows, cols)
    };
    tensor_from(v, [off.b, off.c, r, c], device, dtype)
}

/// The central mask `CM` (1 on `[N/4, 3N/4)²`, 0 elsewhere) as `(1, 1, N, N)`.
pub fn central_mask(n: usize, device: &Device, dtype: DType) -> Tensor<4> {
    let lo = n / 4;
    let hi = 3 * n / 4;
    let v = (0..n * n)
        .map(|k| {
            let (i, j) = (k / n, k % n);
            if (lo..hi).contains(&i) && (lo..hi).contains(&j) {
                1.0
            } else {
                0.0
            }
        })
        .collect();
    tensor_from(v, [1, 1, n, n], device, dtype)
}

/// Merge matrices for `T(pad_P(Z), −r)`: rows `Ly = R_{P←N}(−ry + p)` `(B, C, P, N)` and
/// columns `LxT = R_{P←N}(−rx + p)ᵀ` `(B, C, N, P)`, with `p = (P − N)/2`.
fn merge_mats(
    off: &Offsets,
    n: usize,
    p_size: usize,
    device: &Device,
    dtype: DType,
) -> (Tensor<4>, Tensor<4>) {
    let pad = (p_size - n) as f64 / 2.0;
    let ly = stack_mats(
        off,
        p_size,
        n,
        false,
        |_, y| shift_matrix(p_size, n, -y + pad),
        device,
        dtype,
    );
    let lxt = stack_mats(
        off,
        p_size,
        n,
        true,
        |x, _| shift_matrix(p_size, n, -x + pad),
        device,
        dtype,
    );
    (ly, lxt)
}

/// Per-sample reassembly (object.big): for each group b,
/// `canvas_b = Σ_c T(pad_P(Z_bc), −r_bc) / (Σ_c T(pad_P(CM), −r_bc) + 0.001)`, real and imaginary
/// parts separately. `z` is `(B, C, N, N)`, `cm` the central mask of [`central_mask`]
/// `(1, 1, N, N)`; returns the canvas `(B, 1, P, P)`.
pub fn reassemble(z: ComplexTensor, off: &Offsets, p_size: usize, cm: Tensor<4>) -> ComplexTensor {
    let [_, _, n, _] = z.dims();
    let device = z.re.device();
    let dtype = z.re.dtype();
    let (ly, lxt) = merge_mats(off, n, p_size, &device, dtype);
    let merge = |z: Tensor<4>| ly.clone().matmul(z).matmul(lxt.clone()).sum_dim(1);
    let den = merge(cm) + 0.001;
    z.map(|part| merge(part) / den.clone())
}

/// Zero-pad `(B, 1, N, N)` to the canvas `(B, 1, P, P)` (object.big = false).
pub fn pad_to_canvas(z: Tensor<4>, p_size: usize) -> Tensor<4> {
    let [_, _, n, _] = z.dims();
    let lo = (p_size - n) / 2;
    let hi = p_size - n - lo;
    z.pad(
        [(lo, hi), (lo, hi)],
        burn::tensor::ops::PadMode::Constant(0.0),
    )
}

/// Centre crop of the canvas `(B, 1, P, P)` to `(B, 1, N, N)` (`trim_N`).
pub fn trim(canvas: Tensor<4>, n: usize) -> Tensor<4> {
    let [_, _, p_size, _] = canvas.dims();
    let lo = (p_size - n) / 2;
    canvas.narrow(2, lo, n).narrow(3, lo, n)
}

/// Re-extraction: each patch (b, c) is `trim_N(T(canvas_b, +r_bc))`, i.e.
/// `R_{N←P}(ry − p) · canvas_b · R_{N←P}(rx − p)ᵀ` (real and imaginary parts share the
/// interpolation matrices). Canvas `(B, 1, P, P)` → patches `(B, C, N, N)`.
pub fn extract(canvas: ComplexTensor, off: &Offsets, n: usize) -> ComplexTensor {
    let [_, _, p_size, _] = canvas.dims();
    let device = canvas.re.device();
    let dtype = canvas.re.dtype();
    let (ey, ext) = extract_mats(off, n, p_size, &device, dtype);
    canvas.map(|part| ey.clone().matmul(part).matmul(ext.clone()))
}

fn extract_mats(
    off: &Offsets,
    n: usize,
    p_size: usize,
    device: &Device,
    dtype: DType,
) -> (Tensor<4>, Tensor<4>) {
    let pad = (p_size - n) as f64 / 2.0;
    let ey = stack_mats(
        off,
        n,
        p_size,
        false,
        |_, y| shift_matrix(n, p_size, y - pad),
        device,
        dtype,
    );
    let ext = stack_mats(
        off,
        n,
        p_size,
        true,
        |x, _| shift_matrix(n, p_size, x - pad),
        device,
        dtype,
    );
    (ey, ext)
}
