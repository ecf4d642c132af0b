//! Decoding a flat set of `(field, value)` entries into a config struct, attributing every error to
//! the key the user wrote (serde alone reports neither the key of a wrong type nor the file).

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::error::{ConfigError, one_line};

/// One value to decode: the struct field (serde name), the key as the user wrote it (for messages)
/// and the value.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub field: String,
    pub shown: String,
    pub value: Value,
}

/// The serde field names of `T` with their default values.
pub(crate) fn defaults_of<T: Serialize + Default>() -> Map<String, Value> {
    match serde_json::to_value(T::default()) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

/// Decode `entries` over `T::default()`. An entry naming no field of `T` is an unknown key; an entry
/// whose value `T` rejects is a wrong value naming that key.
pub(crate) fn decode<T: Serialize + DeserializeOwned + Default>(
    entries: Vec<Entry>,
    origin: &str,
) -> Result<T, ConfigError> {
    let defaults = defaults_of::<T>();
    let mut merged = defaults.clone();
    for e in entries {
        if !defaults.contains_key(&e.field) {
            return Err(ConfigError::UnknownKey {
                origin: origin.to_string(),
                hint: suggestion(&e.field, defaults.keys().map(String::as_str)),
                key: e.shown,
            });
        }
        let mut trial = defaults.clone();
        trial.insert(e.field.clone(), e.value.clone());
        if let Err(err) = serde_json::from_value::<T>(Value::Object(trial)) {
            return Err(ConfigError::WrongType {
                origin: origin.to_string(),
                key: e.shown,
                message: one_line(&err.to_string()),
            });
        }
        merged.insert(e.field, e.value);
    }
    // Each entry decodes on its own and the fields are independent, so this cannot fail; map the
    // error anyway rather than panic.
    serde_json::from_value::<T>(Value::Object(merged)).map_err(|err| ConfigError::WrongType {
        origin: origin.to_string(),
        key: "?".into(),
        message: one_line(&err.to_string()),
    })
}

/// " (did you mean `x`?)" for the closest known key, or "".
pub(crate) fn suggestion<'a>(key: &str, known: impl Iterator<Item = &'a str>) -> String {
    let norm = |s: &str| s.to_ascii_lowercase().replace(['-', '.'], "_");
    let k = norm(key);
    known
        .map(|cand| (strsim::levenshtein(&k, &norm(cand)), cand))
        .filter(|(d, _)| *d <= 2.max(key.len() / 4))
        .min()
        .map(|(_, cand)| format!(" (did you mean `{cand}`?)"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestion_finds_close_keys_only() {
        let known = ["batch_size", "nepochs", "gridsize"];
        assert_eq!(
            suggestion("batch-size", known.iter().copied()),
            " (did you mean `batch_size`?)"
        );
        assert_eq!(
            suggestion("gridsze", known.iter().copied()),
            " (did you mean `gridsize`?)"
        );
        assert_eq!(suggestion("colour", known.iter().copied()), "");
    }
}
