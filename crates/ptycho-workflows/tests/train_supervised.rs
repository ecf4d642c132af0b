//! The supervised baseline through `ptycho_workflows::train::train` (N = 64, n_filters_scale 1,
//! 32 groups, batch 4): it learns, its archive loads as the supervised network, and an
//! interrupted run resumed from its checkpoint repeats the uninterrupted one.

use std::path::Path;

use ptycho_config::{ModelConfig, ModelType, SimulationConfig, TrainingConfig, Valid};
use ptycho_persist::{ArchivedModel, load_any_model, load_model};
use ptycho_workflows::WorkflowError;
use ptycho_workflows::train::{TrainOptions, train};
use ptycho_workflows::{RawData, simulate_lines};

fn data() -> RawData {
    simulate_lines(
        &SimulationConfig {
            n_images: 40,
            seed: 7,
            ..Default::default()
        }
        .validate()
        .unwrap(),
    )
    .unwrap()
}

fn config(dir: &Path, nepochs: usize, model_type: ModelType) -> Valid<TrainingConfig> {
    TrainingConfig {
        model: ModelConfig {
            n_filters_scale: 1,
            model_type,
            ..Default::default()
        },
        n_groups: 32,
        nepochs,
        batch_size: 4,
        early_stop_patience: 0,
        output_dir: dir.to_path_buf(),
        ..Default::default()
    }
    .validate()
    .unwrap()
}

fn opts(resume: bool) -> TrainOptions {
    TrainOptions {
        quiet: true,
        resume,
        ..Default::default()
    }
}

#[test]
fn supervised_run_learns_archives_and_resumes_like_an_uninterrupted_run() {
    let tmp = tempfile::tempdir().unwrap();
    let raw = data();
    let full_dir = tmp.path().join("full");
    let full = train(
        &config(&full_dir, 3, ModelType::Supervised),
        &raw,
        &opts(false),
    )
    .unwrap();
    assert_eq!((full.n_groups, full.n_train, full.n_val), (32, 30, 2));
    assert_eq!(full.history.len(), 3);
    for r in &full.history {
        assert!(r.loss.is_finite() && r.loss > 0.0, "{r:?}");
        assert_eq!((r.nll, r.mae), (0.0, r.loss), "{r:?}");
        assert!(r.val_loss.is_some_and(f64::is_finite), "{r:?}");
    }
    let (l1, l3) = (full.history[0].loss, full.history[2].loss);
    assert!(l3 < l1, "the supervised loss did not decrease: {l1} → {l3}");

    // The archive holds the supervised network; the PINN loader refuses it.
    let device = burn::tensor::Device::flex();
    let (loaded, params) = load_any_model(&full.archive_path, &device).unwrap();
    assert!(matches!(loaded, ArchivedModel::Supervised(_)));
    assert_eq!(params.model().model_type, ModelType::Supervised);
    assert_eq!(params.model(), full.params.model());
    let err = load_model(&full.archive_path, &device).unwrap_err();
    let msg = format!(
        "{err}: {}",
        std::error::Error::source(&err).map_or(String::new(), ToString::to_string)
    );
    assert!(msg.contains("holds a supervised model"), "{msg}");

    // Interrupted after 1 epoch, resumed to 3: the same history (same batches, restored Adam).
    let dir = tmp.path().join("resumed");
    train(&config(&dir, 1, ModelType::Supervised), &raw, &opts(false)).unwrap();
    let resumed = train(&config(&dir, 3, ModelType::Supervised), &raw, &opts(true)).unwrap();
    assert_eq!(resumed.resumed_from_epoch, Some(1));
    assert_eq!(resumed.epochs_run, 2);
    for (a, b) in full.history.iter().zip(&resumed.history) {
        let tol = 1e-5 * a.loss.abs().max(1.0);
        assert!((a.loss - b.loss).abs() <= tol, "{a:?} vs {b:?}");
    }

    // A PINN config cannot resume the supervised checkpoint.
    let err = train(&config(&dir, 4, ModelType::Pinn), &raw, &opts(true)).unwrap_err();
    assert!(
        matches!(&err, WorkflowError::Resume { reason, .. } if reason.contains("model configuration")),
        "{err}"
    );
}

#[test]
fn supervised_training_without_ground_truth_is_refused_before_writing() {
    let tmp = tempfile::tempdir().unwrap();
    let mut raw = data();
    raw.object_guess = None;
    raw.y = None;
    let dir = tmp.path().join("run");
    let err = train(&config(&dir, 1, ModelType::Supervised), &raw, &opts(false)).unwrap_err();
    assert!(matches!(err, WorkflowError::TrainingData { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "training data: supervised training needs ground-truth object patches, and the file \
         has neither `Y` nor `objectGuess`"
    );
    assert!(!dir.exists());
    // The PINN needs no ground truth: the same data get past the data checks (1 epoch).
    train(&config(&dir, 1, ModelType::Pinn), &raw, &opts(false)).unwrap();
}
