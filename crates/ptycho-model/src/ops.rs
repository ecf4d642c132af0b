//! The forward physics as differentiable Burn ops (spec §3.3, §4.7, §4.8), device-agnostic.
//!
//! Complex fields are carried as separate real and imaginary tensors of identical shape
//! `(B, C, N, N)`. The far-field amplitude is computed with matrix products against the centred
//! DFT matrix of [`crate::physics::centred_dft_matrix`], so it is differentiable on every backend.

use burn::tensor::{DType, Device, Tensor, TensorData, activation, ops::PadMode};
use ndarray::Array2;

use crate::physics;

/// Floor added to `|DFT2 ψ|²` before the square root, so that the gradient of the amplitude stays
/// finite where the spectrum vanishes (changes amplitudes by < 1e-6 absolute in DFT units).
pub const AMP_EPS: f64 = 1e-12;

/// Upload a real `(rows, cols)` ndarray as a `Tensor<2>` of float dtype `dtype`.
pub fn tensor2(a: &Array2<f64>, device: &Device, dtype: DType) -> Tensor<2> {
    let (r, c) = a.dim();
    let v: Vec<f64> = a.iter().copied().collect();
    Tensor::from_data(TensorData::new(v, [r, c]), (device, dtype))
}

/// Upload flat values with a shape as a `Tensor<D>` of float dtype `dtype`.
pub fn tensor_from<const D: usize>(
    v: Vec<f64>,
    shape: [usize; D],
    device: &Device,
    dtype: DType,
) -> Tensor<D> {
    Tensor::from_data(TensorData::new(v, shape), (device, dtype))
}

/// Real and imaginary parts of the centred DFT matrix `F` (see [`physics::centred_dft_matrix`]),
/// shaped `(1, 1, N, N)` for broadcasting over `(B, C)`.
#[derive(Clone, Debug)]
pub struct DftMats {
    pub re: Tensor<4>,
    pub im: Tensor<4>,
    pub n: usize,
}

impl DftMats {
    pub fn new(n: usize, device: &Device, dtype: DType) -> Self {
        let f = physics::centred_dft_matrix(n);
        let re = tensor2(&f.mapv(|z| z.re), device, dtype).reshape([1, 1, n, n]);
        let im = tensor2(&f.mapv(|z| z.im), device, dtype).reshape([1, 1, n, n]);
        Self { re, im, n }
    }
}

/// Complex batched matmul `(ar + i·ai)(br + i·bi)`.
fn cmatmul(ar: Tensor<4>, ai: Tensor<4>, br: Tensor<4>, bi: Tensor<4>) -> (Tensor<4>, Tensor<4>) {
    let re = ar.clone().matmul(br.clone()) - ai.clone().matmul(bi.clone());
    let im = ar.matmul(bi) + ai.matmul(br);
    (re, im)
}

/// Far-field **amplitude** `|fftshift(DFT2 ψ)| / N` of exit waves `(B, C, N, N)` (re, im):
/// `F · ψ · Fᵀ` with the centred DFT matrix, then `sqrt(|·|² + eps) / N` (the model uses
/// [`AMP_EPS`]; the array-level simulator passes 0).
pub fn far_field_amplitude(
    psi_re: Tensor<4>,
    psi_im: Tensor<4>,
    f: &DftMats,
    eps: f64,
) -> Tensor<4> {
    let (tr, ti) = cmatmul(f.re.clone(), f.im.clone(), psi_re, psi_im);
    let ftr = f.re.clone().swap_dims(2, 3);
    let fti = f.im.clone().swap_dims(2, 3);
    let (sr, si) = cmatmul(tr, ti, ftr, fti);
    let power = sr.powi_scalar(2) + si.powi_scalar(2);
    let power = if eps > 0.0 { power + eps } else { power };
    power.sqrt() / f.n as f64
}

/// Illumination `ψ = P · O` (complex product, probe `(1, 1, N, N)` broadcast over `(B, C)`),
/// then the optional 3×3 Gaussian blur (σ in pixels, 0 = off; REFLECT padding, 1-D weights
/// `softmax(−x²/(2σ²))`, x ∈ {−1, 0, 1}, real and imaginary parts separately) and the optional
/// multiplication by `mask` (the N/4 disk, `(1, 1, N, N)`).
pub fn illuminate(
    obj_re: Tensor<4>,
    obj_im: Tensor<4>,
    probe_re: Tensor<4>,
    probe_im: Tensor<4>,
    sigma: f64,
    mask: Option<Tensor<4>>,
) -> (Tensor<4>, Tensor<4>) {
    let mut re = obj_re.clone() * probe_re.clone() - obj_im.clone() * probe_im.clone();
    let mut im = obj_re * probe_im + obj_im * probe_re;
    if sigma != 0.0 {
        re = gaussian_blur3(re, sigma);
        im = gaussian_blur3(im, sigma);
    }
    if let Some(m) = mask {
        re = re * m.clone();
        im = im * m;
    }
    (re, im)
}

/// The 3-tap weights `softmax(−x²/(2σ²))` for x = −1, 0, 1.
pub fn gaussian3_weights(sigma: f64) -> [f64; 3] {
    let e = (-1.0 / (2.0 * sigma * sigma)).exp();
    let total = 1.0 + 2.0 * e;
    [e / total, 1.0 / total, e / total]
}

/// Separable 3×3 Gaussian blur with REFLECT padding (`d c b | a b c d`, edge not repeated).
pub fn gaussian_blur3(x: Tensor<4>, sigma: f64) -> Tensor<4> {
    let [_, _, h, w] = x.dims();
    let [w0, w1, w2] = gaussian3_weights(sigma);
    let p = x.pad([(1, 1), (1, 1)], PadMode::Reflect);
    // rows
    let r =
        p.clone().narrow(2, 0, h) * w0 + p.clone().narrow(2, 1, h) * w1 + p.narrow(2, 2, h) * w2;
    r.clone().narrow(3, 0, w) * w0 + r.clone().narrow(3, 1, w) * w1 + r.narrow(3, 2, w) * w2
}

/// Amplitude activation of the decoder core (spec §4.2).
pub fn amp_activation(x: Tensor<4>, act: ptycho_config::AmpActivation) -> Tensor<4> {
    use ptycho_config::AmpActivation as A;
    match act {
        A::Sigmoid => activation::sigmoid(x),
        A::Swish => activation::silu(x),
        A::Softplus => activation::softplus(x, 1.0),
        A::Relu => activation::relu(x),
    }
}

/// Phase activation `π·tanh(x)`.
pub fn phase_activation(x: Tensor<4>) -> Tensor<4> {
    activation::tanh(x) * std::f64::consts::PI
}

/// Flat `Vec<f64>` of a tensor (any float dtype).
pub fn to_vec_f64<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.into_data()
        .convert::<f64>()
        .try_to_vec::<f64>()
        .unwrap_or_default()
}
