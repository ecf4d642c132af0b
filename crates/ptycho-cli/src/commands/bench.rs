//! `ptycho bench`: throughput of training, inference, stitching, grouping and NPZ loading on fixed
//! simulated data (issue #7), plus the machine's sgemm rate through the same Burn backend.
//!
//! Without `--only`, each part runs in a child process (`ptycho bench --only PART --json`) so that
//! the peak RSS of training and inference are measured separately; the parent merges the JSON.
//! Peak memory is the process's `VmHWM` (resident high-water mark).
//!
//! Rates: training in samples (groups) per second, inference in diffraction patterns per second
//! (one group of C patterns counts C), stitching in patches per second and canvas-contribution
//! megapixels (`G·M²`) per second, sgemm in GFLOP/s (`2·n³` per n×n matmul). The bench only
//! reports; `--target NAME=VALUE` adds checks (the project's targets are in plans/BENCHMARKS.md).
//!
//! `--quality` runs the reconstruction quality suite instead (`quality.rs`, issue #19).

mod measure;
mod quality;
mod report;
mod sys;

use std::process::{Command, ExitCode};

use anyhow::{Context, bail};
use clap::Args;
use ptycho_model::DeviceKind;

use crate::args::CommonArgs;
use measure::run_part;
use ptycho_workflows::simulate::quality::QualityObject;
use quality::{QualityRequest, QualitySettings, print_quality, run_quality};
use report::{BenchOptions, BenchPart, BenchReport, BenchSuite, Target};

/// The part's name on the command line (`--only NAME`) and in the JSON report.
fn part_name(p: BenchPart) -> &'static str {
    match p {
        BenchPart::Sgemm => "sgemm",
        BenchPart::Data => "data",
        BenchPart::Stitch => "stitch",
        BenchPart::Train => "train",
        BenchPart::Infer => "infer",
        BenchPart::Profile => "profile",
    }
}

/// Measure training, inference, stitching, grouping, NPZ loading and sgemm throughput.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Print the report as JSON on stdout (otherwise a table).
    #[arg(long)]
    pub json: bool,
    /// Backend/device: flex (cpu), tch-cpu, cuda[:N], ndarray; several separated by commas
    /// (`flex,tch-cpu`) run one after another and are compared with the first.
    #[arg(long, default_value = "flex")]
    pub device: String,
    /// Fewer steps and only N=64 gs=1 training (about 30 s).
    #[arg(long)]
    pub quick: bool,
    /// Groups per inference batch (as `ptycho infer --batch-size`: at most 16 on tch-cpu).
    #[arg(long, default_value_t = 32)]
    pub infer_batch: usize,
    /// Inference batches in flight at once. Default: as `ptycho infer` (2 on flex, 1 elsewhere).
    #[arg(long)]
    pub infer_streams: Option<usize>,
    /// Run only this part, in this process.
    #[arg(long, value_enum)]
    pub only: Option<BenchPart>,
    /// Check a measurement against a target and report MET / NOT MET (repeatable; the exit
    /// status does not change). Names: roofline (minimum training roofline fraction),
    /// infer_patterns_per_s (minimum), stitch_ms (maximum), train_peak_rss_mib (maximum).
    #[arg(long = "target", value_name = "NAME=VALUE")]
    pub targets: Vec<Target>,

    /// Run the reconstruction quality suite instead: simulate, train gridsize 1 and 2, reconstruct
    /// a held-out scan and print amplitude and phase SSIM, PSNR and FRC50 per configuration and
    /// seed. Short mode by default (a few minutes on 2 cores).
    #[arg(long, conflicts_with_all = ["only", "quick", "targets"])]
    pub quality: bool,
    /// With --quality: the long mode (seeds 1, 2, 3; 1024 groups, batch 16, 24 epochs; hours
    /// on 2 cores; numbers in plans/BENCHMARKS.md).
    #[arg(long, requires = "quality")]
    pub long: bool,
    /// With --quality: seeds, comma-separated. Default: 1 (short), 1,2,3 (long).
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "SEEDS",
        requires = "quality"
    )]
    pub seeds: Vec<u64>,
    /// With --quality: objects, comma-separated: complex (complex object, complex probe), lines
    /// (real lines object, default probe). Default: complex.
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "OBJECTS",
        requires = "quality"
    )]
    pub objects: Vec<QualityObject>,
    /// With --quality: model gridsizes, comma-separated. Default: 1,2.
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "GRIDSIZES",
        requires = "quality"
    )]
    pub gridsizes: Vec<usize>,
    /// With --quality: reconstruct with the randomly initialised network instead of training
    /// (the level a training that learns nothing gives).
    #[arg(long, requires = "quality")]
    pub untrained: bool,
    /// With --quality: training epochs instead of the mode's (3 short, 24 long).
    #[arg(long, value_name = "E", requires = "quality")]
    pub nepochs: Option<usize>,
    /// With --quality: training groups instead of the mode's (256 short, 1024 long); the
    /// training scan has as many positions.
    #[arg(long, value_name = "G", requires = "quality")]
    pub n_groups: Option<usize>,
    /// With --quality: training batch size instead of the mode's (4 short, 16 long).
    #[arg(long, value_name = "B", requires = "quality")]
    pub batch_size: Option<usize>,
    /// With --quality: Adam learning rate instead of the mode's.
    #[arg(long, value_name = "LR", requires = "quality")]
    pub learning_rate: Option<f64>,
    /// With --quality: keep the models and reconstructions (PNGs, metrics.json) under DIR.
    /// Default: a temporary directory, removed at the end.
    #[arg(long, value_name = "DIR", requires = "quality")]
    pub output_dir: Option<std::path::PathBuf>,

    #[command(flatten)]
    pub common: CommonArgs,
}

