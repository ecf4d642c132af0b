//! `ptycho bench --quality`: the reconstruction quality suite (issue #19). For each object, gridsize
//! and seed it simulates a training scan and a held-out test scan (another object of the same
//! kind, other positions), trains PtychoPINN at a fixed budget, reconstructs the test scan with the
//! default inference settings and scores it against the test object (amplitude and phase SSIM,
//! PSNR and FRC50, unregistered, as `ptycho infer` reports them).
//!
//! The objects and probes are `ptycho_workflows::simulate::quality`'s: by default the complex
//! object (amplitude 0.5–1 from the lines image, smooth GRF phase ±1 rad) scanned with the complex
//! probe (default disk probe × quadratic phase chirp, 0.5 rad at r = 11 px); `--objects
//! complex,lines` adds the real lines object with the default probe.
//!
//! Two budgets: the short mode (the default: 256 groups, 3 epochs at batch 4, filter scale 1; about
//! 3 minutes on 2 cores in the dev profile; CI runs it through `tests/e2e_quality.rs` with loose
//! floors) and `--long` (the settings:
//! seeds 1, 2, 3, 1024 groups, batch 16, 24 epochs, N = 64 at the default model width; hours on 2
//! cores; its numbers belong in plans/BENCHMARKS.md). Seeds: seed `s` simulates the training scan
//! with seed `s` and the test scan with seed `s + 1000`, and seeds the training with `s`; the
//! gridsizes of one seed share their data. `--untrained` reconstructs with the randomly
//! initialised network instead (the level a training that does not learn falls to);
//! `--nepochs`, `--n-groups`, `--batch-size`, `--learning-rate` change the mode's budget.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use ptycho_config::{InferenceConfig, ModelConfig, SimulationConfig, TrainingConfig};
use ptycho_model::{DeviceKind, PtychoPinn};
use ptycho_persist::{SaveOptions, save_model};
use ptycho_workflows::RawData;
use ptycho_workflows::infer::{InferRuntime, infer};
use ptycho_workflows::simulate::quality::{QualityObject, simulate_quality};
use ptycho_workflows::train::{TrainOptions, train, training_params};
use serde::Serialize;

use super::sys::utc_now;

/// The test scan of seed `s` is simulated with seed `s + TEST_SEED_OFFSET`.
pub const TEST_SEED_OFFSET: u64 = 1000;

/// The budget of one mode: data, model and training settings shared by every configuration.
#[derive(Debug, Clone, Serialize)]
pub struct QualitySettings {
    /// "short" or "long".
    pub mode: &'static str,
    /// Pattern (and probe) size N, pixels.
    pub n: usize,
    /// The model's filter scale (2 = the reference's default width).
    pub n_filters_scale: usize,
    /// Object side, pixels (None: the simulator's default int(3.5·N)).
    pub object_size: Option<usize>,
    /// Scan positions of the training scan.
    pub train_positions: usize,
    /// Scan positions of the held-out test scan.
    pub test_positions: usize,
    /// Training groups (at most one per training position).
    pub n_groups: usize,
    pub batch_size: usize,
    pub nepochs: usize,
    /// Adam's initial learning rate (the plateau schedule halves it).
    pub learning_rate: f64,
    /// Mean photons per diffraction pattern (Poisson noise).
    pub nphotons: f64,
    /// Seeds run when `--seeds` is not given.
    pub default_seeds: Vec<u64>,
}

impl QualitySettings {
    /// The short mode: a regression guard that runs in minutes in the dev profile. N = 64 (the
    /// smallest N the model takes) at filter scale 1, a 128-px object (so that few positions
    /// still overlap densely), 256 training groups, 3 epochs at batch 4 (192 Adam steps: at
    /// batch 16 the 48 steps of the same samples left the reconstruction at the untrained
    /// network's level), a 128-position test scan.
    pub fn short() -> Self {
        QualitySettings {
            mode: "short",
            n: 64,
            n_filters_scale: 1,
            object_size: Some(128),
            train_positions: 256,
            test_positions: 128,
            n_groups: 256,
            batch_size: 4,
            nepochs: 3,
            learning_rate: TrainingConfig::default().learning_rate,
            nphotons: 1e9,
            default_seeds: vec![1],
        }
    }

    /// The long mode (issue #19): 3 seeds, 1024 groups, batch 16, 24 epochs, N = 64 at the
    /// default width on the default 224-px object, a 512-position test scan.
    pub fn long() -> Self {
        QualitySettings {
            mode: "long",
            n: 64,
            n_filters_scale: ModelConfig::default().n_filters_scale,
            object_size: None,
            train_positions: 1024,
            test_positions: 512,
            n_groups: 1024,
            batch_size: 16,
            nepochs: 24,
            learning_rate: TrainingConfig::default().learning_rate,
            nphotons: 1e9,
            default_seeds: vec![1, 2, 3],
        }
    }

