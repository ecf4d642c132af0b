//! Config files (TOML, JSON or YAML, chosen by extension): one loader for every settings struct
//! ([`ConfigFile`]: training, inference, simulation, evaluation).
//!
//! A file holds the fields of one struct, e.g. [`TrainingConfig`]; for the structs with a model
//! (training, inference) the model fields go in a `[model]` table (`"model": {...}` in JSON,
//! `model:` in YAML) or, as in the reference's YAML files, at the top level. The grouping keys
//! (`n_groups`, `n_subsample`, `neighbor_count`, ...) may also sit in a `sampling` table, as in
//! the reference's example YAML files. All three formats go through the same decoder, so their
//! errors are the same.
//! Absent keys keep their defaults; precedence is defaults < file < command-line flags (the flags
//! are applied by the caller, then `validate()` runs). Errors name the file and the key: unknown
//! key (with a suggestion), key given twice, wrong type, or a value out of range.
//!
//! ```toml
//! nepochs = 10
//! batch_size = 8
//! train_data_file = "data/train.npz"
//!
//! [model]
//! N = 64
//! gridsize = 2
//! ```
//!
//! The same in the reference's YAML:
//!
//! ```yaml
//! nepochs: 10
//! batch_size: 8
//! train_data_file: data/train.npz
//! model:
//!   N: 64
//!   gridsize: 2
//! ```

use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::decode::{Entry, decode, defaults_of, suggestion};
use crate::error::{ConfigError, one_line};
use crate::evaluation::EvaluationConfig;
use crate::inference::InferenceConfig;
use crate::model::ModelConfig;
use crate::simulation::SimulationConfig;
use crate::training::TrainingConfig;

/// A settings struct that a config file can hold.
pub trait ConfigFile: Serialize + DeserializeOwned + Default {
    /// Range rules of single fields, checked on the file's values (rules between fields are left
    /// to `validate()`, once the command-line flags are applied).
    fn check_fields(&self) -> Result<(), ConfigError>;
}

macro_rules! config_file {
    ($($ty:ty),+) => {
        $(impl ConfigFile for $ty {
            fn check_fields(&self) -> Result<(), ConfigError> {
                <$ty>::check_fields(self)
            }
        })+
    };
}

config_file!(
    TrainingConfig,
    InferenceConfig,
    SimulationConfig,
    EvaluationConfig
);

/// Syntax of a config file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    Toml,
    Json,
    /// YAML 1.2 (`.yaml` / `.yml`), the format of the reference's config files.
    Yaml,
}

impl FileFormat {
    /// The format of `path` by its extension (`.toml` / `.json` / `.yaml` / `.yml`, any case).
    pub fn from_path(path: &Path) -> Result<FileFormat, ConfigError> {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("toml") => Ok(FileFormat::Toml),
            Some("json") => Ok(FileFormat::Json),
            Some("yaml" | "yml") => Ok(FileFormat::Yaml),
            _ => Err(ConfigError::UnsupportedFormat {
                origin: path.display().to_string(),
            }),
        }
    }
}

/// Read a training config file: defaults overlaid with the file's keys. Per-field ranges are
/// checked (errors name the file); rules between fields are checked by `validate()` once the
/// command-line flags are applied.
pub fn load_config_file(path: impl AsRef<Path>) -> Result<TrainingConfig, ConfigError> {
    load_file(path)
}

/// Read a config file of any settings struct: defaults overlaid with the file's keys, per-field
/// ranges checked (errors name the file and the key).
pub fn load_file<T: ConfigFile>(path: impl AsRef<Path>) -> Result<T, ConfigError> {
    let path = path.as_ref();
    let (text, format) = read(path)?;
    parse_config(&text, format, &path.display().to_string())
}

/// Parse a config of any settings struct from text; `origin` names the source in errors.
pub fn parse_config<T: ConfigFile>(
    text: &str,
    format: FileFormat,
    origin: &str,
) -> Result<T, ConfigError> {
    let table = parse_table(text, format, origin)?;
    let cfg: T = if defaults_of::<T>().contains_key("model") {
        decode_with_model(table, origin)?
    } else {
        decode_flat(table, origin)?
    };
    cfg.check_fields().map_err(|e| in_file(origin, e))?;
    Ok(cfg)
}

