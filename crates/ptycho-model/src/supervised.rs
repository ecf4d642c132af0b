//! The supervised baseline (spec §5.4, `model_type = "supervised"`): a PtychoNN-style network
//! that maps one normalised diffraction amplitude pattern to the amplitude and phase of its
//! object patch, trained by MAE against ground-truth patches ([`supervised_loss`]).
//!
//! Layout: input `X` (normalised amplitudes, **without** the intensity scale s) `(B, 1, N, N)`,
//! single channel (gridsize > 1 data are flattened to `B·C` single-channel samples by the caller);
//! outputs amplitude and phase `(B, 1, N, N)`, both linear (no activation).
//!
//! Architecture: encoder Conv_Pool nfs·[32, 64, 128] (N → N/8), two decoders, each Conv_Up
//! nfs·[128, 64, 32] (N/8 → N) then Conv2D(1, 3×3). The blocks are the PINN's
//! ([`crate::network::ConvPool`], [`crate::network::ConvUp`]: Glorot-uniform kernels, zero biases).

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor};
use ptycho_config::Params;

use crate::conv::{self, ConvKernel};
use crate::error::ModelError;
use crate::loss::supervised_loss;
use crate::network::{ConvPool, ConvUp, ForceInit, INIT_LOCK, conv3};
use crate::ops::read_back;
use crate::train::adam;

/// Encoder widths (× n_filters_scale).
const ENCODER: [usize; 3] = [32, 64, 128];
/// Decoder widths (× n_filters_scale).
const DECODER: [usize; 3] = [128, 64, 32];

/// One decoder: Conv_Up blocks, then a linear 3×3 convolution to one channel.
#[derive(Module, Debug)]
pub struct SupervisedDecoder {
    blocks: Vec<ConvUp>,
    head: Conv2d,
}

impl SupervisedDecoder {
    fn new(nfs: usize, device: &Device) -> Self {
        let mut blocks = Vec::new();
        let mut cin = ENCODER[ENCODER.len() - 1] * nfs;
        for w in DECODER {
            blocks.push(ConvUp::new(cin, w * nfs, device));
            cin = w * nfs;
        }
        Self {
            blocks,
            head: conv3(cin, 1, device),
        }
    }

    fn forward(&self, z: Tensor<4>) -> Tensor<4> {
        let mut x = z;
        for b in &self.blocks {
            x = b.forward(x, ConvKernel::default());
        }
        conv::apply(&self.head, x, false, ConvKernel::default())
    }
}

/// The supervised baseline network.
#[derive(Module, Debug)]
pub struct SupervisedNet {
    encoder: Vec<ConvPool>,
    amp: SupervisedDecoder,
    phase: SupervisedDecoder,
    #[module(skip)]
    n: usize,
}

impl SupervisedNet {
    /// Build the network for `params` (N and n_filters_scale; N must be a multiple of 8 so that
    /// three 2× poolings and upsamplings return to N). Weights are drawn from the backend RNG in
    /// its current state; see [`Self::new_seeded`].
    pub fn new(params: &Params, device: &Device) -> Result<Self, ModelError> {
        Self::initialised(params, device, None)
    }

    /// [`Self::new`] with the backend RNG seeded with `seed` first (same seed, same initial
    /// weights; seeding and drawing hold the process-wide lock the PINN uses).
    pub fn new_seeded(params: &Params, device: &Device, seed: u64) -> Result<Self, ModelError> {
        Self::initialised(params, device, Some(seed))
    }

    fn initialised(
        params: &Params,
        device: &Device,
        seed: Option<u64>,
    ) -> Result<Self, ModelError> {
        let n = params.n();
        if n < 8 || !n.is_multiple_of(8) {
            return Err(ModelError::UnsupportedN { n });
        }
        let nfs = params.model().n_filters_scale;
        if nfs == 0 {
            return Err(ModelError::FilterScale { nfs });
        }
        // A poisoned lock only means another thread panicked while initialising.
        let _guard = INIT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(seed) = seed {
            device.seed(seed);
        }
        let mut encoder = Vec::new();
        let mut cin = 1;
        for w in ENCODER {
            encoder.push(ConvPool::new(cin, w * nfs, device));
            cin = w * nfs;
        }
        let model = Self {
            encoder,
            amp: SupervisedDecoder::new(nfs, device),
            phase: SupervisedDecoder::new(nfs, device),
            n,
        };
        // Draw the lazily initialised weights now, under the lock.
        model.visit(&mut ForceInit);
        Ok(model)
    }

