//! Errors of the config crate.

/// Everything that can go wrong while reading, validating or bridging a configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid value for `{field}`: {value} ({allowed})")]
    Invalid {
        field: &'static str,
        value: String,
        allowed: String,
    },
}
