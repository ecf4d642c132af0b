//! The PtychoPINN U-Net (spec §4.2–4.5) and its two views, `autoencoder` (training) and
//! `diffraction_to_obj` (inference), sharing one set of weights.
//!
//! Layouts are channels-first: diffraction input `x_scaled = s·X` (amplitudes) `(B, C, N, N)`,
//! offsets `(B, C, 2)` (`[x, y]` pixels), object `(B, 1, N, N)` as re/im tensors.

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Initializer, PaddingConfig2d};
use burn::tensor::module::{interpolate, max_pool2d};
use burn::tensor::ops::{InterpolateMode, InterpolateOptions, MaxPoolOptions, PadMode};
use burn::tensor::{DType, Device, Tensor, activation};
use ndarray::Array2;
use num_complex::Complex64;
use ptycho_config::{AmpActivation, Params};

use crate::error::ModelError;
use crate::ops::{self, DftMats, tensor_from, tensor2};
use crate::physics;
use crate::reassembly::{self, Offsets};

fn conv3(cin: usize, cout: usize, device: &Device) -> Conv2d {
    let mut c = Conv2dConfig::new([cin, cout], [3, 3])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .with_initializer(Initializer::XavierUniform { gain: 1.0 })
        .init(device);
    // Keras: Glorot-uniform kernels, zero biases.
    c.bias = Some(Param::from_tensor(Tensor::zeros([cout], device)));
    c
}

/// Conv(3×3, ReLU) → Conv(3×3, ReLU) → MaxPool 2×2 ('same' = plain for even sizes).
#[derive(Module, Debug)]
pub struct ConvPool {
    c1: Conv2d,
    c2: Conv2d,
}

impl ConvPool {
    fn new(cin: usize, nf: usize, device: &Device) -> Self {
        Self {
            c1: conv3(cin, nf, device),
            c2: conv3(nf, nf, device),
        }
    }
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = activation::relu(self.c1.forward(x));
        let x = activation::relu(self.c2.forward(x));
        max_pool2d(x, MaxPoolOptions::new([2, 2]))
    }
}

/// Conv(3×3, ReLU) → Conv(3×3, ReLU) → nearest-neighbour 2× upsampling.
#[derive(Module, Debug)]
pub struct ConvUp {
    c1: Conv2d,
    c2: Conv2d,
}

impl ConvUp {
    fn new(cin: usize, nf: usize, device: &Device) -> Self {
        Self {
            c1: conv3(cin, nf, device),
            c2: conv3(nf, nf, device),
        }
    }
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = activation::relu(self.c1.forward(x));
        let x = activation::relu(self.c2.forward(x));
        let [_, _, h, w] = x.dims();
        interpolate(
            x,
            InterpolateOptions::new(InterpolateMode::Nearest).with_output_size([2 * h, 2 * w]),
        )
    }
}

/// One decoder (amplitude or phase): Conv_Up blocks and the head (`create_decoder_last`).
#[derive(Module, Debug)]
pub struct Decoder {
    blocks: Vec<ConvUp>,
    /// Core conv (pad_object): first 32·nfs − 4 channels → C_out at N/2.
    conv1: Option<Conv2d>,
    /// Border / full-frame branch: Conv_Up_{w_b} then conv2 → C_out.
    up_last: Option<ConvUp>,
    conv2: Option<Conv2d>,
}

const C_OUTER: usize = 4;

impl Decoder {
    fn new(h: &Hyper, device: &Device) -> Self {
        let nfs = h.nfs;
        let widths: Vec<usize> = match h.n {
            64 => vec![64, 32],
            128 => vec![128, 64, 32],
            _ => vec![256, 128, 64, 32],
        };
        let mut blocks = Vec::new();
        let mut cin = 128 * nfs;
        for w in widths {
            blocks.push(ConvUp::new(cin, w * nfs, device));
            cin = w * nfs;
        }
        let f = 32 * nfs;
        let wb = nfs * 2048 / h.n;
        let (conv1, up_last, conv2) = if h.pad_object {
            let conv1 = Some(conv3(f - C_OUTER, h.c_out, device));
            if h.probe_big {
                (
                    conv1,
                    Some(ConvUp::new(C_OUTER, wb, device)),
                    Some(conv3(wb, h.c_out, device)),
                )
            } else {
                (conv1, None, None)
            }
        } else {
            (
                None,
                Some(ConvUp::new(f, wb, device)),
                Some(conv3(wb, h.c_out, device)),
            )
        };
        Self {
            blocks,
            conv1,
            up_last,
            conv2,
        }
    }

