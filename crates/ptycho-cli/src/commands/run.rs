//! `ptycho run`: the main job on a built-in default — simulate a training scan and a held-out test
//! scan of the reference's synthetic 'lines' objects, train PtychoPINN, reconstruct the test scan,
//! evaluate it against its ground truth and print a summary.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use ptycho_config::{InferenceConfig, ModelConfig, SimulationConfig, TrainingConfig};
use ptycho_workflows::infer::{InferRuntime, infer};
use ptycho_workflows::simulate_lines;
use ptycho_workflows::train::{TrainOptions, train};

use crate::args::{CommonArgs, DeviceArgs, OverwriteArgs};

/// Run the main job end to end on simulated data (a few minutes on 2 cores with the defaults).
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Directory receiving everything: train.npz, test.npz, model/ (wts.h5.zip, history.csv,
    /// loss_curve.png, config.toml) and reconstruction/ (reconstruction.npz, PNGs, metrics.json).
    #[arg(long, visible_alias = "output_dir", default_value = "ptycho_run")]
    output_dir: PathBuf,
    /// Scan positions (diffraction patterns) of the simulated training scan.
    #[arg(long, default_value_t = 512)]
    n_train_images: usize,
    /// Scan positions of the simulated test scan (another lines object).
    #[arg(long, default_value_t = 256)]
    n_test_images: usize,
    /// Groups formed from the training scan (gridsize 1: one pattern each).
    #[arg(long, visible_alias = "n_groups", default_value_t = 384)]
    n_groups: usize,
    /// Training epochs.
    #[arg(long, default_value_t = 3)]
    nepochs: usize,
    /// Mean photons per diffraction pattern of the simulation (Poisson noise level).
    #[arg(long, default_value_t = 1e9)]
    nphotons: f64,
    /// Seed of the simulation (the test scan uses seed + 1) and of the training.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    #[command(flatten)]
    device: DeviceArgs,
    #[command(flatten)]
    overwrite: OverwriteArgs,
    #[command(flatten)]
    common: CommonArgs,
}

pub fn run(args: &RunArgs) -> Result<ExitCode> {
    let device = args.device.kind;
    let quiet = args.common.quiet;
    // Step lines go to stderr and are progress: --quiet drops them.
    let step = |line: String| {
        if !quiet {
            eprintln!("{line}");
        }
    };
    let started = Instant::now();
    let out = &args.output_dir;
    std::fs::create_dir_all(out)
        .with_context(|| format!("cannot create output directory {}", out.display()))?;

    step(format!(
        "[1/4] simulating {} training + {} test patterns (lines objects, N=64, nphotons {:e})",
        args.n_train_images, args.n_test_images, args.nphotons
    ));
    let sim = |n_images: usize, seed: u64| {
        SimulationConfig {
            n_images,
            nphotons: args.nphotons,
            seed,
            ..Default::default()
        }
        .validate()
    };
    let train_data = simulate_lines(&sim(args.n_train_images, args.seed)?)?;
    let test_data = simulate_lines(&sim(args.n_test_images, args.seed.wrapping_add(1))?)?;
    train_data.write_npz(out.join("train.npz"))?;
    test_data.write_npz(out.join("test.npz"))?;

    step(format!(
        "[2/4] training: {} groups, {} epochs, batch 16",
        args.n_groups, args.nepochs
    ));
    let cfg = TrainingConfig {
        model: ModelConfig::default(),
        nepochs: args.nepochs,
        n_groups: args.n_groups,
        nphotons: args.nphotons,
        seed: args.seed,
        output_dir: out.join("model"),
        ..Default::default()
    }
    .validate()?;
    let report = train(
        &cfg,
        &train_data,
        &TrainOptions {
            device,
            quiet,
            overwrite: args.overwrite.overwrite,
            resume: false,
        },
    )?;

    step("[3/4] reconstructing the test scan".into());
    let infer_cfg = InferenceConfig {
        output_dir: out.join("reconstruction"),
        ..Default::default()
    }
    .validate()?;
    let result = infer(
        &report.archive_path,
        &test_data,
        &infer_cfg,
        &InferRuntime {
            device,
            write_outputs: true,
            quiet: args.common.quiet,
            ..InferRuntime::default()
        },
    )?;

    step("[4/4] evaluating against the test object".into());
    let last = report.history.last();
    println!("ptycho run — summary");
    println!(
        "  training    {} groups ({} train / {} validation), {} epochs, {:.1} s, {:.1} samples/s",
        report.n_groups,
        report.n_train,
        report.n_val,
        report.history.len(),
        report.train_seconds,
        last.map_or(f64::NAN, |r| r.samples_per_s)
    );
    println!(
        "  final loss  {:.6e} (validation {})",
        report.final_loss,
        report
            .final_val_loss
            .map_or("-".to_string(), |v| format!("{v:.6e}"))
    );
    println!(
        "  inference   {} patterns, {:.1} patterns/s; canvas {}×{} px",
        result.n_patterns,
        result.patterns_per_second,
        result.reconstruction.object.nrows(),
        result.reconstruction.object.ncols()
    );
    match &result.evaluation {
        Some(eval) => {
            let (a, p) = (&eval.metrics.amplitude, &eval.metrics.phase);
            let opt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.3}"));
            println!("  metric           amplitude      phase");
            println!("  MAE          {:>12.4} {:>10.4}", a.mae, p.mae);
            println!(
                "  PSNR (255)   {:>12.2} {:>10.2}",
                a.psnr_peak255, p.psnr_peak255
            );
            println!("  SSIM         {:>12.4} {:>10.4}", a.ssim, p.ssim);
            println!("  MS-SSIM      {:>12.4} {:>10.4}", a.ms_ssim, p.ms_ssim);
            println!("  FRC50        {:>12} {:>10}", opt(a.frc50), opt(p.frc50));
        }
        None => println!(
            "  metrics     not computed: {}",
            result
                .evaluation_error
                .as_deref()
                .unwrap_or("no ground truth")
        ),
    }
    println!("  outputs     {}", out.display());
    for f in &result.files {
        println!("              {}", f.display());
    }
    println!("  total time  {:.1} s", started.elapsed().as_secs_f64());
    Ok(ExitCode::SUCCESS)
}
