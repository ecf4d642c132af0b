//! A tiny end-to-end training run through `ptycho_workflows::train::train` (N = 64,
//! n_filters_scale 1, 32 groups, 2 epochs, batch 16): history, outputs, archive round trip.

use std::path::Path;

use ptycho_config::{ModelConfig, SimulationConfig, TrainingConfig, Valid, load_config_file};
use ptycho_workflows::WorkflowError;
use ptycho_workflows::train::{TrainOptions, checkpoint, train};
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

fn config(dir: &Path, nepochs: usize) -> Valid<TrainingConfig> {
    TrainingConfig {
        model: ModelConfig {
            n_filters_scale: 1,
            ..Default::default()
        },
        n_groups: 32,
        nepochs,
        batch_size: 16,
        output_dir: dir.to_path_buf(),
        ..Default::default()
    }
    .validate()
    .unwrap()
}

fn quiet() -> TrainOptions {
    TrainOptions {
        quiet: true,
        ..Default::default()
    }
}

#[test]
fn tiny_run_writes_history_checkpoint_config_and_a_loadable_archive() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let cfg = config(&dir, 2);
    let raw = data();
    let report = train(&cfg, &raw, &quiet()).unwrap();

    assert_eq!((report.n_groups, report.n_train, report.n_val), (32, 30, 2));
    assert_eq!(report.history.len(), 2);
    assert_eq!(report.epochs_run, 2);
    assert_eq!(report.resumed_from_epoch, None);
    for (k, r) in report.history.iter().enumerate() {
        assert_eq!(r.epoch, k + 1);
        assert!(r.loss.is_finite() && r.nll.is_finite(), "{r:?}");
        assert_eq!(r.mae, r.mae); // computed, weight 0
        assert!(r.val_loss.is_some_and(f64::is_finite), "{r:?}");
        assert_eq!(r.lr, 1e-3);
        assert!(r.seconds > 0.0 && r.samples_per_s > 0.0);
        // nll_weight 1, mae_weight 0: the total is the NLL.
        assert!((r.loss - r.nll).abs() <= 1e-9 * r.nll.abs().max(1.0));
    }
    // The Poisson NLL mean(λ − y ln λ) is ~ −1e6·ln(1e6)-scale negative for 1e9 photons;
    // training must lower it.
    let (l1, l2) = (report.history[0].loss, report.history[1].loss);
    assert!(l2 < l1, "loss did not decrease: {l1} → {l2}");
    assert_eq!(report.final_loss, l2);

    // Outputs.
    let csv = std::fs::read_to_string(dir.join("history.csv")).unwrap();
    assert_eq!(csv.lines().count(), 3, "{csv}");
    assert!(csv.starts_with("epoch,loss,nll,mae,val_loss,lr,seconds,samples_per_s\n"));
    let png = image::open(dir.join("loss_curve.png")).unwrap();
    assert_eq!(
        (png.width(), png.height()),
        ptycho_workflows::imaging::LINE_CHART_SIZE
    );
    let back = load_config_file(dir.join("config.toml")).unwrap();
    assert_eq!(back, *cfg);

    let ck = checkpoint::load(&report.checkpoint_path).unwrap();
    assert_eq!(ck.state.epochs_done, 2);
    assert_eq!(ck.state.history, report.history);
    assert_eq!(ck.params.probe(), report.params.probe());
    assert_eq!(ck.params.intensity_scale(), report.params.intensity_scale());

    // The archive loads (CONFIG-001 order) with the same params.
    let (loaded, params) =
        ptycho_persist::load_model(&report.archive_path, &burn::tensor::Device::flex()).unwrap();
    assert_eq!(params.model(), report.params.model());
    assert_eq!(params.probe(), report.params.probe());
    assert!((params.intensity_scale() - 988.211_768_802_618_5).abs() < 1e-9);
    assert_eq!(loaded.manifest.models.len(), 2);

    // A second run into the same directory is refused without --overwrite.
    let err = train(&cfg, &raw, &quiet()).unwrap_err();
    assert!(
        matches!(&err, WorkflowError::AlreadyExists { path } if path.ends_with("wts.h5.zip")),
        "{err}"
    );
}

#[test]
fn bad_inputs_are_errors_before_training() {
    let tmp = tempfile::tempdir().unwrap();
    let raw = data();
    // Patterns are 64×64 but the config says N = 128.
    let mut cfg = (*config(tmp.path(), 1)).clone();
    cfg.model.n = 128;
    let err = train(&cfg.validate().unwrap(), &raw, &quiet()).unwrap_err();
    assert!(err.to_string().contains("N = 128"), "{err}");
    // Real-space loss is not implemented: named.
    let mut cfg = (*config(tmp.path(), 1)).clone();
    cfg.realspace_weight = 0.5;
    let err = cfg.validate().unwrap_err();
    assert!(err.to_string().contains("realspace_weight"), "{err}");
    // No archive was written.
    assert!(!tmp.path().join("wts.h5.zip").exists());
}