/// Parse a training config from text; `origin` names the source in errors.
pub fn parse_training_config(
    text: &str,
    format: FileFormat,
    origin: &str,
) -> Result<TrainingConfig, ConfigError> {
    parse_config(text, format, origin)
}

/// Parse an inference config from text; `origin` names the source in errors.
pub fn parse_inference_config(
    text: &str,
    format: FileFormat,
    origin: &str,
) -> Result<InferenceConfig, ConfigError> {
    parse_config(text, format, origin)
}

fn in_file(origin: &str, error: ConfigError) -> ConfigError {
    ConfigError::InFile {
        origin: origin.to_string(),
        error: Box::new(error),
    }
}

/// Largest config file read (bytes); real ones are a few hundred. Bounds memory when a user
/// points `--config` at the wrong file (a dataset, `/dev/zero`).
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

fn read(path: &Path) -> Result<(String, FileFormat), ConfigError> {
    use std::io::Read;
    let format = FileFormat::from_path(path)?;
    let read_err = |source: std::io::Error| ConfigError::Read {
        origin: path.display().to_string(),
        source,
    };
    let err = |reason: String| ConfigError::NotText {
        origin: path.display().to_string(),
        reason,
    };
    let file = std::fs::File::open(path).map_err(read_err)?;
    let mut bytes = Vec::new();
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(err(format!(
            "larger than {MAX_CONFIG_BYTES} bytes; not a config file"
        )));
    }
    let text = String::from_utf8(bytes)
        .map_err(|e| err(format!("not UTF-8 text ({})", e.utf8_error())))?;
    Ok((text, format))
}

/// 1-based line and column of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

fn parse_table(
    text: &str,
    format: FileFormat,
    origin: &str,
) -> Result<Map<String, Value>, ConfigError> {
    let value = match format {
        FileFormat::Toml => {
            let table = toml::from_str::<toml::Table>(text).map_err(|e| {
                let (line, column) = line_column(text, e.span().map_or(0, |s| s.start));
                ConfigError::Syntax {
                    origin: origin.to_string(),
                    format: "TOML",
                    line,
                    column,
                    message: one_line(e.message()),
                }
            })?;
            reject_non_finite(&table, "", origin)?;
            serde_json::to_value(table).map_err(|e| ConfigError::Syntax {
                origin: origin.to_string(),
                format: "TOML",
                line: 0,
                column: 0,
                message: one_line(&e.to_string()),
            })?
        }
        FileFormat::Json => {
            serde_json::from_str::<Value>(text).map_err(|e| ConfigError::Syntax {
                origin: origin.to_string(),
                format: "JSON",
                line: e.line(),
                column: e.column(),
                message: one_line(&strip_position(&e.to_string())),
            })?
        }
        FileFormat::Yaml => {
            let value = serde_norway::from_str::<serde_norway::Value>(text).map_err(|e| {
                let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
                ConfigError::Syntax {
                    origin: origin.to_string(),
                    format: "YAML",
                    line,
                    column,
                    message: one_line(&strip_position(&e.to_string())),
                }
            })?;
            match value {
                // An empty document (or one of comments only) sets nothing, as in TOML.
                serde_norway::Value::Null => Value::Object(Map::new()),
                other => yaml_to_json(other, "", origin)?,
            }
        }
    };
    match value {
        Value::Object(m) => Ok(m),
        other => Err(ConfigError::WrongType {
            origin: origin.to_string(),
            key: "(top level)".into(),
            message: format!("expected an object of keys, found {}", kind(&other)),
        }),
    }
}

/// TOML can spell `nan` and `inf`; JSON (our common representation) cannot, and would turn them
/// into `null`. No config value may be non-finite, so refuse them here, naming the key.
fn reject_non_finite(table: &toml::Table, prefix: &str, origin: &str) -> Result<(), ConfigError> {
    fn check(v: &toml::Value, key: &str, origin: &str) -> Result<(), ConfigError> {
        match v {
            toml::Value::Float(f) if !f.is_finite() => Err(ConfigError::WrongType {
                origin: origin.to_string(),
                key: key.to_string(),
                message: format!("{f} is not a finite number"),
            }),
            toml::Value::Array(a) => a.iter().try_for_each(|x| check(x, key, origin)),
            toml::Value::Table(t) => reject_non_finite(t, key, origin),
            _ => Ok(()),
        }
    }
    for (k, v) in table {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        check(v, &key, origin)?;
    }
    Ok(())
}