pub fn run(args: &BenchArgs) -> anyhow::Result<ExitCode> {
    let devices = parse_devices(&args.device)?;
    if args.quality {
        return run_quality_suite(args, &devices);
    }
    if let Some(part) = args.only {
        let [device] = devices.as_slice() else {
            bail!(
                "--only runs one part on one device; got --device {}",
                args.device
            );
        };
        let opts = options(args, *device);
        let mut report = BenchReport::new(&opts);
        report.merge(run_part(part, &opts)?);
        report.finish(&args.targets);
        return print_reports(args, vec![report]);
    }
    // Fail before the first (long) run if a device is not compiled in.
    for d in &devices {
        d.to_device()?;
    }
    let mut reports = Vec::new();
    for d in devices {
        reports.push(run_device(args, d)?);
    }
    print_reports(args, reports)
}

/// `--quality`: the reconstruction quality suite on one device.
fn run_quality_suite(args: &BenchArgs, devices: &[DeviceKind]) -> anyhow::Result<ExitCode> {
    let [device] = devices else {
        bail!("--quality runs on one device; got --device {}", args.device);
    };
    device.to_device()?;
    let mut settings = if args.long {
        QualitySettings::long()
    } else {
        QualitySettings::short()
    };
    if let Some(e) = args.nepochs {
        settings.nepochs = e;
    }
    if let Some(b) = args.batch_size {
        settings.batch_size = b;
    }
    if let Some(lr) = args.learning_rate {
        settings.learning_rate = lr;
    }
    if let Some(g) = args.n_groups {
        settings.n_groups = g;
        settings.train_positions = g;
    }
    let req = QualityRequest {
        seeds: if args.seeds.is_empty() {
            settings.default_seeds.clone()
        } else {
            args.seeds.clone()
        },
        objects: if args.objects.is_empty() {
            vec![QualityObject::Complex]
        } else {
            args.objects.clone()
        },
        gridsizes: if args.gridsizes.is_empty() {
            vec![1, 2]
        } else {
            args.gridsizes.clone()
        },
        settings,
        device: *device,
        untrained: args.untrained,
        output_dir: args.output_dir.clone(),
        quiet: args.common.quiet,
    };
    let report = run_quality(&req)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_quality(&report);
    }
    Ok(ExitCode::SUCCESS)
}

/// `--device flex,tch-cpu` → the devices in order (duplicates removed).
fn parse_devices(s: &str) -> anyhow::Result<Vec<DeviceKind>> {
    let mut out: Vec<DeviceKind> = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let d: DeviceKind = part.parse()?;
        if !out.contains(&d) {
            out.push(d);
        }
    }
    if out.is_empty() {
        bail!("--device: no device named in {s:?}");
    }
    Ok(out)
}

fn options(args: &BenchArgs, device: DeviceKind) -> BenchOptions {
    BenchOptions {
        device,
        quick: args.quick,
        infer_batch: args.infer_batch,
        infer_streams: args.infer_streams,
    }
}

