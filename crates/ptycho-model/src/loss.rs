//! Losses (spec §5): Poisson NLL on intensities, MAE on scaled amplitudes (both optionally over
//! the good pixels of a bad-pixel mask), the real-space loss (total variation, amplitude MAE
//! against the ground truth), supervised MAE.

use burn::tensor::{DType, Device, Tensor};
use ptycho_config::TrainingConfig;

use crate::complex::ComplexTensor;
use crate::error::ModelError;
use crate::network::AutoencoderOutput;
use crate::{ops, reassembly};

/// Lower clamp of the Poisson rate λ = (s·Â)² (the reference has none; λ = 0 with y > 0 would
/// give an infinite loss).
pub const LAMBDA_MIN: f64 = 1e-12;

/// Weights of the total objective (spec §5.4)
/// `L = realspace·L_rs + mae·L_MAE + nll·L_NLL`, with the real-space loss (spec §5.3)
/// `L_rs = tv·TV(pred) + realspace_mae·MAE_rs(pred, truth)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LossWeights {
    pub nll: f64,
    pub mae: f64,
    /// `realspace_weight`: weight of `L_rs` in the total.
    pub realspace: f64,
    /// `realspace_mae_weight`: weight of the amplitude MAE inside `L_rs`.
    pub realspace_mae: f64,
    /// `tv_weight`: weight of the total variation inside `L_rs`.
    pub tv: f64,
}

impl Default for LossWeights {
    fn default() -> Self {
        Self {
            nll: 1.0,
            mae: 0.0,
            realspace: 0.0,
            realspace_mae: 0.0,
            tv: 0.0,
        }
    }
}

impl LossWeights {
    /// Weights from the training config (its rules are checked by `validate`).
    pub fn from_training(cfg: &TrainingConfig) -> Self {
        Self {
            nll: cfg.nll_weight,
            mae: cfg.mae_weight,
            realspace: cfg.realspace_weight,
            realspace_mae: cfg.realspace_mae_weight,
            tv: cfg.tv_weight,
        }
    }

    /// The real-space loss contributes to the total.
    pub fn uses_realspace(&self) -> bool {
        self.realspace > 0.0 && (self.tv > 0.0 || self.realspace_mae > 0.0)
    }

    /// The objective compares the object with a ground truth (`realspace_mae` term on).
    pub fn needs_ground_truth(&self) -> bool {
        self.realspace > 0.0 && self.realspace_mae > 0.0
    }
}

/// Detector pixels that take part in the diffraction losses (NLL, MAE): the complement of a
/// bad-pixel mask `(N, N)` (row-major, `[row, col]`, fftshifted like the data).
#[derive(Debug, Clone, PartialEq)]
pub struct PixelMask {
    n: usize,
    good: Vec<bool>,
    n_good: usize,
}

impl PixelMask {
    /// From a row-major `N×N` bad-pixel mask (`true` = bad). A mask of another length, or one
    /// that hides every pixel, is an error.
    pub fn from_bad(n: usize, bad: &[bool]) -> Result<Self, ModelError> {
        if bad.len() != n * n {
            return Err(ModelError::Shape {
                what: "bad_pixels",
                got: vec![bad.len()],
                expected: format!("{} values (N×N, N = {n})", n * n),
            });
        }
        let good: Vec<bool> = bad.iter().map(|b| !b).collect();
        let n_good = good.iter().filter(|g| **g).count();
        if n_good == 0 {
            return Err(ModelError::BadPixelMask {
                reason: format!("all {} pixels are marked bad", n * n),
            });
        }
        Ok(Self { n, good, n_good })
    }

    /// Side N of the mask.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Pixels that take part in the loss.
    pub fn n_good(&self) -> usize {
        self.n_good
    }

    /// `(1, 1, N, N)`: 1 on good pixels, 0 on bad ones.
    pub fn weights(&self, device: &Device, dtype: DType) -> Tensor<4> {
        let v = self
            .good
            .iter()
            .map(|&g| if g { 1.0 } else { 0.0 })
            .collect();
        ops::tensor_from(v, [1, 1, self.n, self.n], device, dtype)
    }
}

