//! The one optimisation step of the project (Adam, ε = 1e-7, β = 0.9/0.999, lr passed per step),
//! used by `ptycho train`, `ptycho bench` and the tests, and the loss evaluation of validation.

use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::Tensor;

use crate::error::ModelError;
use crate::loss::{LossTerms, LossWeights, PixelMask, loss_with, supervised_loss};
use crate::network::PtychoPinn;
use crate::ops::read_back;

/// Loss values of one step, read back to the host.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LossValues {
    pub total: f64,
    pub nll: f64,
    pub mae: f64,
    /// The real-space loss `L_rs` (before its weight `realspace`; 0 when it is off).
    pub realspace: f64,
}

/// The optimiser of the reference: Keras Adam with ε = 1e-7 (Burn's default is 1e-5).
pub fn adam() -> ModuleOptimizer {
    AdamConfig::new()
        .with_beta_1(0.9)
        .with_beta_2(0.999)
        .with_epsilon(1e-7)
        .init()
}

/// Adam state plus loss weights (and the detector's bad-pixel mask, if any). The model must live
/// on an autodiff device.
pub struct TrainStep {
    optim: ModuleOptimizer,
    weights: LossWeights,
    bad_pixels: Option<PixelMask>,
}

impl std::fmt::Debug for TrainStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrainStep")
            .field("weights", &self.weights)
            .field("bad_pixels", &self.bad_pixels.as_ref().map(|m| m.n_good()))
            .finish_non_exhaustive()
    }
}

/// Loss terms read back in one transfer.
fn read_terms(t: &LossTerms) -> Result<LossValues, ModelError> {
    let v = read_back(
        Tensor::cat(
            vec![
                t.total.clone(),
                t.nll.clone(),
                t.mae.clone(),
                t.realspace.clone(),
            ],
            0,
        ),
        "loss terms",
    )?;
    match v[..] {
        [total, nll, mae, realspace] => Ok(LossValues {
            total,
            nll,
            mae,
            realspace,
        }),
        _ => Err(ModelError::Shape {
            what: "loss terms",
            got: vec![v.len()],
            expected: "4 values (total, nll, mae, realspace)".into(),
        }),
    }
}

impl TrainStep {
    /// A fresh Adam ([`adam`]) with these loss weights.
    pub fn new(weights: LossWeights) -> Self {
        Self::with_optimizer(weights, adam())
    }

    /// Continue with a restored optimiser state (a checkpoint's).
    pub fn with_optimizer(weights: LossWeights, optim: ModuleOptimizer) -> Self {
        Self {
            optim,
            weights,
            bad_pixels: None,
        }
    }

    /// Leave the bad pixels of `mask` out of the diffraction losses (NLL and MAE become means
    /// over the good pixels only).
    pub fn with_bad_pixels(mut self, mask: Option<PixelMask>) -> Self {
        self.bad_pixels = mask;
        self
    }

    /// The bad-pixel mask in use.
    pub fn bad_pixels(&self) -> Option<&PixelMask> {
        self.bad_pixels.as_ref()
    }

    /// The optimiser state (moments, step counts) that a checkpoint saves.
    pub fn optimizer(&self) -> &ModuleOptimizer {
        &self.optim
    }

    pub fn weights(&self) -> &LossWeights {
        &self.weights
    }

    /// PINN step on one batch: `x_scaled = s·X` `(B, C, N, N)`, offsets `(B, C, 2)`, targets
    /// `s·X` (normally `x_scaled` itself). Returns the updated model and the pre-step losses.
    /// A non-finite total loss is [`ModelError::NonFiniteLoss`], before the weights change.
    pub fn step(
        &mut self,
        model: PtychoPinn,
        x_scaled: Tensor<4>,
        positions: Tensor<3>,
        target_scaled_amp: Tensor<4>,
        lr: f64,
    ) -> Result<(PtychoPinn, LossValues), ModelError> {
        self.step_with_truth(model, x_scaled, positions, target_scaled_amp, None, lr)
    }

    /// [`Self::step`] with the ground-truth amplitude `(B, 1, N, N)` of the real-space loss,
    /// centred on each group's centre (needed when `realspace_mae_weight` > 0).
    pub fn step_with_truth(
        &mut self,
        model: PtychoPinn,
        x_scaled: Tensor<4>,
        positions: Tensor<3>,
        target_scaled_amp: Tensor<4>,
        truth_amp: Option<Tensor<4>>,
        lr: f64,
    ) -> Result<(PtychoPinn, LossValues), ModelError> {
        if !x_scaled.device().is_autodiff() {
            return Err(ModelError::NotAutodiff);
        }
        let out = model.autoencoder(x_scaled, positions)?;
        let terms = self.terms(&model, &out, target_scaled_amp, truth_amp)?;
        let grads = GradientsParams::from_grads(terms.total.backward(), &model);
        let values = read_terms(&terms)?;
        if !values.total.is_finite() {
            return Err(ModelError::NonFiniteLoss {
                value: values.total,
            });
        }
        let model = self.optim.step(lr, model, grads);
        Ok((model, values))
    }

    /// The PINN losses of `model` on one batch without a step (validation; any device).
    pub fn evaluate(
        &self,
        model: &PtychoPinn,
        x_scaled: Tensor<4>,
        positions: Tensor<3>,
        target_scaled_amp: Tensor<4>,
    ) -> Result<LossValues, ModelError> {
        self.evaluate_with_truth(model, x_scaled, positions, target_scaled_amp, None)
    }

    /// [`Self::evaluate`] with the ground truth of [`Self::step_with_truth`].
    pub fn evaluate_with_truth(
        &self,
        model: &PtychoPinn,
        x_scaled: Tensor<4>,
        positions: Tensor<3>,
        target_scaled_amp: Tensor<4>,
        truth_amp: Option<Tensor<4>>,
    ) -> Result<LossValues, ModelError> {
        let out = model.autoencoder(x_scaled, positions)?;
        read_terms(&self.terms(model, &out, target_scaled_amp, truth_amp)?)
    }

    fn terms(
        &self,
        model: &PtychoPinn,
        out: &crate::network::AutoencoderOutput,
        target_scaled_amp: Tensor<4>,
        truth_amp: Option<Tensor<4>>,
    ) -> Result<LossTerms, ModelError> {
        loss_with(
            out,
            target_scaled_amp,
            truth_amp,
            &self.weights,
            model.hyper_params().probe_big,
            self.bad_pixels.as_ref(),
        )
    }

    /// Supervised step: MAE on the decoder's amplitude and phase vs ground-truth patches.
    pub fn step_supervised(
        &mut self,
        model: PtychoPinn,
        x_scaled: Tensor<4>,
        gt_amp: Tensor<4>,
        gt_phase: Tensor<4>,
        lr: f64,
    ) -> Result<(PtychoPinn, f64), ModelError> {
        if !x_scaled.device().is_autodiff() {
            return Err(ModelError::NotAutodiff);
        }
        let (a, phi) = model.amp_phase(x_scaled);
        let l = supervised_loss(a, phi, gt_amp, gt_phase)?;
        let grads = GradientsParams::from_grads(l.backward(), &model);
        let v = match read_back(l, "supervised loss")?[..] {
            [v] => v,
            ref other => {
                return Err(ModelError::Shape {
                    what: "supervised loss",
                    got: vec![other.len()],
                    expected: "1 value".into(),
                });
            }
        };
        if !v.is_finite() {
            return Err(ModelError::NonFiniteLoss { value: v });
        }
        Ok((self.optim.step(lr, model, grads), v))
    }
}
