//! `ptycho train`: train PtychoPINN or the supervised baseline on an NPZ dataset (a thin layer over
//! `ptycho_workflows::train::train`).
//!
//! Precedence: defaults < `--config FILE` < flags; with `--resume DIR` the base is
//! `DIR/config.toml` (written by the interrupted run) instead of the defaults and `--config`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use ptycho_config::{DataOptions, InferenceConfig, TrainingConfig, Valid, load_config_file};
use ptycho_workflows::RawData;
use ptycho_workflows::data::training_files;
use ptycho_workflows::infer::{InferRuntime, infer};
use ptycho_workflows::train::{CONFIG_NAME, TrainOptions, train};

use crate::args::{CommonArgs, DeviceArgs, OverwriteArgs, TrainingArgs, resolve_training_config};

/// Train the model; writes DIR/wts.h5.zip, DIR/checkpoint.zip (every epoch), DIR/history.csv,
/// DIR/loss_curve.png and DIR/config.toml.
#[derive(Debug, Args)]
#[command(
    mut_arg("train_data_file", |a| a.visible_alias("train-data")),
    mut_arg("test_data_file", |a| a.visible_alias("test-data")),
)]
pub struct TrainArgs {
    #[command(flatten)]
    pub device: DeviceArgs,

    #[command(flatten)]
    pub common: CommonArgs,

    #[command(flatten)]
    pub overwrite: OverwriteArgs,

    /// Continue the interrupted run in DIR from its last complete epoch (reads DIR/config.toml;
    /// flags such as --nepochs still override it). Default: none.
    #[arg(long, value_name = "DIR")]
    pub resume: Option<PathBuf>,

    #[command(flatten)]
    pub training: TrainingArgs,
}

/// The config of a resumed run: `DIR/config.toml` < flags, output directory = DIR.
fn resume_config(dir: &Path, args: &TrainingArgs) -> anyhow::Result<Valid<TrainingConfig>> {
    if args.config.is_some() {
        bail!(
            "--config cannot be combined with --resume: the run's config is {}",
            dir.join(CONFIG_NAME).display()
        );
    }
    if let Some(out) = &args.overrides.output_dir
        && out != dir
    {
        bail!(
            "--output-dir {} differs from --resume {}",
            out.display(),
            dir.display()
        );
    }
    let path = dir.join(CONFIG_NAME);
    if !path.is_file() {
        bail!(
            "{}: not found; --resume needs the output directory of an earlier `ptycho train`",
            path.display()
        );
    }
    let mut cfg = load_config_file(&path)?;
    args.overrides.apply(&mut cfg);
    cfg.output_dir = dir.to_path_buf();
    Ok(cfg.validate()?)
}

/// `path` made absolute (canonical when it exists), else unchanged.
fn absolute(path: &Path) -> PathBuf {
    std::fs::canonicalize(path)
        .or_else(|_| std::path::absolute(path))
        .unwrap_or_else(|_| path.to_path_buf())
}

/// The photon count to train with instead of the configured one, if any: like the reference's
/// `train.py`, the training file's `_metadata` nphotons wins over the defaults and the config
/// file, but an explicit `--nphotons` flag wins over the file.
fn metadata_nphotons(configured: f64, metadata: Option<f64>, flag_given: bool) -> Option<f64> {
    metadata.filter(|&m| !flag_given && m != configured)
}

/// Read a data file as `options` say, printing what was decided (units, probe mode) on stdout
/// unless `quiet` (stdout: a failing command's stderr stays the one error line).
pub(crate) fn load_data(
    path: &Path,
    options: &DataOptions,
    quiet: bool,
) -> anyhow::Result<RawData> {
    let (raw, report) = RawData::load(path, options)?;
    if !quiet {
        for line in report.lines() {
            println!("note: {line}");
        }
    }
    Ok(raw)
}