    fn simulation(
        &self,
        n_images: usize,
        seed: u64,
    ) -> Result<ptycho_config::Valid<SimulationConfig>> {
        Ok(SimulationConfig {
            n_images,
            n: self.n,
            object_size: self.object_size,
            nphotons: self.nphotons,
            seed,
            ..Default::default()
        }
        .validate()?)
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct QualityRequest {
    pub settings: QualitySettings,
    pub seeds: Vec<u64>,
    pub objects: Vec<QualityObject>,
    pub gridsizes: Vec<usize>,
    pub device: DeviceKind,
    /// Reconstruct with the random-init network (no training).
    pub untrained: bool,
    /// Keep the scans, models and reconstructions here (None: a temporary directory).
    pub output_dir: Option<PathBuf>,
    pub quiet: bool,
}

/// SSIM, PSNR (peak 255, as the reference reports it) and FRC50 of one component.
#[derive(Debug, Clone, Serialize)]
pub struct Scores {
    pub ssim: f64,
    pub psnr: f64,
    /// None when undefined (no crossing, or a constant component such as the lines' phase).
    pub frc50: Option<f64>,
}

/// One configuration and seed.
#[derive(Debug, Clone, Serialize)]
pub struct QualityRow {
    pub object: String,
    pub gridsize: usize,
    pub seed: u64,
    /// Training groups formed and epochs run (0 and 0: untrained).
    pub groups: usize,
    pub epochs: usize,
    pub final_loss: Option<f64>,
    pub train_seconds: f64,
    /// Test patterns fed to the network, and the fraction of the test scan's bounding box that
    /// the stitched canvas covers.
    pub test_patterns: usize,
    pub scan_coverage: f64,
    pub infer_seconds: f64,
    pub amplitude: Scores,
    pub phase: Scores,
}

/// The suite's report (`--json` prints it).
#[derive(Debug, Clone, Serialize)]
pub struct QualityReport {
    pub date_utc: String,
    pub device: String,
    pub profile: String,
    pub cores: usize,
    pub untrained: bool,
    pub settings: QualitySettings,
    pub rows: Vec<QualityRow>,
    pub wall_seconds: f64,
}

/// Run the suite.
pub fn run_quality(req: &QualityRequest) -> Result<QualityReport> {
    if req.seeds.is_empty() || req.objects.is_empty() || req.gridsizes.is_empty() {
        bail!("--quality needs at least one seed, object and gridsize");
    }
    if let Some(&g) = req.gridsizes.iter().find(|&&g| !(1..=3).contains(&g)) {
        bail!("--gridsizes: {g} is not 1, 2 or 3");
    }
    let started = Instant::now();
    let tmp;
    let root: &Path = match &req.output_dir {
        Some(d) => {
            std::fs::create_dir_all(d)
                .with_context(|| format!("cannot create output directory {}", d.display()))?;
            d
        }
        None => {
            tmp = tempfile::tempdir().context("creating a temporary directory")?;
            tmp.path()
        }
    };
    let s = &req.settings;
    let mut rows = Vec::new();
    for &object in &req.objects {
        for &seed in &req.seeds {
            let say = |line: String| {
                if !req.quiet {
                    eprintln!("quality: {line}");
                }
            };
            say(format!(
                "{object} seed {seed}: simulating {} training + {} test positions",
                s.train_positions, s.test_positions
            ));
            let train_scan = simulate_quality(object, &s.simulation(s.train_positions, seed)?)?;
            let test_scan = simulate_quality(
                object,
                &s.simulation(s.test_positions, seed + TEST_SEED_OFFSET)?,
            )?;
            for &gridsize in &req.gridsizes {
                let dir = root.join(format!("{object}-gs{gridsize}-seed{seed}"));
                say(format!(
                    "{object} gs{gridsize} seed {seed}: {}",
                    if req.untrained {
                        "random-init network".to_string()
                    } else {
                        format!("training {} groups, {} epochs", s.n_groups, s.nepochs)
                    }
                ));
                rows.push(run_one(
                    req,
                    object,
                    gridsize,
                    seed,
                    &train_scan,
                    &test_scan,
                    &dir,
                )?);
            }
        }
    }
    Ok(QualityReport {
        date_utc: utc_now(),
        device: req.device.to_string(),
        profile: if cfg!(debug_assertions) {
            "dev"
        } else {
            "release"
        }
        .into(),
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        untrained: req.untrained,
        settings: req.settings.clone(),
        rows,
        wall_seconds: started.elapsed().as_secs_f64(),
    })
}

fn run_one(
    req: &QualityRequest,
    object: QualityObject,
    gridsize: usize,
    seed: u64,
    train_scan: &RawData,
    test_scan: &RawData,
    dir: &Path,
) -> Result<QualityRow> {
    let s = &req.settings;
    let cfg = TrainingConfig {
        model: ModelConfig {
            n: s.n,
            gridsize,
            n_filters_scale: s.n_filters_scale,
            ..Default::default()
        },
        n_groups: s.n_groups,
        neighbor_count: ptycho_config::TrainingConfig::default()
            .neighbor_count
            .max(gridsize * gridsize),
        batch_size: s.batch_size,
        nepochs: s.nepochs,
        learning_rate: s.learning_rate,
        nphotons: s.nphotons,
        seed,
        output_dir: dir.join("model"),
        ..Default::default()
    }
    .validate()?;
    let t0 = Instant::now();
    let (archive, groups, epochs, final_loss) = if req.untrained {
        // The network as training would start it: the same params (probe, intensity scale)
        // and the same seeded initial weights, saved without a single step.
        let params = training_params(&cfg, train_scan)?;
        let device = req.device.to_device()?;
        let model = PtychoPinn::new_seeded(&params, &device, seed)?;
        std::fs::create_dir_all(&cfg.output_dir)
            .with_context(|| format!("cannot create {}", cfg.output_dir.display()))?;
        let path = cfg.output_dir.join("wts.h5.zip");
        save_model(&path, &model, &params, &SaveOptions::default())?;
        (path, 0, 0, None)
    } else {
        let report = train(
            &cfg,
            train_scan,
            &TrainOptions {
                device: req.device,
                quiet: true,
                overwrite: true,
                resume: false,
            },
        )?;
        (
            report.archive_path,
            report.n_groups,
            report.history.len(),
            Some(report.final_loss),
        )
    };
    let train_seconds = t0.elapsed().as_secs_f64();
    let infer_cfg = InferenceConfig {
        output_dir: dir.join("reconstruction"),
        ..Default::default()
    }
    .validate()?;
    let res = infer(
        &archive,
        test_scan,
        &infer_cfg,
        &InferRuntime {
            device: req.device,
            write_outputs: req.output_dir.is_some(),
            quiet: true,
            ..InferRuntime::default()
        },
    )?;
    let Some(ev) = &res.evaluation else {
        bail!(
            "{object} gs{gridsize} seed {seed}: no metrics: {}",
            res.evaluation_error.as_deref().unwrap_or("no ground truth")
        );
    };
    let scores = |c: &ptycho_workflows::metrics::ComponentMetrics| Scores {
        ssim: c.ssim,
        psnr: c.psnr_peak255,
        frc50: c.frc50,
    };
    Ok(QualityRow {
        object: object.name().into(),
        gridsize,
        seed,
        groups,
        epochs,
        final_loss,
        train_seconds,
        test_patterns: res.n_patterns,
        scan_coverage: res.scan_coverage,
        infer_seconds: res.seconds,
        amplitude: scores(&ev.metrics.amplitude),
        phase: scores(&ev.metrics.phase),
    })
}

/// The report as a table.
pub fn print_quality(r: &QualityReport) {
    let s = &r.settings;
    println!(
        "ptycho bench --quality ({}{})  {}  device {}  profile {}  cores {}",
        s.mode,
        if r.untrained { ", untrained" } else { "" },
        r.date_utc,
        r.device,
        r.profile,
        r.cores
    );
    println!(
        "N={} nfs={} object {} px, {:e} photons; train {} positions → {} groups, batch {}, {} epochs, lr {:e}; test {} positions",
        s.n,
        s.n_filters_scale,
        s.object_size
            .map_or_else(|| "default".to_string(), |v| v.to_string()),
        s.nphotons,
        s.train_positions,
        s.n_groups,
        s.batch_size,
        s.nepochs,
        s.learning_rate,
        s.test_positions
    );
    println!(
        "{:<8} {:>2} {:>5} {:>6} {:>8} {:>7}   {:>8} {:>8} {:>6}   {:>8} {:>8} {:>6}",
        "object",
        "gs",
        "seed",
        "epochs",
        "train s",
        "cover",
        "amp SSIM",
        "amp PSNR",
        "FRC50",
        "ph SSIM",
        "ph PSNR",
        "FRC50"
    );
    let frc = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
    for row in &r.rows {
        println!(
            "{:<8} {:>2} {:>5} {:>6} {:>8.1} {:>6.1}%   {:>8.4} {:>8.2} {:>6}   {:>8.4} {:>8.2} {:>6}",
            row.object,
            row.gridsize,
            row.seed,
            row.epochs,
            row.train_seconds,
            100.0 * row.scan_coverage,
            row.amplitude.ssim,
            row.amplitude.psnr,
            frc(row.amplitude.frc50),
            row.phase.ssim,
            row.phase.psnr,
            frc(row.phase.frc50)
        );
    }
    println!("wall time {:.1} s", r.wall_seconds);
}
