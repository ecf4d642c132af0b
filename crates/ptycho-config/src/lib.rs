//! Typed PtychoPINN settings, their one set of defaults and rules, config files, the legacy flat
//! params view, and the immutable [`Params`] value (CONFIG-001 by construction: a `Params` exists
//! only after a config was validated or a snapshot restored).
//!
//! Every user-facing setting lives here: [`TrainingConfig`] (with its [`ModelConfig`]),
//! [`InferenceConfig`], [`SimulationConfig`] and [`EvaluationConfig`]. Each is an unchecked struct
//! whose `validate()` applies all of its rules once and returns a [`Valid`] value; the workflows
//! accept only `&Valid<…>` (or values derived from one, such as the [`GroupingConfig`] of a valid
//! training or inference config).
//!
//! Flow: defaults < config file ([`load_config_file`], [`load_file`]) < command-line flags →
//! `validate()` → [`Valid<TrainingConfig>`] → [`Params::from_training`] → grouping / model /
//! simulation.

/// `FromStr`, `Display`, `as_str` and `NAMES` for a config enum spelled by one word per variant.
macro_rules! word_enum {
    ($ty:ident, $what:literal, { $($variant:ident => $word:literal),+ $(,)? }) => {
        impl $ty {
            /// Every accepted spelling, in declaration order.
            pub const NAMES: &'static [&'static str] = &[$($word),+];
            /// The config-file / legacy spelling.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $word),+
                }
            }
        }
        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl std::str::FromStr for $ty {
            type Err = $crate::error::ConfigError;
            fn from_str(s: &str) -> Result<Self, $crate::error::ConfigError> {
                match s {
                    $($word => Ok($ty::$variant),)+
                    other => Err($crate::error::ConfigError::Invalid {
                        field: $what,
                        value: format!("{other:?}"),
                        allowed: format!("allowed: {}", Self::NAMES.join(", ")),
                    }),
                }
            }
        }
    };
}

pub mod data;
mod decode;
pub mod error;
pub mod evaluation;
pub mod file;
pub mod grouping;
pub mod inference;
pub mod legacy;
pub mod model;
pub mod params;
pub mod simulation;
pub mod training;
pub mod validate;

pub use data::{DataOptions, DiffractionUnits};
pub use error::ConfigError;
pub use evaluation::EvaluationConfig;
pub use file::{FileFormat, load_config_file, load_file};
pub use grouping::GroupingConfig;
pub use inference::{DEFAULT_NEIGHBOR_COUNT, DEFAULT_STITCH_CROP, InferenceConfig, StitchAt};
pub use legacy::LegacyMap;
pub use model::{AmpActivation, ModelConfig, ModelType};
pub use params::{Params, ProbeField};
pub use simulation::{SimObject, SimulationConfig};
pub use training::TrainingConfig;
pub use validate::Valid;