/// Loss terms as scalar tensors `[1]` (differentiable when the inputs are).
#[derive(Debug, Clone)]
pub struct LossTerms {
    pub total: Tensor<1>,
    pub nll: Tensor<1>,
    pub mae: Tensor<1>,
    /// `L_rs = tv·TV + realspace_mae·MAE_rs` (0 when `realspace` is 0); enters the total with
    /// the weight `realspace`.
    pub realspace: Tensor<1>,
}

/// Poisson NLL `mean(λ − y·ln λ)`, λ = `pred_intensity` clamped ≥ 1e-12, y = `target_scaled_amp²`
/// (expected counts; no ln Γ(y+1) term, as the reference).
pub fn poisson_nll(pred_intensity: Tensor<4>, target_scaled_amp: Tensor<4>) -> Tensor<1> {
    (nll_elements(pred_intensity, target_scaled_amp)).mean()
}

fn nll_elements(pred_intensity: Tensor<4>, target_scaled_amp: Tensor<4>) -> Tensor<4> {
    let lambda = pred_intensity.clamp_min(LAMBDA_MIN);
    let y = target_scaled_amp.powi_scalar(2);
    lambda.clone() - y * lambda.log()
}

/// `mean|s·X − s·Â|` on scaled amplitudes.
pub fn mae(pred_amp_scaled: Tensor<4>, target_scaled_amp: Tensor<4>) -> Tensor<1> {
    (pred_amp_scaled - target_scaled_amp).abs().mean()
}

/// Mean of per-pixel loss values `(B, C, N, N)` over the good pixels of `mask` only:
/// `Σ ℓ·w / (B·C·n_good)`; the plain mean without a mask.
fn masked_mean(elements: Tensor<4>, mask: Option<&PixelMask>) -> Result<Tensor<1>, ModelError> {
    let Some(m) = mask else {
        return Ok(elements.mean());
    };
    let [b, c, h, w] = elements.dims();
    if h != m.n || w != m.n {
        return Err(ModelError::Shape {
            what: "bad_pixels",
            got: vec![m.n, m.n],
            expected: format!("({h}, {w}) (the diffraction size)"),
        });
    }
    let wts = m.weights(&elements.device(), elements.dtype());
    Ok((elements * wts).sum() / (b * c * m.n_good) as f64)
}

/// [`poisson_nll`] over the good pixels of `mask` (mean over `B·C·n_good` values).
pub fn poisson_nll_masked(
    pred_intensity: Tensor<4>,
    target_scaled_amp: Tensor<4>,
    mask: Option<&PixelMask>,
) -> Result<Tensor<1>, ModelError> {
    masked_mean(nll_elements(pred_intensity, target_scaled_amp), mask)
}

/// [`mae`] over the good pixels of `mask` (mean over `B·C·n_good` values).
pub fn mae_masked(
    pred_amp_scaled: Tensor<4>,
    target_scaled_amp: Tensor<4>,
    mask: Option<&PixelMask>,
) -> Result<Tensor<1>, ModelError> {
    masked_mean((pred_amp_scaled - target_scaled_amp).abs(), mask)
}

/// Squared floor under `|z|²` before the square root of [`amplitude_mae`]: `|z|` has no
/// derivative at 0 (where the central mask zeroes the object), the floor makes it 0 there.
pub const AMP_FLOOR_SQ: f64 = 1e-24;

/// Total variation of a complex batch as the reference defines it: the **sum** over the whole
/// batch of the squared differences between vertical and between horizontal neighbours, of the
/// real and of the imaginary part (not normalised by batch or image size).
pub fn total_variation(z: &ComplexTensor) -> Tensor<1> {
    let tv = |t: Tensor<4>| {
        let [_, _, h, w] = t.dims();
        let dv = t.clone().narrow(2, 1, h - 1) - t.clone().narrow(2, 0, h - 1);
        let dh = t.clone().narrow(3, 1, w - 1) - t.narrow(3, 0, w - 1);
        dv.powi_scalar(2).sum() + dh.powi_scalar(2).sum()
    };
    tv(z.re.clone()) + tv(z.im.clone())
}