/// A YAML value as JSON (our common representation), refusing what JSON cannot hold, naming the
/// key: non-finite numbers (`.nan`, `.inf`), mapping keys that are not strings, tagged values.
fn yaml_to_json(v: serde_norway::Value, key: &str, origin: &str) -> Result<Value, ConfigError> {
    use serde_norway::Value as Y;
    let wrong = |message: String| ConfigError::WrongType {
        origin: origin.to_string(),
        key: if key.is_empty() { "(top level)" } else { key }.to_string(),
        message,
    };
    Ok(match v {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => {
            if let Some(i) = n.as_u64() {
                Value::from(i)
            } else if let Some(i) = n.as_i64() {
                Value::from(i)
            } else {
                let f = n.as_f64().unwrap_or(f64::NAN);
                serde_json::Number::from_f64(f)
                    .map(Value::Number)
                    .ok_or_else(|| wrong(format!("{f} is not a finite number")))?
            }
        }
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(
            items
                .into_iter()
                .map(|x| yaml_to_json(x, key, origin))
                .collect::<Result<_, _>>()?,
        ),
        Y::Mapping(m) => {
            let mut out = Map::new();
            for (k, x) in m {
                let Y::String(k) = k else {
                    return Err(wrong(format!(
                        "keys must be strings, found {}",
                        serde_norway::to_string(&k).map_or_else(|_| "?".into(), |t| one_line(&t))
                    )));
                };
                let sub = if key.is_empty() {
                    k.clone()
                } else {
                    format!("{key}.{k}")
                };
                out.insert(k, yaml_to_json(x, &sub, origin)?);
            }
            Value::Object(out)
        }
        Y::Tagged(t) => return Err(wrong(format!("YAML tags are not supported ({})", t.tag))),
    })
}

/// serde_json appends " at line L column C"; we report the position separately.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "a table",
    }
}

/// Deprecated or alternative spellings → serde field names.
const MODEL_ALIASES: &[(&str, &str)] = &[("n", "N")];
const CONFIG_ALIASES: &[(&str, &str)] = &[("n_images", "n_groups")];

/// The keys a `sampling` table may hold (the reference's example YAML files group them so); each
/// means the same as at the top level.
const SAMPLING_KEYS: &[&str] = &[
    "n_groups",
    "n_subsample",
    "subsample_seed",
    "neighbor_count",
    "sequential_sampling",
    "enable_oversampling",
    "neighbor_pool_size",
];

fn canonical<'a>(key: &'a str, aliases: &[(&'static str, &'static str)]) -> &'a str {
    aliases
        .iter()
        .find(|(a, _)| *a == key)
        .map_or(key, |(_, f)| *f)
}

/// Push an entry, refusing a field that is already there (under another spelling or place).
fn push_unique(entries: &mut Vec<Entry>, entry: Entry, origin: &str) -> Result<(), ConfigError> {
    if let Some(prev) = entries.iter().find(|e| e.field == entry.field) {
        return Err(ConfigError::DuplicateKey {
            origin: origin.to_string(),
            key: entry.shown,
            other: prev.shown.clone(),
        });
    }
    entries.push(entry);
    Ok(())
}

/// Decode a file's table into a struct without a model: every key is one of its fields (or an
/// alias of one).
fn decode_flat<T>(table: Map<String, Value>, origin: &str) -> Result<T, ConfigError>
where
    T: serde::Serialize + serde::de::DeserializeOwned + Default,
{
    let fields = defaults_of::<T>();
    let mut entries = Vec::new();
    for (key, value) in table {
        let field = [
            key.as_str(),
            canonical(&key, CONFIG_ALIASES),
            canonical(&key, MODEL_ALIASES),
        ]
        .into_iter()
        .find(|f| fields.contains_key(*f))
        .map(str::to_string);
        let Some(field) = field else {
            return Err(ConfigError::UnknownKey {
                origin: origin.to_string(),
                hint: suggestion(&key, fields.keys().map(String::as_str)),
                key,
            });
        };
        let entry = Entry {
            field,
            shown: key,
            value,
        };
        push_unique(&mut entries, entry, origin)?;
    }
    decode(entries, origin)
}

