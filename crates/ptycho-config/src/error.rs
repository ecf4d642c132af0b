//! Errors of the config crate.
//!
//! Every message is one line and names what is at fault: the field and its allowed range for an
//! invalid value; the file (or `legacy params` for a snapshot map) and the key for anything read.

/// Everything that can go wrong while reading, validating or bridging a configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A value outside its allowed range (validation, spec §1.4).
    #[error("invalid value for `{field}`: {value} ({allowed})")]
    Invalid {
        field: &'static str,
        value: String,
        allowed: String,
    },
    /// The config file could not be opened or read.
    #[error("{origin}: cannot read config file")]
    Read {
        origin: String,
        #[source]
        source: std::io::Error,
    },
    /// The file was read but is not a config file (too large, not UTF-8 text).
    #[error("{origin}: cannot read config file: {reason}")]
    NotText { origin: String, reason: String },
    /// The config file's extension is none of `.toml`, `.json`, `.yaml`, `.yml`.
    #[error("{origin}: unsupported config file type (expected a .toml, .json, .yaml or .yml file)")]
    UnsupportedFormat { origin: String },
    /// The file is not valid TOML / JSON / YAML.
    #[error("{origin}: {format} syntax error at line {line}, column {column}: {message}")]
    Syntax {
        origin: String,
        format: &'static str,
        line: usize,
        column: usize,
        message: String,
    },
    /// A key that no config struct has (`deny_unknown_fields`).
    #[error("{origin}: unknown key `{key}`{hint}")]
    UnknownKey {
        origin: String,
        key: String,
        /// Empty, or a suggestion such as " (did you mean `batch_size`?)".
        hint: String,
    },
    /// A key given twice (e.g. both at top level and in the `[model]` table, or as an alias).
    #[error("{origin}: key `{key}` is given twice (also as `{other}`)")]
    DuplicateKey {
        origin: String,
        key: String,
        other: String,
    },
    /// A key whose value has the wrong type or is not one of the allowed words.
    #[error("{origin}: wrong value for key `{key}`: {message}")]
    WrongType {
        origin: String,
        key: String,
        message: String,
    },
    /// A key that must be present (e.g. `N`, `gridsize` in an archive's params snapshot).
    #[error("{origin}: missing required key `{key}`")]
    MissingKey { origin: String, key: &'static str },
    /// A validation error of a value that came from a file.
    #[error("{origin}: {error}")]
    InFile {
        origin: String,
        error: Box<ConfigError>,
    },
}

impl ConfigError {
    /// The field or key at fault, if the error concerns one.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Invalid { field, .. } => Some(field),
            ConfigError::UnknownKey { key, .. }
            | ConfigError::DuplicateKey { key, .. }
            | ConfigError::WrongType { key, .. } => Some(key),
            ConfigError::MissingKey { key, .. } => Some(key),
            ConfigError::InFile { error, .. } => error.key(),
            ConfigError::Read { .. }
            | ConfigError::NotText { .. }
            | ConfigError::UnsupportedFormat { .. }
            | ConfigError::Syntax { .. } => None,
        }
    }
}

/// Collapse a (possibly multi-line) message from a parser onto one line.
pub(crate) fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}
