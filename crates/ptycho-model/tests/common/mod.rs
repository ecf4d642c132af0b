#![allow(dead_code)]
//! Shared helpers of the integration tests.

use std::path::PathBuf;

use ptycho_config::{ModelConfig, Params, TrainingConfig};

/// Path of the reference golden file `name` in the repository's `testdata/goldens/`.
///
/// Panics, naming the path, when the file is missing: a parity test fails rather than passing
/// without comparing anything.
pub fn golden(name: &str) -> PathBuf {
    let path = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/goldens"
    ))
    .join(name);
    assert!(
        path.is_file(),
        "golden file {} is missing (the parity tests read testdata/goldens/ of the repository)",
        path.display()
    );
    path
}

pub fn params(model: ModelConfig) -> Params {
    Params::from_training(
        &TrainingConfig {
            model,
            ..Default::default()
        }
        .validate()
        .unwrap(),
    )
}

/// max |a − b| / max |b|.
pub fn rel_err(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let diff = a
        .iter()
        .zip(b)
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()));
    diff / scale.max(1e-30)
}