/// Split a file's table into model entries and config entries and decode both.
fn decode_with_model<T>(table: Map<String, Value>, origin: &str) -> Result<T, ConfigError>
where
    T: serde::Serialize + serde::de::DeserializeOwned + Default,
{
    let model_fields = defaults_of::<ModelConfig>();
    let config_fields = defaults_of::<T>();
    let mut model_entries = Vec::new();
    let mut entries = Vec::new();
    for (key, value) in table {
        if key == "model" {
            let Value::Object(model) = value else {
                return Err(ConfigError::WrongType {
                    origin: origin.to_string(),
                    key,
                    message: format!("expected a table of model keys, found {}", kind(&value)),
                });
            };
            for (k, v) in model {
                let field = canonical(&k, MODEL_ALIASES).to_string();
                if !model_fields.contains_key(&field) {
                    return Err(ConfigError::UnknownKey {
                        origin: origin.to_string(),
                        hint: suggestion(&k, model_fields.keys().map(String::as_str)),
                        key: format!("model.{k}"),
                    });
                }
                let entry = Entry {
                    field,
                    shown: format!("model.{k}"),
                    value: v,
                };
                push_unique(&mut model_entries, entry, origin)?;
            }
            continue;
        }
        if key == "sampling" {
            let Value::Object(sampling) = value else {
                return Err(ConfigError::WrongType {
                    origin: origin.to_string(),
                    key,
                    message: format!("expected a table of sampling keys, found {}", kind(&value)),
                });
            };
            let known: Vec<&str> = SAMPLING_KEYS
                .iter()
                .copied()
                .filter(|f| config_fields.contains_key(*f))
                .collect();
            for (k, v) in sampling {
                let field = canonical(&k, CONFIG_ALIASES);
                if !known.contains(&field) {
                    return Err(ConfigError::UnknownKey {
                        origin: origin.to_string(),
                        hint: suggestion(&k, known.iter().copied()),
                        key: format!("sampling.{k}"),
                    });
                }
                let entry = Entry {
                    field: field.to_string(),
                    shown: format!("sampling.{k}"),
                    value: v,
                };
                push_unique(&mut entries, entry, origin)?;
            }
            continue;
        }
        let model_field = canonical(&key, MODEL_ALIASES);
        let config_field = canonical(&key, CONFIG_ALIASES);
        if config_fields.contains_key(config_field) {
            let entry = Entry {
                field: config_field.to_string(),
                shown: key.clone(),
                value,
            };
            push_unique(&mut entries, entry, origin)?;
        } else if model_fields.contains_key(model_field) {
            let entry = Entry {
                field: model_field.to_string(),
                shown: key.clone(),
                value,
            };
            push_unique(&mut model_entries, entry, origin)?;
        } else {
            let known = config_fields
                .keys()
                .chain(model_fields.keys())
                .map(String::as_str);
            return Err(ConfigError::UnknownKey {
                origin: origin.to_string(),
                hint: suggestion(&key, known),
                key,
            });
        }
    }
    let model: ModelConfig = decode(model_entries, origin)?;
    let model = serde_json::to_value(model).unwrap_or(Value::Null);
    entries.push(Entry {
        field: "model".into(),
        shown: "model".into(),
        value: model,
    });
    decode(entries, origin)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::model::AmpActivation;

    fn toml(text: &str) -> Result<TrainingConfig, ConfigError> {
        parse_training_config(text, FileFormat::Toml, "run.toml")
    }
    fn json(text: &str) -> Result<TrainingConfig, ConfigError> {
        parse_training_config(text, FileFormat::Json, "run.json")
    }

    #[test]
    fn toml_nested_and_flat_model_keys() {
        let c = toml(
            "nepochs = 3\nbatch_size = 8\ngridsize = 2\ntrain_data_file = \"t.npz\"\n\
             [model]\nN = 128\namp_activation = \"swish\"\nobject_big = false\n",
        )
        .unwrap();
        assert_eq!((c.nepochs, c.batch_size), (3, 8));
        assert_eq!((c.model.n, c.model.gridsize), (128, 2));
        assert_eq!(c.model.amp_activation, AmpActivation::Swish);
        assert!(!c.model.object_big);
        assert_eq!(c.train_data_file, Some(PathBuf::from("t.npz")));
        // untouched keys keep their defaults
        assert_eq!(c.nphotons, 1e9);
        assert_eq!(c.model.probe_scale, 4.0);
    }

    fn yaml(text: &str) -> Result<TrainingConfig, ConfigError> {
        parse_training_config(text, FileFormat::Yaml, "run.yaml")
    }

    /// A training config as the reference's YAML files are written (flat model keys, quoted
    /// words, `n_images`, floats for counts): every value lands in its field.
    #[test]
    fn reference_style_yaml_loads() {
        let c = yaml(
            "# gridsize-2 comparison run\n\
             N: 128\ngridsize: 2\nn_filters_scale: 1\nmodel_type: 'pinn'\n\
             amp_activation: 'swish'\nobject_big: true\nprobe_big: false\nprobe_mask: true\n\
             pad_object: true\nprobe_scale: 10.0\nnepochs: 7\nbatch_size: 8\n\
             output_dir: \"cmp_outputs\"\ntrain_data_file: \"train.npz\"\n\
             test_data_file: test.npz\nn_images: 300\nnphotons: 1000.0\nnll_weight: 1.0\n\
             mae_weight: 0.0\nprobe_trainable: true\nintensity_scale_trainable: true\n\
             positions_provided: true\nneighbor_count: 5\nlearning_rate: 2.0e-3\n",
        )
        .unwrap();
        let m = &c.model;
        assert_eq!((m.n, m.gridsize, m.n_filters_scale), (128, 2, 1));
        assert_eq!(m.amp_activation, AmpActivation::Swish);
        assert!(m.object_big && !m.probe_big && m.probe_mask && m.pad_object);
        assert_eq!(m.probe_scale, 10.0);
        assert_eq!((c.nepochs, c.batch_size, c.n_groups), (7, 8, 300));
        assert_eq!(c.output_dir, PathBuf::from("cmp_outputs"));
        assert_eq!(c.train_data_file, Some(PathBuf::from("train.npz")));
        assert_eq!(c.test_data_file, Some(PathBuf::from("test.npz")));
        assert_eq!((c.nphotons, c.nll_weight, c.mae_weight), (1000.0, 1.0, 0.0));
        assert!(c.probe_trainable && c.intensity_scale_trainable && c.positions_provided);
        assert_eq!((c.neighbor_count, c.learning_rate), (5, 2e-3));
        assert!(c.validate().is_ok());
    }

    /// Nested `model:` and `sampling:` tables (the reference's example files), and the same
    /// values as TOML give the same config.
    #[test]
    fn yaml_nested_tables_match_toml() {
        let y = yaml(
            "model:\n  gridsize: 2\n  N: 64\nsampling:\n  n_subsample: 512\n  n_groups: 1024\n\
             \x20 neighbor_count: 7\n  enable_oversampling: true\n  neighbor_pool_size: 7\n\
             \x20 subsample_seed: 42\nnepochs: 50\nnphotons: 1e6\n",
        )
        .unwrap();
        let t = toml(
            "nepochs = 50\nnphotons = 1e6\nn_subsample = 512\nn_groups = 1024\n\
             neighbor_count = 7\nenable_oversampling = true\nneighbor_pool_size = 7\n\
             subsample_seed = 42\n[model]\ngridsize = 2\nN = 64\n",
        )
        .unwrap();
        assert_eq!(y, t);
        assert_eq!(
            (y.n_groups, y.n_subsample, y.neighbor_count),
            (1024, Some(512), 7)
        );
        assert_eq!(y.nphotons, 1e6);
        // An empty file (or one of comments only) sets nothing.
        assert_eq!(yaml("# nothing\n").unwrap(), TrainingConfig::default());
        // The JSON-style flow syntax is YAML too.
        let c = yaml("{nepochs: 2, model: {N: 128}}").unwrap();
        assert_eq!((c.nepochs, c.model.n), (2, 128));
    }

    /// YAML errors are the TOML/JSON errors: file, key, suggestion; position of a syntax error.
    #[test]
    fn yaml_errors_name_file_and_key() {
        let e = yaml("nepochs: 3\nbatch_sise: 8\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "run.yaml: unknown key `batch_sise` (did you mean `batch_size`?)"
        );
        let e = yaml("model:\n  gridsze: 2\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "run.yaml: unknown key `model.gridsze` (did you mean `gridsize`?)"
        );
        let e = yaml("sampling:\n  neighbour_count: 7\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "run.yaml: unknown key `sampling.neighbour_count` (did you mean `neighbor_count`?)"
        );
        let e = yaml("sampling:\n  nepochs: 7\n").unwrap_err();
        assert_eq!(e.key(), Some("sampling.nepochs"));
        let e = yaml("nepochs: ten\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "run.yaml: wrong value for key `nepochs`: invalid type: string \"ten\", expected usize"
        );
        let e = yaml("model:\n  probe_scale: .nan\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "run.yaml: wrong value for key `model.probe_scale`: NaN is not a finite number"
        );
        let e = yaml("nepochs: 3\ngridsize: 2\nmodel:\n  gridsize: 1\n").unwrap_err();
        assert!(e.to_string().contains("given twice"), "{e}");
        let e = yaml("nepochs: 3\nnepochs: 4\n").unwrap_err();
        assert!(
            e.to_string().starts_with("run.yaml: YAML syntax error"),
            "{e}"
        );
        let e = yaml("nepochs: 3\nbatch_size: [8\n").unwrap_err();
        let s = e.to_string();
        assert!(s.starts_with("run.yaml: YAML syntax error at line "), "{s}");
        assert!(!s.contains('\n'), "{s}");
        let e = yaml("- 1\n- 2\n").unwrap_err();
        assert_eq!(e.key(), Some("(top level)"));
        let e = yaml("batch_size: 12\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "run.yaml: invalid value for `batch_size`: 12 (must be a power of two: 1, 2, 4, 8, 16, ...)"
        );
    }

    #[test]
    fn json_file_and_integer_for_float() {
        let c = json(r#"{"nphotons": 1000000, "n_images": 64, "model": {"n": 256}}"#).unwrap();
        assert_eq!(c.nphotons, 1e6);
        assert_eq!(c.n_groups, 64);
        assert_eq!(c.model.n, 256);
    }

    #[test]
    fn serialized_config_loads_back() {
        let mut c = TrainingConfig::default();
        c.model.gridsize = 2;
        c.n_subsample = Some(10);
        let text = toml::to_string(&c).unwrap();
        assert_eq!(toml(&text).unwrap(), c);
        let text = serde_json::to_string(&c).unwrap();
        assert_eq!(json(&text).unwrap(), c);
    }

    #[test]
    fn unknown_key_names_file_and_key() {
        let e = toml("nepochs = 3\nbatch_sise = 8\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "run.toml: unknown key `batch_sise` (did you mean `batch_size`?)"
        );
        let e = toml("[model]\nfoo = 1\n").unwrap_err();
        assert_eq!(e.to_string(), "run.toml: unknown key `model.foo`");
        assert_eq!(e.key(), Some("model.foo"));
        let e = json(r#"{"colour": "red"}"#).unwrap_err();
        assert_eq!(e.to_string(), "run.json: unknown key `colour`");
    }

    #[test]
    fn wrong_type_names_file_and_key() {
        let e = toml("nepochs = \"ten\"\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "run.toml: wrong value for key `nepochs`: invalid type: string \"ten\", expected usize"
        );
        let e = toml("[model]\namp_activation = \"tanh\"\n").unwrap_err();
        assert!(e.to_string().starts_with(
            "run.toml: wrong value for key `model.amp_activation`: unknown variant `tanh`"
        ));
        let e = json(r#"{"model": 3}"#).unwrap_err();
        assert_eq!(
            e.to_string(),
            "run.json: wrong value for key `model`: expected a table of model keys, found a number"
        );
        let e = json("[1, 2]").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("run.json: wrong value for key `(top level)`")
        );
    }

    #[test]
    fn invalid_value_names_file_and_field() {
        let e = toml("batch_size = 12\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "run.toml: invalid value for `batch_size`: 12 (must be a power of two: 1, 2, 4, 8, 16, ...)"
        );
        assert_eq!(e.key(), Some("batch_size"));
        // Relations are left to validate() (flags may still change neighbor_count).
        let c = toml("gridsize = 3\n").unwrap();
        assert!(c.validate().is_err());
    }

    #[test]
    fn non_finite_toml_floats_are_refused_by_key() {
        let e = toml("learning_rate = nan\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "run.toml: wrong value for key `learning_rate`: NaN is not a finite number"
        );
        let e = toml("[model]\nprobe_scale = -inf\n").unwrap_err();
        assert_eq!(e.key(), Some("model.probe_scale"));
    }

    #[test]
    fn duplicate_keys_are_refused() {
        let e = toml("gridsize = 2\n[model]\ngridsize = 1\n").unwrap_err();
        assert!(e.to_string().contains("`gridsize`"), "{e}");
        assert!(e.to_string().contains("given twice"), "{e}");
        let e = json(r#"{"n_groups": 1, "n_images": 2}"#).unwrap_err();
        assert!(e.to_string().contains("given twice"), "{e}");
    }

    #[test]
    fn syntax_errors_are_one_line_with_position() {
        let e = toml("nepochs = 3\nbatch_size = = 8\n").unwrap_err();
        let s = e.to_string();
        assert!(
            s.starts_with("run.toml: TOML syntax error at line 2, column"),
            "{s}"
        );
        assert!(!s.contains('\n'));
        let e = json("{\n \"nepochs\": 3,\n}").unwrap_err();
        let s = e.to_string();
        assert!(
            s.starts_with("run.json: JSON syntax error at line 3, column 1"),
            "{s}"
        );
        assert!(!s.contains('\n'));
    }

    #[test]
    fn files_are_read_by_extension() {
        let dir = std::env::temp_dir().join(format!("ptycho-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let t = dir.join("a.toml");
        std::fs::write(&t, "nepochs = 2\n").unwrap();
        assert_eq!(load_config_file(&t).unwrap().nepochs, 2);
        let j = dir.join("b.JSON");
        std::fs::write(&j, r#"{"nepochs": 4}"#).unwrap();
        assert_eq!(load_config_file(&j).unwrap().nepochs, 4);
        let y = dir.join("c.yaml");
        std::fs::write(&y, "nepochs: 5\nmodel:\n  gridsize: 2\n").unwrap();
        let c = load_config_file(&y).unwrap();
        assert_eq!((c.nepochs, c.model.gridsize), (5, 2));
        let y = dir.join("d.YML");
        std::fs::write(&y, "nepochs: 6").unwrap();
        assert_eq!(load_config_file(&y).unwrap().nepochs, 6);
        let ini = dir.join("c.ini");
        std::fs::write(&ini, "nepochs = 4").unwrap();
        let e = load_config_file(&ini).unwrap_err().to_string();
        assert!(
            e.contains("c.ini") && e.contains(".toml, .json, .yaml or .yml"),
            "{e}"
        );
        let missing = dir.join("missing.toml");
        let e = load_config_file(&missing).unwrap_err().to_string();
        assert!(e.contains("missing.toml: cannot read config file"), "{e}");
        let i = dir.join("i.toml");
        std::fs::write(&i, "model_path = \"runs/x\"\nstitch_crop = 10\n").unwrap();
        let c = load_file::<InferenceConfig>(&i).unwrap();
        assert_eq!(c.stitch_crop, 10);
        std::fs::write(&i, "stitch_crop = 11\n").unwrap();
        let e = load_file::<InferenceConfig>(&i).unwrap_err().to_string();
        assert!(
            e.contains("i.toml") && e.contains("`stitch_crop`: 11"),
            "{e}"
        );
        let s = dir.join("s.json");
        std::fs::write(&s, r#"{"n_images": 8, "n": 128, "noise": false}"#).unwrap();
        let c: SimulationConfig = load_file(&s).unwrap();
        assert_eq!((c.n_images, c.n, c.noise), (8, 128, false));
        std::fs::write(&s, r#"{"n_image": 8}"#).unwrap();
        let e = load_file::<SimulationConfig>(&s).unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "{}: unknown key `n_image` (did you mean `n_images`?)",
                s.display()
            )
        );
        let v = dir.join("e.toml");
        std::fs::write(&v, "stitch_crop = 16\n").unwrap();
        let c: EvaluationConfig = load_file(&v).unwrap();
        assert_eq!(c.stitch_crop, Some(16));
        std::fs::write(&v, "[model]\nN = 64\n").unwrap();
        let e = load_file::<EvaluationConfig>(&v).unwrap_err().to_string();
        assert!(e.contains("unknown key `model`"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