    /// `act` is applied to the core (or full frame without pad_object); the border uses swish.
    fn forward(&self, z: Tensor<4>, h: &Hyper, act: impl Fn(Tensor<4>) -> Tensor<4>) -> Tensor<4> {
        let mut x = z;
        for b in &self.blocks {
            x = b.forward(x);
        }
        let [_, f, _, _] = x.dims();
        let n = h.n;
        match (&self.conv1, &self.up_last, &self.conv2) {
            (Some(conv1), border_up, border_conv) => {
                let core = act(conv1.forward(x.clone().narrow(1, 0, f - C_OUTER)));
                let q = n / 4;
                let x1 = core.pad([(q, q), (q, q)], PadMode::Constant(0.0));
                match (border_up, border_conv) {
                    (Some(up), Some(c2)) => {
                        let x2 = activation::silu(c2.forward(up.forward(x.narrow(
                            1,
                            f - C_OUTER,
                            C_OUTER,
                        ))));
                        let bm = border_mask(n, &x2.device(), x2.dtype());
                        x1 + x2 * bm
                    }
                    _ => x1,
                }
            }
            (None, Some(up), Some(c2)) => act(c2.forward(up.forward(x))),
            _ => unreachable!("decoder head is built with conv1 or conv2"),
        }
    }
}

fn border_mask(n: usize, device: &Device, dtype: DType) -> Tensor<4> {
    reassembly::central_mask(n, device, dtype).neg() + 1.0
}

/// Architecture constants and physics constants, rebuilt from `Params` (not trained, not saved
/// as weights: an archive stores the params, incl. the probe, and rebuilds them).
#[derive(Debug, Clone)]
pub struct Hyper {
    pub n: usize,
    pub c: usize,
    pub c_out: usize,
    pub nfs: usize,
    pub p_size: usize,
    pub object_big: bool,
    pub probe_big: bool,
    pub pad_object: bool,
    pub probe_mask: bool,
    pub sigma: f64,
    pub amp_act: AmpActivation,
    /// Intensity scale s (input divided by s, predicted amplitude multiplied by s).
    pub s: f64,
    /// Normalised probe, row-major N×N, real and imaginary parts.
    pub probe_re: Vec<f64>,
    pub probe_im: Vec<f64>,
}

/// Output of the autoencoder view.
#[derive(Debug, Clone)]
pub struct AutoencoderOutput {
    /// `trimmed_obj` `(B, 1, N, N)`, real and imaginary parts.
    pub obj_re: Tensor<4>,
    pub obj_im: Tensor<4>,
    /// `s·Â` (amplitude) `(B, C, N, N)`.
    pub pred_amp_scaled: Tensor<4>,
    /// `(s·Â)²` (intensity, expected counts) `(B, C, N, N)`.
    pub pred_intensity: Tensor<4>,
}

/// The PtychoPINN network (TF reference architecture).
#[derive(Module, Debug)]
pub struct PtychoPinn {
    encoder: Vec<ConvPool>,
    amp: Decoder,
    phase: Decoder,
    #[module(skip)]
    hyper: Hyper,
}

impl PtychoPinn {
    /// Build the network from `params` (CONFIG-001: the only source of N, gridsize and flags).
    /// The probe is `params.probe()` (already normalised) when its size is N, else the default
    /// probe normalised with `probe_scale`; s is `params.intensity_scale()`.
    pub fn new(params: &Params, device: &Device) -> Result<Self, ModelError> {
        let hyper = Self::hyper(params)?;
        let mut encoder = Vec::new();
        let widths: Vec<usize> = match hyper.n {
            64 => vec![32, 64, 128],
            128 => vec![16, 32, 64, 128],
            _ => vec![8, 16, 32, 64, 128],
        };
        let mut cin = hyper.c;
        for w in widths {
            encoder.push(ConvPool::new(cin, w * hyper.nfs, device));
            cin = w * hyper.nfs;
        }
        Ok(Self {
            encoder,
            amp: Decoder::new(&hyper, device),
            phase: Decoder::new(&hyper, device),
            hyper,
        })
    }

    fn hyper(params: &Params) -> Result<Hyper, ModelError> {
        let m = params.model();
        let n = params.n();
        if ![64, 128, 256].contains(&n) {
            return Err(ModelError::UnsupportedN { n });
        }
        if 32 * m.n_filters_scale <= C_OUTER || m.n_filters_scale * 2048 < n {
            return Err(ModelError::FilterScale {
                nfs: m.n_filters_scale,
            });
        }
        let s = params.intensity_scale();
        if !(s.is_finite() && s > 0.0) {
            return Err(ModelError::NonPositive {
                field: "intensity_scale",
                value: s,
            });
        }
        let probe = match params.probe() {
            Some(p) if p.n == n && p.data.len() == n * n => {
                Array2::from_shape_fn((n, n), |(i, j)| {
                    let z = p.data[i * n + j];
                    Complex64::new(z.re as f64, z.im as f64)
                })
            }
            _ => physics::normalize_probe(
                physics::default_probe(n, params.default_probe_scale()).view(),
                m.probe_scale,
            ),
        };
        let c = params.channels();
        Ok(Hyper {
            n,
            c,
            c_out: if m.object_big { c } else { 1 },
            nfs: m.n_filters_scale,
            p_size: params.padded_size(),
            object_big: m.object_big,
            probe_big: m.probe_big,
            pad_object: m.pad_object,
            probe_mask: m.probe_mask,
            sigma: m.gaussian_smoothing_sigma,
            amp_act: m.amp_activation,
            s,
            probe_re: probe.iter().map(|z| z.re).collect(),
            probe_im: probe.iter().map(|z| z.im).collect(),
        })
    }

