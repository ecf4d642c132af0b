#![allow(dead_code)]
//! Shared helpers of the integration tests.

use std::path::PathBuf;

use ptycho_config::{ModelConfig, Params, TrainingConfig};

/// `$PTYCHO_GOLDENS` or `<workspace>/../shared/goldens`; `None` (with a note) when missing.
pub fn goldens_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("PTYCHO_GOLDENS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/goldens")
        });
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "skipped: goldens directory {} not found (set PTYCHO_GOLDENS)",
            dir.display()
        );
        None
    }
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
