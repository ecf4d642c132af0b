//! Typed PtychoPINN configuration (`ModelConfig`, `TrainingConfig`, `InferenceConfig`), validation,
//! config files, the legacy flat params view, and the immutable [`Params`] value (CONFIG-001 by
//! construction: a `Params` exists only after a config was validated or a snapshot restored).
//!
//! Flow: defaults < config file ([`load_config_file`]) < command-line flags → `validate()` →
//! [`Valid<TrainingConfig>`] → [`Params::from_training`] → grouping / model / simulation.

mod decode;
pub mod error;
pub mod file;
pub mod legacy;
pub mod model;
pub mod params;
pub mod training;
pub mod validate;

pub use error::ConfigError;
pub use file::{FileFormat, load_config_file, load_inference_config_file};
pub use legacy::LegacyMap;
pub use model::{AmpActivation, ModelConfig, ModelType};
pub use params::{Params, ProbeField};
pub use training::{InferenceConfig, TrainingConfig};
pub use validate::Valid;
