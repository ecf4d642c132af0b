//! `ModelConfig`: the architecture of the network (spec §1.1).

use serde::{Deserialize, Serialize};

/// Amplitude-head activation (spec §4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum AmpActivation {
    #[default]
    Sigmoid,
    Swish,
    Softplus,
    Relu,
}

/// Which network is trained: the physics-informed PINN or the supervised baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ModelType {
    #[default]
    Pinn,
    Supervised,
}

/// Network architecture. Defaults are the reference dataclass defaults (not the legacy dict's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelConfig {
    /// Patch and detector size in pixels: 64, 128 or 256.
    #[serde(rename = "N")]
    pub n: usize,
    /// Group side; C = gridsize² patches per group.
    pub gridsize: usize,
    /// Width multiplier of the U-Net.
    pub n_filters_scale: usize,
    pub model_type: ModelType,
    pub amp_activation: AmpActivation,
    /// Reassemble the C patches of a group inside the model.
    pub object_big: bool,
    /// Decoder also predicts the border outside the central N/2 square.
    pub probe_big: bool,
    /// Multiply the illuminated field by the N/4 disk mask.
    pub probe_mask: bool,
    /// Decoder emits an N/2 core zero-padded to N.
    pub pad_object: bool,
    /// Probe normalisation divisor (spec §4.7).
    pub probe_scale: f64,
    /// σ of the 3×3 Gaussian blur of the illuminated field; 0 = off.
    pub gaussian_smoothing_sigma: f64,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            n: 64,
            gridsize: 1,
            n_filters_scale: 2,
            model_type: ModelType::Pinn,
            amp_activation: AmpActivation::Sigmoid,
            object_big: true,
            probe_big: true,
            probe_mask: false,
            pad_object: true,
            probe_scale: 4.0,
            gaussian_smoothing_sigma: 0.0,
        }
    }
}

impl ModelConfig {
    /// Patches per group, C = gridsize².
    pub fn channels(&self) -> usize {
        self.gridsize * self.gridsize
    }
}