    /// Patch size N.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Amplitude and phase `(B, 1, N, N)` of the object patches seen by the normalised
    /// diffraction amplitudes `x` `(B, 1, N, N)` (no intensity scale).
    pub fn forward(&self, x: Tensor<4>) -> Result<(Tensor<4>, Tensor<4>), ModelError> {
        let [b, c, n1, n2] = x.dims();
        if c != 1 || n1 != self.n || n2 != self.n {
            return Err(ModelError::Shape {
                what: "x",
                got: vec![b, c, n1, n2],
                expected: format!("(B, 1, {}, {})", self.n, self.n),
            });
        }
        let mut z = x;
        for blk in &self.encoder {
            z = blk.forward(z, ConvKernel::default());
        }
        Ok((self.amp.forward(z.clone()), self.phase.forward(z)))
    }
}

fn scalar(t: Tensor<1>) -> Result<f64, ModelError> {
    match read_back(t, "supervised loss")?[..] {
        [v] => Ok(v),
        ref other => Err(ModelError::Shape {
            what: "supervised loss",
            got: vec![other.len()],
            expected: "1 value".into(),
        }),
    }
}

/// Adam (the project's [`adam`]: ε 1e-7, lr passed per step) on the supervised MAE loss.
pub struct SupervisedStep {
    optim: ModuleOptimizer,
}

impl std::fmt::Debug for SupervisedStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SupervisedStep").finish_non_exhaustive()
    }
}

impl Default for SupervisedStep {
    fn default() -> Self {
        Self::new()
    }
}

impl SupervisedStep {
    /// A fresh Adam.
    pub fn new() -> Self {
        Self::with_optimizer(adam())
    }

    /// Continue with a restored optimiser state (a checkpoint's).
    pub fn with_optimizer(optim: ModuleOptimizer) -> Self {
        Self { optim }
    }

    /// The optimiser state a checkpoint saves.
    pub fn optimizer(&self) -> &ModuleOptimizer {
        &self.optim
    }

    /// One step on a batch: `x` `(B, 1, N, N)`, targets `|Y|` and `angle(Y)` of the same shape.
    /// Returns the updated model and the pre-step loss `mean|A − |Y|| + mean|φ − angle(Y)|`.
    /// A non-finite loss is [`ModelError::NonFiniteLoss`], before the weights change.
    pub fn step(
        &mut self,
        model: SupervisedNet,
        x: Tensor<4>,
        gt_amp: Tensor<4>,
        gt_phase: Tensor<4>,
        lr: f64,
    ) -> Result<(SupervisedNet, f64), ModelError> {
        if !x.device().is_autodiff() {
            return Err(ModelError::NotAutodiff);
        }
        let (a, phi) = model.forward(x)?;
        let l = supervised_loss(a, phi, gt_amp, gt_phase)?;
        let grads = GradientsParams::from_grads(l.backward(), &model);
        let v = scalar(l)?;
        if !v.is_finite() {
            return Err(ModelError::NonFiniteLoss { value: v });
        }
        Ok((self.optim.step(lr, model, grads), v))
    }