pub fn run(args: &TrainArgs) -> anyhow::Result<ExitCode> {
    let resume = args.resume.is_some();
    let cfg = match &args.resume {
        Some(dir) => resume_config(dir, &args.training)?,
        None => resolve_training_config(args.training.config.as_deref(), &args.training.overrides)?,
    };
    let Some(train_arg) = cfg.train_data_file.clone() else {
        bail!("no training data: pass --train-data FILE (or train_data_file in the config)");
    };
    // A Ptychodus training folder: its train_data.npz, and its test_data.npz unless a test file
    // is given.
    let (train_path, folder_test) = training_files(&train_arg)?;
    let cfg = match folder_test {
        Some(test) if cfg.test_data_file.is_none() => {
            let mut c = cfg.into_inner();
            c.test_data_file = Some(test);
            c.validate()?
        }
        _ => cfg,
    };
    if let Some(test) = &cfg.test_data_file
        && !test.is_file()
    {
        bail!("{}: test data file not found", test.display());
    }
    // Absolute data paths in DIR/config.toml, so that `--resume DIR` works from any directory.
    let cfg = {
        let mut c = cfg.into_inner();
        c.train_data_file = Some(absolute(&train_path));
        c.test_data_file = c.test_data_file.as_deref().map(absolute);
        c.validate()?
    };
    let device = args.device.kind;
    if !device.is_compiled() {
        bail!(
            "device `{}` needs ptycho built with `--features {}`",
            device,
            device.feature().unwrap_or("flex")
        );
    }
    let raw = load_data(&train_path, &cfg.data_options(), args.common.quiet)?;
    let cfg = match metadata_nphotons(
        cfg.nphotons,
        raw.metadata_nphotons,
        args.training.overrides.nphotons.is_some(),
    ) {
        Some(n) => {
            if !args.common.quiet {
                eprintln!(
                    "note: nphotons {n:e} from the _metadata of {} (configured: {:e}); --nphotons overrides it",
                    train_path.display(),
                    cfg.nphotons
                );
            }
            let mut c = cfg.into_inner();
            c.nphotons = n;
            c.validate()?
        }
        None => cfg,
    };
    let opts = TrainOptions {
        device,
        quiet: args.common.quiet,
        overwrite: args.overwrite.overwrite,
        resume,
    };
    let report = train(&cfg, &raw, &opts)
        .with_context(|| format!("training on {}", train_path.display()))?;

    if let Some(last) = report.history.last() {
        let val = last
            .val_loss
            .map_or_else(|| "n/a".to_string(), |v| format!("{v:.6}"));
        println!(
            "trained {} epochs ({} this run{}): loss {:.6}, val_loss {val}, lr {:.2e}, {:.1} s, {:.1} groups/s",
            report.history.len(),
            report.epochs_run,
            if report.stopped_early {
                ", stopped early"
            } else {
                ""
            },
            last.loss,
            last.lr,
            report.train_seconds,
            last.samples_per_s,
        );
    }
    println!("archive: {}", report.archive_path.display());
    println!(
        "history: {}",
        report.output_dir.join("history.csv").display()
    );

    if let Some(test) = &cfg.test_data_file {
        // Like the reference's `--do_stitching`: reconstruct the test scan with the new archive.
        let test_raw = load_data(test, &cfg.data_options(), args.common.quiet)?;
        let out = report.output_dir.join("reconstruction");
        let infer_cfg = InferenceConfig {
            output_dir: out.clone(),
            ..Default::default()
        }
        .validate()?;
        let result = infer(
            &report.archive_path,
            &test_raw,
            &infer_cfg,
            &InferRuntime {
                device,
                write_outputs: true,
                quiet: args.common.quiet,
                ..InferRuntime::default()
            },
        )
        .with_context(|| format!("reconstructing {}", test.display()))?;
        println!(
            "reconstruction: {} ({} patterns, {:.1} patterns/s)",
            out.display(),
            result.n_patterns,
            result.patterns_per_second
        );
        if let Some(eval) = &result.evaluation {
            let a = &eval.metrics.amplitude;
            println!(
                "amplitude: SSIM {:.4}, PSNR(255) {:.2} dB, MAE {:.4}, FRC50 {}",
                a.ssim,
                a.psnr_peak255,
                a.mae,
                a.frc50.map_or("-".to_string(), |v| format!("{v:.2}"))
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use ptycho_model::DeviceKind;

    use super::*;

    #[derive(Debug, Parser)]
    struct Harness {
        #[command(flatten)]
        args: TrainArgs,
    }

    fn parse(argv: &[&str]) -> Result<TrainArgs, clap::Error> {
        Harness::try_parse_from(std::iter::once("t").chain(argv.iter().copied())).map(|h| h.args)
    }

    #[test]
    fn metadata_nphotons_wins_unless_the_flag_is_given() {
        assert_eq!(metadata_nphotons(1e9, Some(1e6), false), Some(1e6));
        assert_eq!(metadata_nphotons(1e9, Some(1e6), true), None);
        assert_eq!(metadata_nphotons(1e9, Some(1e9), false), None);
        assert_eq!(metadata_nphotons(1e9, None, false), None);
    }

    #[test]
    fn short_and_reference_spellings_land_in_the_config() {
        for argv in [
            [
                "--train-data",
                "a.npz",
                "--test-data",
                "b.npz",
                "--output-dir",
                "o",
                "--n-groups",
                "8",
                "--batch-size",
                "4",
            ],
            [
                "--train_data_file",
                "a.npz",
                "--test_data_file",
                "b.npz",
                "--output_dir",
                "o",
                "--n_groups",
                "8",
                "--batch_size",
                "4",
            ],
        ] {
            let a = parse(&argv).unwrap();
            let cfg = a.training.resolve().unwrap();
            assert_eq!(cfg.train_data_file.as_deref(), Some(Path::new("a.npz")));
            assert_eq!(cfg.test_data_file.as_deref(), Some(Path::new("b.npz")));
            assert_eq!(cfg.output_dir, Path::new("o"));
            assert_eq!((cfg.n_groups, cfg.batch_size), (8, 4));
            assert_eq!(a.device.kind, DeviceKind::Flex);
            assert!(!a.common.quiet && !a.overwrite.overwrite && a.resume.is_none());
        }
        let a = parse(&["--device", "cuda:1", "-q", "--overwrite", "--resume", "r"]).unwrap();
        assert_eq!(a.device.kind, DeviceKind::Cuda(1));
        assert!(a.common.quiet && a.overwrite.overwrite);
        assert_eq!(a.resume.as_deref(), Some(Path::new("r")));
        assert!(parse(&["--device", "tpu"]).is_err());
    }

    #[test]
    fn resume_reads_the_run_config_and_applies_flags() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        std::fs::write(
            dir.join(CONFIG_NAME),
            "nepochs = 3\nn_groups = 64\noutput_dir = \"elsewhere\"\n",
        )
        .unwrap();
        let a = parse(&["--nepochs", "5"]).unwrap();
        let got = resume_config(dir, &a.training).unwrap();
        assert_eq!((got.nepochs, got.n_groups), (5, 64));
        assert_eq!(got.output_dir, dir);
        // --config is refused with --resume, and so is another output directory.
        let a = parse(&["--config", "c.toml"]).unwrap();
        assert!(resume_config(dir, &a.training).is_err());
        let a = parse(&["--output-dir", "/x"]).unwrap();
        assert!(resume_config(dir, &a.training).is_err());
        // Not a run directory.
        let err = resume_config(&dir.join("none"), &parse(&[]).unwrap().training).unwrap_err();
        assert!(err.to_string().contains("config.toml"), "{err}");
    }
}
