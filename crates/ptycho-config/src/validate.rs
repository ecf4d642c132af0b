//! Unchecked config → `validate()` → [`Valid`] config (linfa style).

use std::ops::Deref;

use crate::error::ConfigError;
use crate::model::ModelConfig;
use crate::params::Params;
use crate::training::{InferenceConfig, TrainingConfig};

/// A config that passed validation. Only `validate()` makes one.
#[derive(Debug, Clone, PartialEq)]
pub struct Valid<T>(T);

impl<T> Deref for Valid<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> Valid<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

fn invalid(field: &'static str, value: impl ToString, allowed: &str) -> ConfigError {
    ConfigError::Invalid {
        field,
        value: value.to_string(),
        allowed: allowed.to_string(),
    }
}

impl ModelConfig {
    pub fn check(&self) -> Result<(), ConfigError> {
        if ![64, 128, 256].contains(&self.n) {
            return Err(invalid("N", self.n, "allowed: 64, 128, 256"));
        }
        if self.gridsize == 0 {
            return Err(invalid("gridsize", self.gridsize, "must be ≥ 1"));
        }
        Ok(())
    }
}

impl TrainingConfig {
    pub fn validate(self) -> Result<Valid<TrainingConfig>, ConfigError> {
        self.model.check()?;
        Ok(Valid(self))
    }
}

impl InferenceConfig {
    pub fn validate(self) -> Result<Valid<InferenceConfig>, ConfigError> {
        self.model.check()?;
        Ok(Valid(self))
    }
}

impl Params {
    /// Bridge a validated training config into the params value (update_legacy_dict).
    pub fn from_training(cfg: &Valid<TrainingConfig>) -> Params {
        Params {
            model: cfg.model.clone(),
            nphotons: cfg.nphotons,
            offset: crate::params::DEFAULT_OFFSET,
            max_position_jitter: crate::params::DEFAULT_MAX_POSITION_JITTER,
            default_probe_scale: crate::params::DEFAULT_PROBE_SCALE,
            legacy: Default::default(),
            intensity_scale: None,
            probe: None,
        }
    }
    /// Bridge a validated inference config into the params value.
    pub fn from_inference(cfg: &Valid<InferenceConfig>) -> Params {
        Params {
            model: cfg.model.clone(),
            nphotons: 1e9,
            offset: crate::params::DEFAULT_OFFSET,
            max_position_jitter: crate::params::DEFAULT_MAX_POSITION_JITTER,
            default_probe_scale: crate::params::DEFAULT_PROBE_SCALE,
            legacy: Default::default(),
            intensity_scale: None,
            probe: None,
        }
    }
}
