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

/// Collects each float parameter's gradient (empty when it has none), in visit order.
pub struct CollectGrads<'a>(
    pub &'a burn::optim::GradientsParams,
    pub &'a mut Vec<Vec<f64>>,
);

impl burn::module::ModuleVisitor for CollectGrads<'_> {
    fn visit_float<const D: usize>(&mut self, p: &burn::module::Param<burn::tensor::Tensor<D>>) {
        let v = self
            .0
            .get::<D>(p.id)
            .map(|t| {
                t.into_data()
                    .convert::<f64>()
                    .try_into_vec::<f64>()
                    .unwrap()
            })
            .unwrap_or_default();
        self.1.push(v);
    }
}

/// ‖a − b‖ / ‖b‖ (0 for two empty vectors).
pub fn rel_l2(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    let d: f64 = a.iter().zip(b).map(|(u, v)| (u - v) * (u - v)).sum();
    let n: f64 = b.iter().map(|v| v * v).sum();
    if n == 0.0 { d.sqrt() } else { (d / n).sqrt() }
}
