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
    /// Patch and detector size in pixels: 64, 128 or 256 (legacy key `N`; `n` is accepted too).
    #[serde(rename = "N", alias = "n")]
    pub n: usize,
    /// Group side (patches per row of a group); C = gridsize² patches per group. ≥ 1.
    pub gridsize: usize,
    /// Width multiplier of the U-Net (filters = 32·scale, 64·scale, ...). ≥ 1.
    pub n_filters_scale: usize,
    /// Which network to train: `pinn` (PtychoPINN) or `supervised` (the supervised baseline, spec
    /// §5.4, trained against ground-truth patches).
    pub model_type: ModelType,
    /// Activation of the amplitude head.
    pub amp_activation: AmpActivation,
    /// Reassemble the C patches of a group inside the model.
    pub object_big: bool,
    /// Decoder also predicts the border outside the central N/2 square.
    pub probe_big: bool,
    /// Multiply the illuminated field by the N/4 disk mask.
    pub probe_mask: bool,
    /// Decoder emits an N/2 core zero-padded to N.
    pub pad_object: bool,
    /// Probe normalisation divisor (spec §4.7): the probe is scaled so that mean |D⊙P| = 1/probe_scale
    /// (dimensionless, > 0).
    pub probe_scale: f64,
    /// σ in pixels of the 3×3 Gaussian blur of the illuminated field; 0 = off. ≥ 0.
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

word_enum!(AmpActivation, "amp_activation", {
    Sigmoid => "sigmoid",
    Swish => "swish",
    Softplus => "softplus",
    Relu => "relu",
});

word_enum!(ModelType, "model_type", {
    Pinn => "pinn",
    Supervised => "supervised",
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enum_words_round_trip_and_match_serde() {
        for name in AmpActivation::NAMES {
            let a: AmpActivation = name.parse().unwrap();
            assert_eq!(a.as_str(), *name);
            assert_eq!(serde_json::to_value(a).unwrap(), serde_json::json!(name));
        }
        for name in ModelType::NAMES {
            let m: ModelType = name.parse().unwrap();
            assert_eq!(serde_json::to_value(m).unwrap(), serde_json::json!(name));
        }
        let err = "tanh".parse::<AmpActivation>().unwrap_err().to_string();
        assert_eq!(
            err,
            "invalid value for `amp_activation`: \"tanh\" (allowed: sigmoid, swish, softplus, relu)"
        );
    }

    #[test]
    fn channels_is_gridsize_squared() {
        let m = ModelConfig {
            gridsize: 3,
            ..Default::default()
        };
        assert_eq!(m.channels(), 9);
        assert_eq!(ModelConfig::default().channels(), 1);
    }
}