    /// The loss of `model` on one batch without a step (validation; any device).
    pub fn evaluate(
        &self,
        model: &SupervisedNet,
        x: Tensor<4>,
        gt_amp: Tensor<4>,
        gt_phase: Tensor<4>,
    ) -> Result<f64, ModelError> {
        let (a, phi) = model.forward(x)?;
        scalar(supervised_loss(a, phi, gt_amp, gt_phase)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::{ModuleVisitor, Param};
    use burn::tensor::DType;
    use ptycho_config::{ModelConfig, ModelType, TrainingConfig};

    use crate::ops::tensor_from;

    struct Count(usize, Vec<f32>);

    impl ModuleVisitor for Count {
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
            let v = p
                .val()
                .into_data()
                .convert::<f32>()
                .try_to_vec::<f32>()
                .unwrap();
            self.0 += v.len();
            self.1.extend(v);
        }
    }

    fn params(nfs: usize) -> Params {
        Params::from_training(
            &TrainingConfig {
                model: ModelConfig {
                    n_filters_scale: nfs,
                    model_type: ModelType::Supervised,
                    ..Default::default()
                },
                ..Default::default()
            }
            .validate()
            .unwrap(),
        )
    }

    #[test]
    fn parameter_count_matches_the_ptychonn_layout() {
        let m = SupervisedNet::new(&params(1), &Device::flex()).unwrap();
        let mut c = Count(0, Vec::new());
        m.visit(&mut c);
        let conv = |cin: usize, cout: usize| 9 * cin * cout + cout;
        let enc = conv(1, 32)
            + conv(32, 32)
            + conv(32, 64)
            + conv(64, 64)
            + conv(64, 128)
            + conv(128, 128);
        let dec = conv(128, 128)
            + conv(128, 128)
            + conv(128, 64)
            + conv(64, 64)
            + conv(64, 32)
            + conv(32, 32)
            + conv(32, 1);
        assert_eq!(c.0, enc + 2 * dec);
    }

    #[test]
    fn seeded_construction_is_reproducible_and_outputs_are_n_by_n() {
        let device = Device::flex();
        let p = params(1);
        let w = |seed| {
            let mut c = Count(0, Vec::new());
            SupervisedNet::new_seeded(&p, &device, seed)
                .unwrap()
                .visit(&mut c);
            c.1
        };
        assert!(w(3) == w(3));
        assert!(w(3) != w(4));
        let m = SupervisedNet::new_seeded(&p, &device, 3).unwrap();
        let x = tensor_from(vec![0.1; 2 * 64 * 64], [2, 1, 64, 64], &device, DType::F32);
        let (a, phi) = m.forward(x).unwrap();
        assert_eq!(a.dims(), [2, 1, 64, 64]);
        assert_eq!(phi.dims(), [2, 1, 64, 64]);
        let bad = tensor_from(vec![0.1; 4 * 64 * 64], [1, 4, 64, 64], &device, DType::F32);
        assert!(matches!(
            m.forward(bad),
            Err(ModelError::Shape { what: "x", .. })
        ));
    }

    #[test]
    fn training_steps_lower_the_loss_on_a_fixed_batch() {
        let device = Device::flex().autodiff();
        let p = params(1);
        let mut model = SupervisedNet::new_seeded(&p, &device, 5).unwrap();
        let n = 64;
        let xs: Vec<f64> = (0..n * n)
            .map(|k| ((k * 37 % 101) as f64) / 101.0)
            .collect();
        let x = tensor_from(xs, [1, 1, n, n], &device, DType::F32);
        let amp = tensor_from(vec![0.8; n * n], [1, 1, n, n], &device, DType::F32);
        let phase = tensor_from(vec![0.3; n * n], [1, 1, n, n], &device, DType::F32);
        let mut step = SupervisedStep::new();
        let mut losses = Vec::new();
        for _ in 0..12 {
            let (m, l) = step
                .step(model, x.clone(), amp.clone(), phase.clone(), 2e-4)
                .unwrap();
            model = m;
            losses.push(l);
        }
        // At initialisation the outputs are near 0: the loss starts near 0.8 + 0.3.
        assert!((losses[0] - 1.1).abs() < 0.5, "{losses:?}");
        assert!(losses[11] < 0.5 * losses[0], "{losses:?}");
        let eval = step.evaluate(&model, x, amp, phase).unwrap();
        assert!(eval.is_finite() && eval < losses[0], "{eval} {losses:?}");
        // Training needs an autodiff device.
        let plain = Device::flex();
        let m = SupervisedNet::new(&p, &plain).unwrap();
        let z = tensor_from(vec![0.0; n * n], [1, 1, n, n], &plain, DType::F32);
        assert!(matches!(
            step.step(m, z.clone(), z.clone(), z, 1e-3),
            Err(ModelError::NotAutodiff)
        ));
    }
}
