//! Resuming: an interrupted run continued from its checkpoint reproduces the uninterrupted run
//! (same shuffles `seed + epoch`, Adam state and learning rate restored), and a resume with
//! different data or seed is refused.

use std::path::Path;

use ptycho_config::{ModelConfig, SimulationConfig, TrainingConfig, Valid};
use ptycho_workflows::WorkflowError;
use ptycho_workflows::train::{TrainOptions, train};
use ptycho_workflows::{RawData, simulate_lines};

fn data() -> RawData {
    simulate_lines(
        &SimulationConfig {
            n_images: 40,
            seed: 11,
            ..Default::default()
        }
        .validate()
        .unwrap(),
    )
    .unwrap()
}

fn config(dir: &Path, nepochs: usize, seed: u64) -> Valid<TrainingConfig> {
    TrainingConfig {
        model: ModelConfig {
            n_filters_scale: 1,
            ..Default::default()
        },
        n_groups: 32,
        nepochs,
        batch_size: 16,
        seed,
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

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(1e-30)
}

/// One test (the Burn RNG seed is process-global: the runs must not interleave).
#[test]
fn resume_continues_the_run_and_matches_an_uninterrupted_one() {
    let tmp = tempfile::tempdir().unwrap();
    let raw = data();

    let straight = train(&config(&tmp.path().join("a"), 2, 5), &raw, &opts(false)).unwrap();

    let b = tmp.path().join("b");
    let first = train(&config(&b, 1, 5), &raw, &opts(false)).unwrap();
    assert_eq!(first.history.len(), 1);
    let resumed = train(&config(&b, 2, 5), &raw, &opts(true)).unwrap();
    assert_eq!(resumed.resumed_from_epoch, Some(1));
    assert_eq!(resumed.epochs_run, 1);
    assert_eq!(resumed.history.len(), 2);
    assert_eq!(resumed.history[0], first.history[0]);

    // Same initialisation and first epoch as the uninterrupted run, and the second epoch (after
    // restoring weights, Adam moments and step count) agrees to float round-off.
    let (h0, s0) = (&resumed.history[0], &straight.history[0]);
    eprintln!(
        "straight {:?} / resumed {:?}",
        straight
            .history
            .iter()
            .map(|r| (r.loss, r.val_loss))
            .collect::<Vec<_>>(),
        resumed
            .history
            .iter()
            .map(|r| (r.loss, r.val_loss))
            .collect::<Vec<_>>()
    );
    assert!(rel(h0.loss, s0.loss) < 1e-5, "{} vs {}", h0.loss, s0.loss);
    let (h1, s1) = (&resumed.history[1], &straight.history[1]);
    assert!(rel(h1.loss, s1.loss) < 1e-4, "{} vs {}", h1.loss, s1.loss);
    let (v1, w1) = (h1.val_loss.unwrap(), s1.val_loss.unwrap());
    assert!(rel(v1, w1) < 1e-4, "{v1} vs {w1}");

    // Resuming a finished run only rewrites the archive.
    let again = train(&config(&b, 2, 5), &raw, &opts(true)).unwrap();
    assert_eq!((again.epochs_run, again.history.len()), (0, 2));

    // A different seed (hence different groups) is refused.
    let err = train(&config(&b, 3, 6), &raw, &opts(true)).unwrap_err();
    assert!(matches!(err, WorkflowError::Resume { .. }), "{err}");
}