/// Every part on one device, each in a child process (separate peak RSS), merged.
fn run_device(args: &BenchArgs, device: DeviceKind) -> anyhow::Result<BenchReport> {
    let mut report = BenchReport::new(&options(args, device));
    let exe = std::env::current_exe().context("locating the ptycho executable")?;
    let name = device.to_string();
    for part in BenchPart::ALL {
        if !args.common.quiet {
            eprintln!("bench: {name}: {} ...", part_name(part));
        }
        let mut cmd = Command::new(&exe);
        cmd.args(["bench", "--json", "--device", &name, "--only"])
            .arg(part_name(part))
            .arg("--infer-batch")
            .arg(args.infer_batch.to_string());
        if let Some(k) = args.infer_streams {
            cmd.arg("--infer-streams").arg(k.to_string());
        }
        if args.quick {
            cmd.arg("--quick");
        }
        let out = cmd.output().with_context(|| {
            format!("running {} bench --only {}", exe.display(), part_name(part))
        })?;
        if !out.status.success() {
            bail!(
                "bench part `{}` on {name} failed ({}): {}",
                part_name(part),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let child: BenchReport = serde_json::from_slice(&out.stdout)
            .with_context(|| format!("parsing the JSON of bench part `{}`", part_name(part)))?;
        report.merge(child);
    }
    report.finish(&args.targets);
    Ok(report)
}

/// One device: its report (JSON object or table). Several: a [`BenchSuite`] with the speedups
/// of each device over the first.
fn print_reports(args: &BenchArgs, mut reports: Vec<BenchReport>) -> anyhow::Result<ExitCode> {
    if reports.len() == 1 {
        let report = reports.remove(0);
        if args.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            print_table(&report);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let suite = BenchSuite::new(reports);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&suite)?);
        return Ok(ExitCode::SUCCESS);
    }
    for r in &suite.runs {
        print_table(r);
        println!();
    }
    if let Some(g) = suite.best_sgemm_gflops {
        println!("best sgemm in this run       {g:8.1} GFLOP/s");
    }
    for r in &suite.relative {
        println!(
            "{} vs {}: train {:.2}x, infer + stitch {:.2}x, roofline vs best sgemm {:.3}",
            r.device,
            r.baseline,
            r.train_speedup.unwrap_or(f64::NAN),
            r.infer_speedup.unwrap_or(f64::NAN),
            r.roofline_fraction_vs_best_sgemm.unwrap_or(f64::NAN)
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn print_table(r: &BenchReport) {
    println!(
        "ptycho bench  {}  device {}  profile {}  cores {}{}",
        r.date_utc,
        r.device,
        r.profile,
        r.cores,
        if r.quick { "  (quick)" } else { "" }
    );
    if let Some(g) = &r.sgemm {
        println!(
            "sgemm {0}x{0} f32          {1:8.1} GFLOP/s  ({2:.1} GFLOP per CPU-s)",
            g.n,
            g.gflops,
            g.gflop_per_cpu_s.unwrap_or(f64::NAN)
        );
    }
    if let Some(t) = &r.train {
        for c in &t.configs {
            println!(
                "train N={:<3} gs={} nfs={} B={:<3} {:8.2} samples/s  ({:.3} s/step, {} steps, {:.3} CPU-s/sample)",
                c.n,
                c.gridsize,
                c.nfs,
                c.batch,
                c.samples_per_s,
                c.s_per_step,
                c.steps,
                c.cpu_s_per_sample.unwrap_or(f64::NAN)
            );
        }
        if let Some(p) = t.peak_rss_mib {
            println!("train peak RSS              {p:8.0} MiB");
        }
    }
    if let Some(f) = r.roofline_fraction {
        println!("train roofline fraction     {f:8.3}");
    }
    if let Some(f) = r.roofline_fraction_cpu {
        println!("train roofline (CPU time)   {f:8.3}");
    }
    if let Some(i) = &r.infer {
        println!(
            "infer model (B={})          {:8.1} patterns/s",
            i.batch, i.model_patterns_per_s
        );
        println!(
            "infer + stitch             {:8.1} patterns/s  ({} patterns, {:.4} CPU-s/pattern, stitch {:.1} ms)",
            i.end_to_end_patterns_per_s,
            i.patterns,
            i.cpu_s_per_pattern.unwrap_or(f64::NAN),
            i.stitch_s * 1e3
        );
        if let Some(p) = i.peak_rss_mib {
            println!("infer peak RSS              {p:8.0} MiB");
        }
    }
    if let Some(p) = &r.step_profile {
        println!(
            "profile N=64 B=16: network {:.3} s, autoencoder {:.3} s, autoencoder (autodiff) {:.3} s, train step {:.3} s",
            p.network_s, p.autoencoder_s, p.autoencoder_autodiff_s, p.train_step_s
        );
    }
    if let Some(s) = &r.stitch {
        println!(
            "stitch {} patches M={}     {:8.1} ms  ({:.0} patches/s, {:.1} Mpixel/s)",
            s.patches,
            s.m,
            s.best_s * 1e3,
            s.patches_per_s,
            s.mpixel_per_s
        );
    }
    if let Some(d) = &r.data {
        println!(
            "npz load ({} x {}²)        {:8.1} ms",
            d.n_points,
            d.n,
            d.npz_load_s * 1e3
        );
        println!(
            "group 512 gs=1 / gs=2       {:8.1} / {:.1} ms",
            d.group_gs1_s * 1e3,
            d.group_gs2_s * 1e3
        );
    }
    for t in &r.targets {
        println!(
            "target {:<40} {:10.3} {:<8} {}",
            t.name,
            t.measured,
            t.target,
            if t.met { "MET" } else { "NOT MET" }
        );
    }
}
