//! Typed PtychoPINN configuration (`ModelConfig`, `TrainingConfig`, `InferenceConfig`), validation,
//! the legacy flat params view, and the immutable [`Params`] value (CONFIG-001 by construction).

pub mod error;
pub mod legacy;
pub mod model;
pub mod params;
pub mod training;
pub mod validate;

pub use error::ConfigError;
pub use model::{AmpActivation, ModelConfig, ModelType};
pub use params::{Params, ProbeField};
pub use training::{InferenceConfig, TrainingConfig};
pub use validate::Valid;