    /// Architecture and physics constants.
    pub fn hyper_params(&self) -> &Hyper {
        &self.hyper
    }

    fn check_inputs(&self, x: &Tensor<4>, positions: &Tensor<3>) -> Result<(), ModelError> {
        let h = &self.hyper;
        let [b, c, n1, n2] = x.dims();
        if c != h.c || n1 != h.n || n2 != h.n {
            return Err(ModelError::Shape {
                what: "x_scaled",
                got: vec![b, c, n1, n2],
                expected: format!("(B, {}, {}, {})", h.c, h.n, h.n),
            });
        }
        let pd = positions.dims();
        if pd != [b, h.c, 2] {
            return Err(ModelError::Shape {
                what: "positions",
                got: pd.to_vec(),
                expected: format!("({b}, {}, 2)", h.c),
            });
        }
        Ok(())
    }

    /// Decoder outputs before combination: amplitude A and phase φ, `(B, C_out, N, N)`.
    /// `x_scaled` is `s·X`; the network sees `X`.
    pub fn amp_phase(&self, x_scaled: Tensor<4>) -> (Tensor<4>, Tensor<4>) {
        let h = &self.hyper;
        let mut z = x_scaled / h.s;
        for b in &self.encoder {
            z = b.forward(z);
        }
        let act = h.amp_act;
        let a = self
            .amp
            .forward(z.clone(), h, |t| ops::amp_activation(t, act));
        let phi = self.phase.forward(z, h, ops::phase_activation);
        (a, phi)
    }

    /// Object canvas `(B, 1, P, P)` (re, im) from the network output O = A·e^{iφ}.
    fn canvas(
        &self,
        x_scaled: Tensor<4>,
        off: &Offsets,
    ) -> (Tensor<4>, Tensor<4>, Tensor<4>, Tensor<4>) {
        let h = &self.hyper;
        let (a, phi) = self.amp_phase(x_scaled);
        let o_re = a.clone() * phi.clone().cos();
        let o_im = a * phi.sin();
        if h.object_big {
            let (c_re, c_im) = reassembly::reassemble(o_re, o_im, off, h.p_size);
            let t_re = reassembly::trim(c_re.clone(), h.n);
            let t_im = reassembly::trim(c_im.clone(), h.n);
            (c_re, c_im, t_re, t_im)
        } else {
            let c_re = reassembly::pad_to_canvas(o_re.clone(), h.p_size);
            let c_im = reassembly::pad_to_canvas(o_im.clone(), h.p_size);
            (c_re, c_im, o_re, o_im)
        }
    }

    /// Inference view: `trimmed_obj` `(B, 1, N, N)` (re, im) from `s·X` and offsets.
    pub fn diffraction_to_obj(
        &self,
        x_scaled: Tensor<4>,
        positions: Tensor<3>,
    ) -> Result<(Tensor<4>, Tensor<4>), ModelError> {
        self.check_inputs(&x_scaled, &positions)?;
        let off = Offsets::from_tensor(&positions)?;
        let (_, _, t_re, t_im) = self.canvas(x_scaled, &off);
        Ok((t_re, t_im))
    }

    /// Training view: object, re-extraction, illumination, far field, × s.
    pub fn autoencoder(
        &self,
        x_scaled: Tensor<4>,
        positions: Tensor<3>,
    ) -> Result<AutoencoderOutput, ModelError> {
        self.check_inputs(&x_scaled, &positions)?;
        let off = Offsets::from_tensor(&positions)?;
        let h = &self.hyper;
        let device = x_scaled.device();
        let dtype = x_scaled.dtype();
        let (c_re, c_im, obj_re, obj_im) = self.canvas(x_scaled, &off);
        let (p_re, p_im) = reassembly::extract_complex(c_re, c_im, &off, h.n);
        let pred_amp_scaled = self.physics_forward(p_re, p_im, &device, dtype);
        let pred_intensity = pred_amp_scaled.clone().powi_scalar(2);
        Ok(AutoencoderOutput {
            obj_re,
            obj_im,
            pred_amp_scaled,
            pred_intensity,
        })
    }

    /// Object patches `(B, C, N, N)` → `s·Â` through illumination and the far field.
    pub fn physics_forward(
        &self,
        patch_re: Tensor<4>,
        patch_im: Tensor<4>,
        device: &Device,
        dtype: DType,
    ) -> Tensor<4> {
        let h = &self.hyper;
        let n = h.n;
        let pr = tensor_from(h.probe_re.clone(), [1, 1, n, n], device, dtype);
        let pi = tensor_from(h.probe_im.clone(), [1, 1, n, n], device, dtype);
        let mask = h
            .probe_mask
            .then(|| tensor2(&physics::disk_mask(n), device, dtype).reshape([1, 1, n, n]));
        let (psi_re, psi_im) = ops::illuminate(patch_re, patch_im, pr, pi, h.sigma, mask);
        let f = DftMats::new(n, device, dtype);
        ops::far_field_amplitude(psi_re, psi_im, &f, ops::AMP_EPS) * h.s
    }
}