/// `mean | |z| − a |` over all elements: the predicted object's amplitude against the
/// ground-truth amplitude `a` (our definition of the reference's `complex_mae` with a real
/// target, which the reference leaves ill-defined).
pub fn amplitude_mae(z: &ComplexTensor, truth_amp: Tensor<4>) -> Tensor<1> {
    let amp = z.clone().norm_sqr().clamp_min(AMP_FLOOR_SQ).sqrt();
    (amp - truth_amp).abs().mean()
}

/// The real-space loss `L_rs = tv·TV(pred) + realspace_mae·MAE_rs(pred, truth)` (spec §5.3) of
/// the predicted object `obj` `(B, 1, N, N)`; with `probe_big` false the prediction is first
/// multiplied by the central mask, as the reference. `truth_amp` is the ground-truth amplitude
/// `(B, 1, N, N)`, centred like `obj`; needed only when `realspace_mae > 0`
/// ([`ModelError::MissingGroundTruth`] otherwise). Terms whose weight is 0 are not computed.
pub fn realspace_loss(
    obj: &ComplexTensor,
    truth_amp: Option<Tensor<4>>,
    weights: &LossWeights,
    probe_big: bool,
) -> Result<Tensor<1>, ModelError> {
    let device = obj.re.device();
    let dtype = obj.re.dtype();
    let [_, _, n, _] = obj.dims();
    let pred = if probe_big {
        obj.clone()
    } else {
        obj.clone()
            .mul_real(reassembly::central_mask(n, &device, dtype))
    };
    let mut l = ops::tensor_from(vec![0.0], [1], &device, dtype);
    if weights.tv > 0.0 {
        l = l + total_variation(&pred) * weights.tv;
    }
    if weights.realspace_mae > 0.0 {
        let t = truth_amp.ok_or(ModelError::MissingGroundTruth)?;
        if t.dims() != pred.dims() {
            return Err(ModelError::Shape {
                what: "truth_amp",
                got: t.dims().to_vec(),
                expected: format!("{:?} (= the predicted object)", pred.dims()),
            });
        }
        l = l + amplitude_mae(&pred, t) * weights.realspace_mae;
    }
    Ok(l)
}

/// The PINN objective without ground truth or bad-pixel mask. `target_scaled_amp` is `s·X`
/// `(B, C, N, N)`.
pub fn loss(
    out: &AutoencoderOutput,
    target_scaled_amp: Tensor<4>,
    weights: &LossWeights,
) -> Result<LossTerms, ModelError> {
    loss_with(out, target_scaled_amp, None, weights, true, None)
}

/// The PINN objective (spec §5.4): NLL and MAE over the good pixels of `mask` (all pixels
/// without one), plus `realspace·L_rs` when the real-space loss is on ([`realspace_loss`], with
/// `truth_amp` and `probe_big`).
pub fn loss_with(
    out: &AutoencoderOutput,
    target_scaled_amp: Tensor<4>,
    truth_amp: Option<Tensor<4>>,
    weights: &LossWeights,
    probe_big: bool,
    mask: Option<&PixelMask>,
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
    let nll = poisson_nll_masked(out.pred_intensity.clone(), target_scaled_amp.clone(), mask)?;
    let mae = mae_masked(out.pred_amp_scaled.clone(), target_scaled_amp, mask)?;
    let mut total = nll.clone() * weights.nll + mae.clone() * weights.mae;
    let realspace = if weights.uses_realspace() {
        let rs = realspace_loss(&out.obj, truth_amp, weights, probe_big)?;
        total = total + rs.clone() * weights.realspace;
        rs
    } else {
        ops::tensor_from(vec![0.0], [1], &nll.device(), nll.dtype())
    };
    Ok(LossTerms {
        total,
        nll,
        mae,
        realspace,
    })
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
