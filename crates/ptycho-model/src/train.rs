//! One optimisation step (Adam, ε = 1e-7, β = 0.9/0.999, lr passed per step).

use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::Tensor;

use crate::error::ModelError;
use crate::loss::{LossWeights, loss, supervised_loss};
use crate::network::PtychoPinn;
use crate::ops::to_vec_f64;

/// Loss values of one step, read back to the host.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LossValues {
    pub total: f64,
    pub nll: f64,
    pub mae: f64,
}

/// Adam state plus loss weights. The model must live on an autodiff device.
pub struct TrainStep {
    optim: ModuleOptimizer,
    weights: LossWeights,
}

impl std::fmt::Debug for TrainStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrainStep")
            .field("weights", &self.weights)
            .finish_non_exhaustive()
    }
}

fn scalar(t: Tensor<1>) -> f64 {
    to_vec_f64(t).first().copied().unwrap_or(f64::NAN)
}

impl TrainStep {
    pub fn new(weights: LossWeights) -> Self {
        Self {
            optim: AdamConfig::new()
                .with_beta_1(0.9)
                .with_beta_2(0.999)
                .with_epsilon(1e-7)
                .init(),
            weights,
        }
    }

    /// PINN step on one batch: `x_scaled = s·X` `(B, C, N, N)`, offsets `(B, C, 2)`, targets
    /// `s·X` (normally `x_scaled` itself). Returns the updated model and the pre-step losses.
    pub fn step(
        &mut self,
        model: PtychoPinn,
        x_scaled: Tensor<4>,
        positions: Tensor<3>,
        target_scaled_amp: Tensor<4>,
        lr: f64,
    ) -> Result<(PtychoPinn, LossValues), ModelError> {
        if !x_scaled.device().is_autodiff() {
            return Err(ModelError::NotAutodiff);
        }
        let out = model.autoencoder(x_scaled, positions)?;
        let terms = loss(&out, target_scaled_amp, &self.weights)?;
        let grads = GradientsParams::from_grads(terms.total.backward(), &model);
        let values = LossValues {
            total: scalar(terms.total),
            nll: scalar(terms.nll),
            mae: scalar(terms.mae),
        };
        let model = self.optim.step(lr, model, grads);
        Ok((model, values))
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
        let v = scalar(l);
        Ok((self.optim.step(lr, model, grads), v))
    }
}
