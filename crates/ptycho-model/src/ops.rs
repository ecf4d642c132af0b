//! The forward physics as differentiable Burn ops (spec §3.3, §4.7, §4.8), device-agnostic.
//!
//! Complex fields are [`ComplexTensor`]s `(B, C, N, N)`. The far-field amplitude is computed with
//! matrix products against the centred DFT matrix of [`centred_dft_matrix`], so it is
//! differentiable on every backend.

use burn::tensor::{DType, Device, Tensor, TensorData, activation, ops::PadMode};
use ndarray::Array2;
use num_complex::Complex64;

use crate::complex::ComplexTensor;
use crate::error::ModelError;

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

/// Centred DFT matrix `F[k, n] = exp(−2πi (k − N/2) n / N)`: the fftshift folded into the rows, so
/// `F · ψ · Fᵀ` is `fftshift(DFT2 ψ)` for a square ψ.
pub fn centred_dft_matrix(n: usize) -> Array2<Complex64> {
    let half = (n / 2) as f64;
    Array2::from_shape_fn((n, n), |(k, j)| {
        let phase = -2.0 * std::f64::consts::PI * (k as f64 - half) * j as f64 / n as f64;
        Complex64::new(phase.cos(), phase.sin())
    })
}

/// The centred DFT matrix `F` of [`centred_dft_matrix`] and its transpose, shaped `(1, 1, N, N)`
/// for broadcasting over `(B, C)`.
#[derive(Clone, Debug)]
pub struct DftMats {
    pub f: ComplexTensor,
    /// `Fᵀ` (a transposed view of `f`).
    pub ft: ComplexTensor,
    pub n: usize,
}

impl DftMats {
    pub fn new(n: usize, device: &Device, dtype: DType) -> Self {
        let f = centred_dft_matrix(n);
        let re = tensor2(&f.mapv(|z| z.re), device, dtype).reshape([1, 1, n, n]);
        let im = tensor2(&f.mapv(|z| z.im), device, dtype).reshape([1, 1, n, n]);
        let f = ComplexTensor::new(re, im);
        let ft = f.clone().swap_last();
        Self { f, ft, n }
    }
}

/// Far-field **amplitude** `|fftshift(DFT2 ψ)| / N` of exit waves ψ `(B, C, N, N)`:
/// `F · ψ · Fᵀ` with the centred DFT matrix, then `sqrt(|·|² + eps) / N` (the model uses
/// [`AMP_EPS`]; the array-level simulator passes 0).
pub fn far_field_amplitude(psi: ComplexTensor, f: &DftMats, eps: f64) -> Tensor<4> {
    let spectrum = f.f.clone().matmul(psi).matmul(f.ft.clone());
    let power = spectrum.norm_sqr();
    let power = if eps > 0.0 { power + eps } else { power };
    power.sqrt() / f.n as f64
}

/// Illumination `ψ = O · P` (complex product, probe `(1, 1, N, N)` broadcast over `(B, C)`),
/// then the optional 3×3 Gaussian blur (σ in pixels, 0 = off; REFLECT padding, 1-D weights
/// `softmax(−x²/(2σ²))`, x ∈ {−1, 0, 1}, real and imaginary parts separately) and the optional
/// multiplication by `mask` (the N/4 disk, `(1, 1, N, N)`).
pub fn illuminate(
    obj: ComplexTensor,
    probe: ComplexTensor,
    sigma: f64,
    mask: Option<Tensor<4>>,
) -> ComplexTensor {
    let mut psi = obj * probe;
    if sigma != 0.0 {
        psi = psi.map(|t| gaussian_blur3(t, sigma));
    }
    if let Some(m) = mask {
        psi = psi.mul_real(m);
    }
    psi
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

/// Flat `Vec<f64>` of a tensor (any float dtype), read back from its device.
pub fn to_vec_f64<const D: usize>(t: Tensor<D>) -> Result<Vec<f64>, ModelError> {
    read_back(t, "tensor")
}

/// [`to_vec_f64`] naming the tensor (`what`) in the error.
pub fn read_back<const D: usize>(t: Tensor<D>, what: &'static str) -> Result<Vec<f64>, ModelError> {
    let err = |message: String| ModelError::Readback { what, message };
    t.try_into_data()
        .map_err(|e| err(format!("{e:?}")))?
        .convert::<f64>()
        .try_to_vec::<f64>()
        .map_err(|e| err(format!("{e:?}")))
}
