//! The PtychoPINN U-Net (spec §4.2–4.5) and its two views, `autoencoder` (training) and
//! `diffraction_to_obj` (inference), sharing one set of weights.
//!
//! Layouts are channels-first: diffraction input `x_scaled = s·X` (amplitudes) `(B, C, N, N)`,
//! offsets `(B, C, 2)` (`[x, y]` pixels), object `(B, 1, N, N)` as re/im tensors.

use burn::module::{Module, ModuleVisitor, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Initializer, PaddingConfig2d};
use burn::tensor::module::{interpolate, max_pool2d};
use burn::tensor::ops::{InterpolateMode, InterpolateOptions, MaxPoolOptions, PadMode};
use std::sync::{Arc, Mutex};

use burn::tensor::{DType, Device, Tensor, activation};
use ndarray::Array2;
use num_complex::Complex64;
use ptycho_config::{AmpActivation, Params};

use crate::complex::ComplexTensor;
use crate::conv::{self, ConvKernel};
use crate::error::ModelError;
use crate::ops::{self, DftMats, tensor_from, tensor2};
use crate::physics;
use crate::reassembly::{self, Offsets};

pub(crate) fn conv3(cin: usize, cout: usize, device: &Device) -> Conv2d {
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
    pub(crate) fn new(cin: usize, nf: usize, device: &Device) -> Self {
        Self {
            c1: conv3(cin, nf, device),
            c2: conv3(nf, nf, device),
        }
    }
    pub(crate) fn forward(&self, x: Tensor<4>, k: ConvKernel) -> Tensor<4> {
        let x = conv::apply(&self.c1, x, true, k);
        let x = conv::apply(&self.c2, x, true, k);
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
    pub(crate) fn new(cin: usize, nf: usize, device: &Device) -> Self {
        Self {
            c1: conv3(cin, nf, device),
            c2: conv3(nf, nf, device),
        }
    }
    pub(crate) fn forward(&self, x: Tensor<4>, k: ConvKernel) -> Tensor<4> {
        let x = conv::apply(&self.c1, x, true, k);
        let x = conv::apply(&self.c2, x, true, k);
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

    /// `act` is applied to the core (or full frame without pad_object); the border uses swish,
    /// masked by `border` (`1 − CM`, `(1, 1, N, N)`).
    fn forward(
        &self,
        z: Tensor<4>,
        h: &Hyper,
        border: &Tensor<4>,
        act: impl Fn(Tensor<4>) -> Tensor<4>,
    ) -> Tensor<4> {
        let k = h.conv;
        let mut x = z;
        for b in &self.blocks {
            x = b.forward(x, k);
        }
        let [_, f, _, _] = x.dims();
        let n = h.n;
        match (&self.conv1, &self.up_last, &self.conv2) {
            (Some(conv1), border_up, border_conv) => {
                let core = act(conv::apply(
                    conv1,
                    x.clone().narrow(1, 0, f - C_OUTER),
                    false,
                    k,
                ));
                let q = n / 4;
                let x1 = core.pad([(q, q), (q, q)], PadMode::Constant(0.0));
                match (border_up, border_conv) {
                    (Some(up), Some(c2)) => {
                        let border_in = up.forward(x.narrow(1, f - C_OUTER, C_OUTER), k);
                        let x2 = activation::silu(conv::apply(c2, border_in, false, k));
                        x1 + x2 * border.clone()
                    }
                    _ => x1,
                }
            }
            (None, Some(up), Some(c2)) => act(conv::apply(c2, up.forward(x, k), false, k)),
            _ => unreachable!("decoder head is built with conv1 or conv2"),
        }
    }
}

/// The constant tensors of the forward pass on one device and float dtype: built once per model
/// and device (see [`ConstantCache`]), never trained or saved.
#[derive(Debug)]
struct Constants {
    device: Device,
    autodiff: bool,
    dtype: DType,
    /// Normalised probe `(1, 1, N, N)`.
    probe: ComplexTensor,
    /// The N/4 disk `(1, 1, N, N)` when `probe_mask` is set.
    mask: Option<Tensor<4>>,
    dft: DftMats,
    /// Central mask CM `(1, 1, N, N)` (reassembly denominator).
    central: Tensor<4>,
    /// `1 − CM` (decoder border branch).
    border: Tensor<4>,
}

impl Constants {
    fn new(h: &Hyper, device: &Device, dtype: DType) -> Self {
        let n = h.n;
        let probe = ComplexTensor::new(
            tensor_from(h.probe_re.clone(), [1, 1, n, n], device, dtype),
            tensor_from(h.probe_im.clone(), [1, 1, n, n], device, dtype),
        );
        let mask = h
            .probe_mask
            .then(|| tensor2(&physics::disk_mask(n), device, dtype).reshape([1, 1, n, n]));
        let central = reassembly::central_mask(n, device, dtype);
        let border = central.clone().neg() + 1.0;
        Self {
            device: device.clone(),
            autodiff: device.is_autodiff(),
            dtype,
            probe,
            mask,
            dft: DftMats::new(n, device, dtype),
            central,
            border,
        }
    }

    fn fits(&self, device: &Device, dtype: DType) -> bool {
        self.dtype == dtype && self.autodiff == device.is_autodiff() && &self.device == device
    }
}

/// Held while seeding the backend RNG and drawing a model's initial weights.
pub(crate) static INIT_LOCK: Mutex<()> = Mutex::new(());

/// Touches every float parameter, which initialises the lazy ones.
pub(crate) struct ForceInit;

impl ModuleVisitor for ForceInit {
    fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
        drop(p.val());
    }
}

/// The model's [`Constants`], one set per (device, autodiff, dtype) the model has run on. A
/// skipped module field: clones of the model (optimiser steps, `valid()`, device moves) share
/// it, so each set is built once per model, not per forward pass.
#[derive(Debug, Clone, Default)]
struct ConstantCache(Arc<Mutex<Vec<Arc<Constants>>>>);

impl ConstantCache {
    fn get(&self, h: &Hyper, device: &Device, dtype: DType) -> Arc<Constants> {
        // A poisoned lock only means another thread panicked while inserting; the list is
        // still valid.
        let mut sets = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = sets.iter().find(|c| c.fits(device, dtype)) {
            return c.clone();
        }
        let c = Arc::new(Constants::new(h, device, dtype));
        sets.push(c.clone());
        c
    }
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
    /// The 3×3 convolution implementation (not a parameter of the model: results agree
    /// within f32 rounding).
    pub conv: ConvKernel,
}

/// Output of the autoencoder view.
#[derive(Debug, Clone)]
pub struct AutoencoderOutput {
    /// `trimmed_obj` `(B, 1, N, N)`.
    pub obj: ComplexTensor,
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
    #[module(skip)]
    constants: ConstantCache,
}

impl PtychoPinn {
    /// Build the network from `params` (CONFIG-001: the only source of N, gridsize and flags).
    /// The probe is `params.probe()` (already normalised; one of another size than N is
    /// [`ModelError::ProbeSize`]), or the default probe normalised with `probe_scale` when params
    /// carry none; s is `params.intensity_scale()`. The initial weights
    /// are drawn here from the backend's (process-global) RNG in its current state; see
    /// [`Self::new_seeded`].
    pub fn new(params: &Params, device: &Device) -> Result<Self, ModelError> {
        Self::initialised(params, device, None)
    }

    /// [`Self::new`] with the backend RNG seeded with `seed` first: the same seed gives the same
    /// initial weights, also when other threads of the process build models at the same time
    /// (seeding and drawing hold one process-wide lock).
    pub fn new_seeded(params: &Params, device: &Device, seed: u64) -> Result<Self, ModelError> {
        Self::initialised(params, device, Some(seed))
    }

    fn initialised(
        params: &Params,
        device: &Device,
        seed: Option<u64>,
    ) -> Result<Self, ModelError> {
        // A poisoned lock only means another thread panicked while initialising.
        let _guard = INIT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(seed) = seed {
            device.seed(seed);
        }
        let model = Self::build(params, device)?;
        // Burn initialises parameters lazily, at first use; draw them now, under the lock. The
        // visit order is the declaration order, which is also the order of the forward pass, so
        // the weights equal those a first forward pass would have drawn.
        model.visit(&mut ForceInit);
        Ok(model)
    }

    /// The network with lazily initialised weights.
    fn build(params: &Params, device: &Device) -> Result<Self, ModelError> {
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
        let constants = ConstantCache::default();
        constants.get(&hyper, device, DType::F32);
        Ok(Self {
            encoder,
            amp: Decoder::new(&hyper, device),
            phase: Decoder::new(&hyper, device),
            hyper,
            constants,
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
        // No stored probe: the default one. A stored probe that is not N×N is an error, never
        // silently replaced.
        let probe = match params.probe() {
            Some(p) if p.n == n && p.data.len() == n * n => {
                Array2::from_shape_fn((n, n), |(i, j)| {
                    let z = p.data[i * n + j];
                    Complex64::new(z.re as f64, z.im as f64)
                })
            }
            Some(p) => {
                return Err(ModelError::ProbeSize {
                    probe_n: p.n,
                    values: p.data.len(),
                    n,
                });
            }
            None => physics::normalize_probe(
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
            conv: ConvKernel::default(),
        })
    }

    /// The same model with its 3×3 convolutions computed by `kernel` (the default is
    /// [`ConvKernel::Extension`]).
    pub fn with_conv_kernel(mut self, kernel: ConvKernel) -> Self {
        self.hyper.conv = kernel;
        self
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
        let k = self.constants_for(&x_scaled);
        self.decode(x_scaled, &k)
    }

    fn constants_for(&self, x: &Tensor<4>) -> Arc<Constants> {
        self.constants.get(&self.hyper, &x.device(), x.dtype())
    }

    fn decode(&self, x_scaled: Tensor<4>, k: &Constants) -> (Tensor<4>, Tensor<4>) {
        let h = &self.hyper;
        let mut z = x_scaled / h.s;
        for b in &self.encoder {
            z = b.forward(z, h.conv);
        }
        let act = h.amp_act;
        let a = self
            .amp
            .forward(z.clone(), h, &k.border, |t| ops::amp_activation(t, act));
        let phi = self.phase.forward(z, h, &k.border, ops::phase_activation);
        (a, phi)
    }

    /// Object canvas `(B, 1, P, P)` and the trimmed object `(B, 1, N, N)` from the network
    /// output O = A·e^{iφ}.
    fn canvas(
        &self,
        x_scaled: Tensor<4>,
        off: &Offsets,
        k: &Constants,
    ) -> (ComplexTensor, ComplexTensor) {
        let h = &self.hyper;
        let (a, phi) = self.decode(x_scaled, k);
        let o = ComplexTensor::from_polar(a, phi);
        if h.object_big {
            let canvas = reassembly::reassemble(o, off, h.p_size, k.central.clone());
            let trimmed = canvas.clone().map(|t| reassembly::trim(t, h.n));
            (canvas, trimmed)
        } else {
            let canvas = o.clone().map(|t| reassembly::pad_to_canvas(t, h.p_size));
            (canvas, o)
        }
    }

    /// Inference view: `trimmed_obj` `(B, 1, N, N)` from `s·X` and offsets.
    pub fn diffraction_to_obj(
        &self,
        x_scaled: Tensor<4>,
        positions: Tensor<3>,
    ) -> Result<ComplexTensor, ModelError> {
        self.check_inputs(&x_scaled, &positions)?;
        let off = Offsets::from_tensor(&positions)?;
        let k = self.constants_for(&x_scaled);
        let (_, trimmed) = self.canvas(x_scaled, &off, &k);
        Ok(trimmed)
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
        let k = self.constants_for(&x_scaled);
        let (canvas, obj) = self.canvas(x_scaled, &off, &k);
        let patches = reassembly::extract(canvas, &off, h.n);
        let pred_amp_scaled = self.physics(patches, &k);
        let pred_intensity = pred_amp_scaled.clone().powi_scalar(2);
        Ok(AutoencoderOutput {
            obj,
            pred_amp_scaled,
            pred_intensity,
        })
    }

    /// Object patches `(B, C, N, N)` → `s·Â` through illumination and the far field.
    pub fn physics_forward(&self, patches: ComplexTensor) -> Tensor<4> {
        let k = self.constants_for(&patches.re);
        self.physics(patches, &k)
    }

    fn physics(&self, patches: ComplexTensor, k: &Constants) -> Tensor<4> {
        let h = &self.hyper;
        let psi = ops::illuminate(patches, k.probe.clone(), h.sigma, k.mask.clone());
        ops::far_field_amplitude(psi, &k.dft, ops::AMP_EPS) * h.s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ptycho_config::{ModelConfig, TrainingConfig};

    struct Collect(Vec<f32>);

    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
            let v = p
                .val()
                .into_data()
                .convert::<f32>()
                .try_to_vec::<f32>()
                .unwrap();
            self.0.extend(v);
        }
    }

    fn weights(m: &PtychoPinn) -> Vec<u32> {
        let mut c = Collect(Vec::new());
        m.visit(&mut c);
        c.0.iter().map(|v| v.to_bits()).collect()
    }

    #[test]
    fn eager_initialisation_draws_the_weights_a_first_forward_would() {
        let params = Params::from_training(
            &TrainingConfig {
                model: ModelConfig {
                    n_filters_scale: 1,
                    gridsize: 2,
                    probe_big: true,
                    pad_object: true,
                    ..Default::default()
                },
                ..Default::default()
            }
            .validate()
            .unwrap(),
        );
        let device = Device::flex();
        let (b, c, n) = (1, 4, 64);
        let x = tensor_from(vec![0.5; b * c * n * n], [b, c, n, n], &device, DType::F32);
        let pos = tensor_from(vec![0.0; b * c * 2], [b, c, 2], &device, DType::F32);
        let lazy = {
            let _guard = INIT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
            device.seed(11);
            let m = PtychoPinn::build(&params, &device).unwrap();
            m.autoencoder(x, pos).unwrap();
            weights(&m)
        };
        let eager = weights(&PtychoPinn::new_seeded(&params, &device, 11).unwrap());
        assert_eq!(lazy.len(), eager.len());
        assert!(
            lazy == eager,
            "eager initialisation changed the initial weights"
        );
        let other = weights(&PtychoPinn::new_seeded(&params, &device, 12).unwrap());
        assert!(other != eager);
    }

    #[test]
    fn a_stored_probe_that_is_not_n_by_n_is_an_error_naming_both_sizes() {
        let cfg = TrainingConfig::default().validate().unwrap();
        let base = Params::from_training(&cfg);
        assert_eq!(base.n(), 64);
        let device = Device::flex();
        let small = ptycho_config::ProbeField {
            n: 32,
            data: vec![num_complex::Complex32::new(1.0, 0.0); 32 * 32],
        };
        let err = PtychoPinn::build(&base.clone().with_probe(small), &device).unwrap_err();
        assert!(
            matches!(
                err,
                ModelError::ProbeSize {
                    probe_n: 32,
                    values: 1024,
                    n: 64
                }
            ),
            "{err}"
        );
        assert_eq!(
            err.to_string(),
            "the params' probe is 32×32 (1024 values) but the model's N = 64"
        );
        // Right N, wrong number of values: also refused, not replaced by the default probe.
        let short = ptycho_config::ProbeField {
            n: 64,
            data: vec![num_complex::Complex32::new(1.0, 0.0); 10],
        };
        let err = PtychoPinn::build(&base.with_probe(short), &device).unwrap_err();
        assert!(
            matches!(err, ModelError::ProbeSize { values: 10, .. }),
            "{err}"
        );
        // No stored probe: the default one, as before.
        PtychoPinn::build(&Params::from_training(&cfg), &device).unwrap();
    }
}
