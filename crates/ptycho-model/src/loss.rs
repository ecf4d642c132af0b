//! Losses (spec §5): Poisson NLL on intensities, MAE on scaled amplitudes, supervised MAE.

use burn::tensor::Tensor;
use ptycho_config::TrainingConfig;

use crate::error::ModelError;
use crate::network::AutoencoderOutput;

/// Lower clamp of the Poisson rate λ = (s·Â)² (the reference has none; λ = 0 with y > 0 would
/// give an infinite loss).
pub const LAMBDA_MIN: f64 = 1e-12;

/// Weights of the total objective `L = mae_weight·L_MAE + nll_weight·L_NLL`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LossWeights {
    pub nll: f64,
    pub mae: f64,
}

impl Default for LossWeights {
    fn default() -> Self {
        Self { nll: 1.0, mae: 0.0 }
    }
}

impl LossWeights {
    /// Weights from the training config; a real-space weight > 0 is not supported.
    pub fn from_training(cfg: &TrainingConfig) -> Result<Self, ModelError> {
        if cfg.realspace_weight > 0.0 {
            return Err(ModelError::UnsupportedLoss {
                field: "realspace_weight",
                value: cfg.realspace_weight,
            });
        }
        Ok(Self {
            nll: cfg.nll_weight,
            mae: cfg.mae_weight,
        })
    }
}

/// Loss terms as scalar tensors `[1]` (differentiable when the inputs are).
#[derive(Debug, Clone)]
pub struct LossTerms {
    pub total: Tensor<1>,
    pub nll: Tensor<1>,
    pub mae: Tensor<1>,
}

/// Poisson NLL `mean(λ − y·ln λ)`, λ = `pred_intensity` clamped ≥ 1e-12, y = `target_scaled_amp²`
/// (expected counts; no ln Γ(y+1) term, as the reference).
pub fn poisson_nll(pred_intensity: Tensor<4>, target_scaled_amp: Tensor<4>) -> Tensor<1> {
    let lambda = pred_intensity.clamp_min(LAMBDA_MIN);
    let y = target_scaled_amp.powi_scalar(2);
    (lambda.clone() - y * lambda.log()).mean()
}

/// `mean|s·X − s·Â|` on scaled amplitudes.
pub fn mae(pred_amp_scaled: Tensor<4>, target_scaled_amp: Tensor<4>) -> Tensor<1> {
    (pred_amp_scaled - target_scaled_amp).abs().mean()
}

/// The PINN objective. `target_scaled_amp` is `s·X` `(B, C, N, N)`.
pub fn loss(
    out: &AutoencoderOutput,
    target_scaled_amp: Tensor<4>,
    weights: &LossWeights,
) -> Result<LossTerms, ModelError> {
    let pd = out.pred_amp_scaled.dims();
    let td = target_scaled_amp.dims();
    if pd != td {
        return Err(ModelError::Shape {
            what: "target_scaled_amp",
            got: td.to_vec(),
            expected: format!("{pd:?} (= pred_amp_scaled)"),
        });
    }
    let nll = poisson_nll(out.pred_intensity.clone(), target_scaled_amp.clone());
    let mae = mae(out.pred_amp_scaled.clone(), target_scaled_amp);
    let total = nll.clone() * weights.nll + mae.clone() * weights.mae;
    Ok(LossTerms { total, nll, mae })
}

/// Supervised baseline loss: `mean|A − A_gt| + mean|φ − φ_gt|` on the decoder outputs
/// ([`crate::PtychoPinn::amp_phase`]) against ground-truth patches of the same shape.
pub fn supervised_loss(
    amp: Tensor<4>,
    phase: Tensor<4>,
    gt_amp: Tensor<4>,
    gt_phase: Tensor<4>,
) -> Result<Tensor<1>, ModelError> {
    for (what, a, b) in [
        ("gt_amp", amp.dims(), gt_amp.dims()),
        ("gt_phase", phase.dims(), gt_phase.dims()),
    ] {
        if a != b {
            return Err(ModelError::Shape {
                what,
                got: b.to_vec(),
                expected: format!("{a:?}"),
            });
        }
    }
    Ok((amp - gt_amp).abs().mean() + (phase - gt_phase).abs().mean())
}
