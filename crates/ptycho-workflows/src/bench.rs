//! `ptycho bench`: throughput of training, inference, stitching, grouping and NPZ loading on fixed
//! simulated data (issue #7), plus the machine's sgemm rate through the same Burn backend.
//!
//! Every measurement excludes a warm-up run and reports wall-clock seconds. Peak memory is the
//! process's `VmHWM` (resident high-water mark) from `/proc/self/status`; the CLI runs the train
//! and infer parts in child processes so that each part has its own peak.
//!
//! Rates: training in samples (groups) per second, inference in diffraction patterns per second
//! (one group of C patterns counts C), stitching in patches per second and canvas-contribution
//! megapixels (`G·M²`) per second, sgemm in GFLOP/s (`2·n³` per n×n matmul).

use std::path::PathBuf;
use std::time::Instant;

use burn::tensor::{DType, Device, Tensor, TensorData};
use ndarray::{Array3, Axis};
use num_complex::Complex32;
use ptycho_config::{GroupingConfig, ModelConfig, Params, SimulationConfig, TrainingConfig};
use ptycho_model::{DeviceKind, LossWeights, ModelError, PtychoPinn, TrainStep, ops};
use serde::{Deserialize, Serialize};

use crate::data::RawData;
use crate::error::WorkflowError;
use crate::grouping::{GroupedData, group};
use crate::infer::{predict_object_patches, prediction_batch, prediction_streams};
use crate::model_inputs::{ModelInputs, OffsetSource};
use crate::simulate::simulate_lines;
use crate::stitch::reassemble_position;

/// FLOPs of one training sample (forward + backward) at N = 64, gridsize 1, nfs 2, as measured
/// for the reference model (issue #7); the roofline fraction is `samples/s · this ÷ sgemm FLOP/s`.
pub const TRAIN_GFLOP_PER_SAMPLE: f64 = 6.3;
/// Forward FLOPs of one sample (same configuration).
pub const FORWARD_GFLOP_PER_SAMPLE: f64 = 2.1;

fn one() -> usize {
    1
}

/// Errors of the benchmark (wraps the model and workflow errors it can meet).
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Workflow(#[from] WorkflowError),
    #[error(transparent)]
    Stitch(#[from] crate::stitch::StitchError),
    #[error("bench: invalid configuration: {0}")]
    Config(String),
    #[error("bench: {path}: I/O error: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// One part of the benchmark (each can run alone, e.g. in a child process).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BenchPart {
    /// sgemm GFLOP/s through the backend.
    Sgemm,
    /// NPZ load and grouping times.
    Data,
    /// Stitching 512 patches at M = 20.
    Stitch,
    /// Training samples/s (N=64 gs=1, N=64 gs=2, N=128 gs=1; B = 16).
    Train,
    /// Inference patterns/s, model only and end to end with stitching.
    Infer,
    /// Where a training step's time goes (not part of the default run).
    Profile,
}

impl BenchPart {
    /// All parts in the order they run.
    pub const ALL: [BenchPart; 5] = [
        BenchPart::Sgemm,
        BenchPart::Data,
        BenchPart::Stitch,
        BenchPart::Train,
        BenchPart::Infer,
    ];
}

/// What to measure and how long.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    pub device: DeviceKind,
    /// Fewer steps and only the N=64 gs=1 training configuration (smoke test, ~30 s).
    pub quick: bool,
    /// Groups per inference batch (32 by default).
    pub infer_batch: usize,
    /// Inference batches in flight; `None` = what `ptycho infer` uses on the device.
    pub infer_streams: Option<usize>,
}

/// sgemm through the backend: `n×n · n×n` f32.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SgemmBench {
    pub n: usize,
    pub reps: usize,
    /// Best time of one matmul, seconds.
    pub best_s: f64,
    pub gflops: f64,
    /// GFLOP per process CPU-second (all threads) over the timed reps: load-robust.
    pub gflop_per_cpu_s: Option<f64>,
}

/// Data-layer timings.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DataBench {
    /// Scan points in the NPZ, pattern size.
    pub n_points: usize,
    pub n: usize,
    pub npz_bytes: u64,
    /// Best `RawData::from_npz` time, seconds.
    pub npz_load_s: f64,
    /// Best `group` time for 512 groups at gridsize 1 and 2, seconds.
    pub group_gs1_s: f64,
    pub group_gs2_s: f64,
}

/// Stitching timings.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StitchBench {
    pub patches: usize,
    pub n: usize,
    pub m: usize,
    pub reps: usize,
    /// Best time of one `reassemble_position`, seconds.
    pub best_s: f64,
    pub patches_per_s: f64,
    /// `G·M²` contributions per second, megapixels.
    pub mpixel_per_s: f64,
}

/// One training configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainBench {
    pub n: usize,
    pub gridsize: usize,
    pub nfs: usize,
    pub batch: usize,
    /// Timed optimiser steps (after one warm-up step).
    pub steps: usize,
    pub s_per_step: f64,
    pub samples_per_s: f64,
    /// Process CPU seconds (all threads) per sample: robust to other load on the machine.
    pub cpu_s_per_sample: Option<f64>,
    /// Process peak RSS (VmHWM) after this configuration, MiB (monotonic over the part; the
    /// first configuration's value is its own peak).
    pub peak_rss_mib_after: Option<f64>,
}

/// Training part.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainPart {
    pub configs: Vec<TrainBench>,
    /// Process peak RSS (VmHWM) after the part, MiB.
    pub peak_rss_mib: Option<f64>,
}

/// Inference part (N = 64, gridsize 1).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InferBench {
    pub patterns: usize,
    pub batch: usize,
    /// Batches in flight at once (see `infer::prediction_streams`).
    #[serde(default = "one")]
    pub streams: usize,
    /// `diffraction_to_obj` incl. upload and readback, patterns per second.
    pub model_patterns_per_s: f64,
    /// Upload, model, readback, conversion and stitching (M = 20), patterns per second.
    pub end_to_end_patterns_per_s: f64,
    /// Process CPU seconds (all threads) per pattern, end to end.
    pub cpu_s_per_pattern: Option<f64>,
    /// Time spent in stitching within the end-to-end run, seconds.
    pub stitch_s: f64,
    pub peak_rss_mib: Option<f64>,
}

/// Split of one training step at N = 64, gridsize 1, nfs 2, B = 16 (mean seconds per batch).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProfileBench {
    pub reps: usize,
    /// Encoder + both decoders (`amp_phase`), inference device.
    pub network_s: f64,
    /// Network + object, reassembly, re-extraction, illumination, far field (`autoencoder`).
    pub autoencoder_s: f64,
    /// The same forward on the autodiff device (records the graph).
    pub autoencoder_autodiff_s: f64,
    /// Forward + loss + backward + Adam (`TrainStep::step`).
    pub train_step_s: f64,
}

/// A performance target of issue #7 and whether it was met.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TargetCheck {
    pub name: String,
    pub measured: f64,
    pub target: String,
    pub met: bool,
}

/// The full report (parts that did not run are `None`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BenchReport {
    /// UTC date and time of the run, `YYYY-MM-DDTHH:MM:SSZ`.
    pub date_utc: String,
    pub cores: usize,
    pub device: String,
    /// `dev` (debug assertions on) or `release`.
    pub profile: String,
    pub quick: bool,
    pub sgemm: Option<SgemmBench>,
    pub data: Option<DataBench>,
    pub stitch: Option<StitchBench>,
    pub train: Option<TrainPart>,
    pub infer: Option<InferBench>,
    pub step_profile: Option<ProfileBench>,
    /// `samples/s (N=64 gs=1 B=16) · 6.3 GFLOP ÷ sgemm GFLOP/s`.
    pub roofline_fraction: Option<f64>,
    /// The same ratio from CPU time (`6.3 GFLOP ÷ CPU-s per sample ÷ sgemm GFLOP per CPU-s`),
    /// which does not depend on other load on the machine.
    pub roofline_fraction_cpu: Option<f64>,
    pub targets: Vec<TargetCheck>,
}

impl BenchReport {
    /// An empty report stamped with the date, core count, device and build profile.
    pub fn new(opts: &BenchOptions) -> Self {
        Self {
            date_utc: utc_now(),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            device: opts.device.to_string(),
            profile: if cfg!(debug_assertions) {
                "dev"
            } else {
                "release"
            }
            .into(),
            quick: opts.quick,
            ..Default::default()
        }
    }

    /// Copy the parts present in `other` into `self`.
    pub fn merge(&mut self, other: BenchReport) {
        self.sgemm = other.sgemm.or(self.sgemm.take());
        self.data = other.data.or(self.data.take());
        self.stitch = other.stitch.or(self.stitch.take());
        self.train = other.train.or(self.train.take());
        self.infer = other.infer.or(self.infer.take());
        self.step_profile = other.step_profile.or(self.step_profile.take());
    }

    /// The training measurement the roofline targets refer to (N=64 gs=1 B=16).
    pub fn train64(&self) -> Option<&TrainBench> {
        self.train.as_ref().and_then(|t| {
            t.configs
                .iter()
                .find(|c| c.n == 64 && c.gridsize == 1 && c.batch == 16)
        })
    }

    /// Compute the roofline fraction and the target checks from the parts present.
    pub fn finish(&mut self) {
        self.targets.clear();
        let train64 = self.train64().cloned();
        let train64 = train64.as_ref();
        self.roofline_fraction = match (train64, &self.sgemm) {
            (Some(t), Some(g)) if g.gflops > 0.0 => {
                Some(t.samples_per_s * TRAIN_GFLOP_PER_SAMPLE / g.gflops)
            }
            _ => None,
        };
        self.roofline_fraction_cpu = match (train64, &self.sgemm) {
            (Some(t), Some(g)) => match (t.cpu_s_per_sample, g.gflop_per_cpu_s) {
                (Some(c), Some(r)) if c > 0.0 && r > 0.0 => Some(TRAIN_GFLOP_PER_SAMPLE / c / r),
                _ => None,
            },
            _ => None,
        };
        let goals = DeviceTargets::for_device(&self.device);
        if let (Some(f), Some(min)) = (
            self.roofline_fraction_cpu.or(self.roofline_fraction),
            goals.roofline,
        ) {
            self.targets.push(TargetCheck {
                name: "train N=64 gs=1 B=16 roofline fraction (CPU time when known)".into(),
                measured: f,
                target: format!(">= {min}"),
                met: f >= min,
            });
        }
        if let (Some(i), Some(min)) = (&self.infer, goals.infer_patterns_per_s) {
            self.targets.push(TargetCheck {
                name: "inference + stitching, patterns/s".into(),
                measured: i.end_to_end_patterns_per_s,
                target: format!(">= {min}"),
                met: i.end_to_end_patterns_per_s >= min,
            });
        }
        if let Some(s) = &self.stitch {
            self.targets.push(TargetCheck {
                name: "stitch 512 patches M=20, ms".into(),
                measured: s.best_s * 1e3,
                target: "< 100".into(),
                met: s.best_s < 0.1,
            });
        }
        if let Some(p) = train64.and_then(|t| t.peak_rss_mib_after) {
            self.targets.push(TargetCheck {
                name: "training N=64 gs=1 B=16 peak RSS, MiB".into(),
                measured: p,
                target: "< 1024".into(),
                met: p < 1024.0,
            });
        }
    }
}

/// The issue #7 targets that apply to a device (CPU roofline targets make no sense on a GPU).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DeviceTargets {
    /// Minimum training roofline fraction (N=64 gs=1 B=16).
    pub roofline: Option<f64>,
    /// Minimum end-to-end inference + stitching rate, patterns/s.
    pub infer_patterns_per_s: Option<f64>,
}

/// The reference TensorFlow implementation's inference rate on the 2-core CPU, patterns/s.
pub const REFERENCE_INFER_PATTERNS_PER_S: f64 = 45.0;

impl DeviceTargets {
    /// flex: roofline ≥ 0.4 and ≥ the reference's 45 patterns/s; tch on the CPU: roofline ≥ 0.9
    /// and ≥ 3× the reference; other devices: none (recorded only).
    pub fn for_device(device: &str) -> Self {
        match device {
            "flex" | "cpu" => Self {
                roofline: Some(0.4),
                infer_patterns_per_s: Some(REFERENCE_INFER_PATTERNS_PER_S),
            },
            "tch-cpu" => Self {
                roofline: Some(0.9),
                infer_patterns_per_s: Some(3.0 * REFERENCE_INFER_PATTERNS_PER_S),
            },
            _ => Self {
                roofline: None,
                infer_patterns_per_s: None,
            },
        }
    }
}

/// Several devices measured one after another by one `ptycho bench --device a,b` run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchSuite {
    pub date_utc: String,
    pub cores: usize,
    /// One full report per device, in the order given.
    pub runs: Vec<BenchReport>,
    /// The fastest sgemm of any device in this run, GFLOP/s: the machine's roofline.
    pub best_sgemm_gflops: Option<f64>,
    /// Each later run against the first one.
    pub relative: Vec<RelativeRates>,
}

/// Rates of one device relative to a baseline device measured in the same run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RelativeRates {
    pub device: String,
    pub baseline: String,
    /// Training samples/s (N=64 gs=1 B=16) ÷ the baseline's.
    pub train_speedup: Option<f64>,
    /// End-to-end inference patterns/s ÷ the baseline's.
    pub infer_speedup: Option<f64>,
    /// `samples/s · 6.3 GFLOP ÷ best_sgemm_gflops` (the roofline of the machine, not of the device).
    pub roofline_fraction_vs_best_sgemm: Option<f64>,
}

impl BenchSuite {
    /// Combine finished per-device reports (the first one is the baseline).
    pub fn new(runs: Vec<BenchReport>) -> Self {
        let best = runs
            .iter()
            .filter_map(|r| r.sgemm.as_ref().map(|g| g.gflops))
            .reduce(f64::max);
        let train = |r: &BenchReport| r.train64().map(|t| t.samples_per_s);
        let infer = |r: &BenchReport| r.infer.as_ref().map(|i| i.end_to_end_patterns_per_s);
        let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) if b > 0.0 => Some(a / b),
            _ => None,
        };
        let relative = match runs.split_first() {
            Some((base, rest)) => rest
                .iter()
                .map(|r| RelativeRates {
                    device: r.device.clone(),
                    baseline: base.device.clone(),
                    train_speedup: ratio(train(r), train(base)),
                    infer_speedup: ratio(infer(r), infer(base)),
                    roofline_fraction_vs_best_sgemm: ratio(
                        train(r).map(|s| s * TRAIN_GFLOP_PER_SAMPLE),
                        best,
                    ),
                })
                .collect(),
            None => Vec::new(),
        };
        Self {
            date_utc: runs.first().map_or_else(utc_now, |r| r.date_utc.clone()),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            runs,
            best_sgemm_gflops: best,
            relative,
        }
    }
}

/// Run one part and return a report holding only it.
pub fn run_part(part: BenchPart, opts: &BenchOptions) -> Result<BenchReport, BenchError> {
    let mut report = BenchReport::new(opts);
    let device = opts.device.to_device()?;
    match part {
        BenchPart::Sgemm => report.sgemm = Some(bench_sgemm(&device, 1024, 20)),
        BenchPart::Data => report.data = Some(bench_data()?),
        BenchPart::Stitch => report.stitch = Some(bench_stitch(if opts.quick { 3 } else { 10 })?),
        BenchPart::Train => {
            let configs: &[(usize, usize)] = if opts.quick {
                &[(64, 1)]
            } else {
                &[(64, 1), (64, 2), (128, 1)]
            };
            let mut out = Vec::new();
            for &(n, gs) in configs {
                let steps = match (opts.quick, n) {
                    (true, _) => 1,
                    (false, 64) => 5,
                    (false, _) => 3,
                };
                out.push(bench_train(&device, n, gs, 16, steps)?);
            }
            report.train = Some(TrainPart {
                configs: out,
                peak_rss_mib: peak_rss_mib(),
            });
        }
        BenchPart::Infer => {
            let patterns = if opts.quick { 64 } else { 512 };
            let mut i = bench_infer(
                &device,
                patterns,
                prediction_batch(opts.device, opts.infer_batch),
                opts.infer_streams
                    .unwrap_or_else(|| prediction_streams(opts.device))
                    .max(1),
            )?;
            i.peak_rss_mib = peak_rss_mib();
            report.infer = Some(i);
        }
        BenchPart::Profile => {
            report.step_profile = Some(bench_profile(&device, if opts.quick { 1 } else { 3 })?)
        }
    }
    Ok(report)
}

/// Process resident high-water mark (`VmHWM`), MiB; `None` where `/proc` is unavailable.
pub fn peak_rss_mib() -> Option<f64> {
    let kib = crate::procfs::kib("/proc/self/status", "VmHWM:")?;
    Some(kib as f64 / 1024.0)
}

/// CPU time of this process (user + system, all threads), seconds, from `/proc/self/stat`
/// (clock ticks of 1/100 s); `None` where unavailable.
pub fn process_cpu_s() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

fn cpu_delta(start: Option<f64>) -> Option<f64> {
    Some(process_cpu_s()? - start?)
}

/// Current UTC time as `YYYY-MM-DDTHH:MM:SSZ` (civil calendar from the Unix epoch).
pub fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn params_for(n: usize, gridsize: usize) -> Result<Params, BenchError> {
    let cfg = TrainingConfig {
        model: ModelConfig {
            n,
            gridsize,
            ..ModelConfig::default()
        },
        batch_size: 16,
        ..Default::default()
    };
    let valid = cfg
        .validate()
        .map_err(|e| BenchError::Config(e.to_string()))?;
    Ok(Params::from_training(&valid))
}

fn simulated(n: usize, n_images: usize) -> Result<RawData, BenchError> {
    let cfg = SimulationConfig {
        n_images,
        n,
        seed: 7,
        ..SimulationConfig::default()
    }
    .validate()
    .map_err(|e| BenchError::Config(e.to_string()))?;
    Ok(simulate_lines(&cfg)?)
}

fn grouped(raw: &RawData, params: &Params, n_groups: usize) -> Result<GroupedData, BenchError> {
    let grouping = GroupingConfig {
        n_groups,
        seed: 1,
        ..GroupingConfig::default()
    }
    .validate()
    .map_err(|e| BenchError::Config(e.to_string()))?;
    Ok(group(raw, params, &grouping)?)
}

/// Model inputs of groups `lo..lo+b` (wrapping around) through the shared [`ModelInputs`] gather,
/// with the nominal offsets inference feeds.
fn batch_tensors(
    inputs: &ModelInputs,
    lo: usize,
    b: usize,
    device: &Device,
) -> (Tensor<4>, Tensor<3>) {
    let idx: Vec<usize> = (lo..lo + b).map(|k| k % inputs.g).collect();
    inputs.batch(&idx, device)
}

/// Best time of an `n×n` f32 matmul through the backend, result read back.
pub fn bench_sgemm(device: &Device, n: usize, reps: usize) -> SgemmBench {
    let v: Vec<f32> = (0..n * n).map(|k| ((k % 97) as f32) * 0.01).collect();
    let a: Tensor<2> = Tensor::from_data(TensorData::new(v.clone(), [n, n]), (device, DType::F32));
    let b: Tensor<2> = Tensor::from_data(TensorData::new(v, [n, n]), (device, DType::F32));
    let _ = ops::to_vec_f64(a.clone().matmul(b.clone()).slice([0..1, 0..1]));
    let mut best = f64::INFINITY;
    let c0 = process_cpu_s();
    for _ in 0..reps.max(1) {
        let t = Instant::now();
        let _ = ops::to_vec_f64(a.clone().matmul(b.clone()).slice([0..1, 0..1]));
        best = best.min(t.elapsed().as_secs_f64());
    }
    let gflop = 2.0 * (n as f64).powi(3) / 1e9;
    SgemmBench {
        n,
        reps,
        best_s: best,
        gflops: gflop / best,
        gflop_per_cpu_s: cpu_delta(c0)
            .filter(|c| *c > 0.0)
            .map(|c| gflop * reps.max(1) as f64 / c),
    }
}

/// NPZ load (512 patterns at N = 64) and grouping times, best of 3.
pub fn bench_data() -> Result<DataBench, BenchError> {
    let raw = simulated(64, 512)?;
    let dir = tempfile::tempdir().map_err(|source| BenchError::Io {
        path: std::env::temp_dir(),
        source,
    })?;
    let path = dir.path().join("bench.npz");
    raw.write_npz(&path)?;
    let npz_bytes = std::fs::metadata(&path).map_or(0, |m| m.len());
    let mut npz_load_s = f64::INFINITY;
    for _ in 0..3 {
        let t = Instant::now();
        let r = RawData::from_npz(&path)?;
        npz_load_s = npz_load_s.min(t.elapsed().as_secs_f64());
        drop(r);
    }
    let mut times = [f64::INFINITY; 2];
    for (slot, gs) in times.iter_mut().zip([1, 2]) {
        let params = params_for(64, gs)?;
        for _ in 0..3 {
            let t = Instant::now();
            let g = grouped(&raw, &params, 512)?;
            *slot = slot.min(t.elapsed().as_secs_f64());
            drop(g);
        }
    }
    Ok(DataBench {
        n_points: raw.n_points(),
        n: 64,
        npz_bytes,
        npz_load_s,
        group_gs1_s: times[0],
        group_gs2_s: times[1],
    })
}

/// Stitch 512 simulated object patches (N = 64, M = 20) at their scan positions; best of `reps`.
pub fn bench_stitch(reps: usize) -> Result<StitchBench, BenchError> {
    let raw = simulated(64, 512)?;
    let params = params_for(64, 1)?;
    let g = grouped(&raw, &params, 512)?;
    let y =
        g.y.as_ref()
            .ok_or_else(|| BenchError::Config("simulated groups carry no ground truth".into()))?;
    let patches: Array3<Complex32> = y.index_axis(Axis(3), 0).to_owned();
    let centres: Vec<[f64; 2]> = (0..g.n_groups())
        .map(|k| [g.coords_nn[[k, 0, 0, 0]], g.coords_nn[[k, 0, 1, 0]]])
        .collect();
    let m = 20;
    let _ = reassemble_position(patches.view(), &centres, m)?;
    let mut best = f64::INFINITY;
    for _ in 0..reps.max(1) {
        let t = Instant::now();
        let out = reassemble_position(patches.view(), &centres, m)?;
        best = best.min(t.elapsed().as_secs_f64());
        drop(out);
    }
    let gcount = patches.len_of(Axis(0));
    Ok(StitchBench {
        patches: gcount,
        n: 64,
        m,
        reps,
        best_s: best,
        patches_per_s: gcount as f64 / best,
        mpixel_per_s: (gcount * m * m) as f64 / best / 1e6,
    })
}

/// Training samples/s at `n`, `gridsize`, nfs = 2 with batch `b`: one warm-up step, then `steps`
/// timed steps over consecutive batches of simulated groups.
pub fn bench_train(
    device: &Device,
    n: usize,
    gridsize: usize,
    b: usize,
    steps: usize,
) -> Result<TrainBench, BenchError> {
    let params = params_for(n, gridsize)?;
    let c = gridsize * gridsize;
    let n_groups = b * (steps + 1);
    let raw = simulated(n, (n_groups * c).max(64))?;
    let g = grouped(&raw, &params, n_groups)?;
    let inputs = ModelInputs::from_grouped(&g, params.intensity_scale(), OffsetSource::Nominal);
    let ad = device.clone().autodiff();
    let mut model = PtychoPinn::new(&params, &ad)?;
    let mut opt = TrainStep::new(LossWeights::default());
    let batches: Vec<_> = (0..=steps)
        .map(|k| batch_tensors(&inputs, k * b, b, &ad))
        .collect();
    let mut timed = 0.0;
    let mut cpu = 0.0;
    let mut cpu_ok = true;
    for (k, (x, pos)) in batches.into_iter().enumerate() {
        let c0 = process_cpu_s();
        let t = Instant::now();
        (model, _) = opt.step(model, x.clone(), pos, x, 1e-3)?;
        if k > 0 {
            timed += t.elapsed().as_secs_f64();
            match cpu_delta(c0) {
                Some(d) => cpu += d,
                None => cpu_ok = false,
            }
        }
    }
    let per = timed / steps.max(1) as f64;
    Ok(TrainBench {
        n,
        gridsize,
        nfs: params.model().n_filters_scale,
        batch: b,
        steps,
        s_per_step: per,
        samples_per_s: b as f64 / per,
        cpu_s_per_sample: cpu_ok.then(|| cpu / (b * steps.max(1)) as f64),
        peak_rss_mib_after: peak_rss_mib(),
    })
}

/// Inference at N = 64, gridsize 1: `patterns` groups in batches of `batch` (one warm-up batch
/// excluded), timed once: the batched prediction as `ptycho infer` runs it
/// ([`predict_object_patches`], `streams` batches in flight; upload, model, readback, complex
/// patches), then end to end with stitching.
pub fn bench_infer(
    device: &Device,
    patterns: usize,
    batch: usize,
    streams: usize,
) -> Result<InferBench, BenchError> {
    let params = params_for(64, 1)?;
    let raw = simulated(64, patterns.max(64))?;
    let g = grouped(&raw, &params, patterns)?;
    let inputs = ModelInputs::from_grouped(&g, params.intensity_scale(), OffsetSource::Nominal);
    let model = PtychoPinn::new(&params, device)?;
    let (x, pos) = batch_tensors(&inputs, 0, batch, device);
    let (re, _) = model.diffraction_to_obj(x, pos)?;
    let _ = ops::to_vec_f64(re);
    let c0 = process_cpu_s();
    let t = Instant::now();
    let patches = predict_object_patches(&model, &inputs, batch, streams, device)?;
    let model_s = t.elapsed().as_secs_f64();
    let centres: Vec<[f64; 2]> = (0..patterns)
        .map(|k| {
            [
                g.coords_offsets[[k, 0, 0, 0]],
                g.coords_offsets[[k, 0, 1, 0]],
            ]
        })
        .collect();
    let ts = Instant::now();
    let _ = reassemble_position(patches.view(), &centres, 20)?;
    let stitch_s = ts.elapsed().as_secs_f64();
    let e2e_s = t.elapsed().as_secs_f64();
    let cpu = cpu_delta(c0);
    Ok(InferBench {
        patterns,
        batch,
        streams,
        model_patterns_per_s: patterns as f64 / model_s,
        end_to_end_patterns_per_s: patterns as f64 / e2e_s,
        cpu_s_per_pattern: cpu.map(|c| c / patterns as f64),
        stitch_s,
        peak_rss_mib: None,
    })
}

/// Time the stages of a training step (see [`ProfileBench`]); results read back to force completion.
pub fn bench_profile(device: &Device, reps: usize) -> Result<ProfileBench, BenchError> {
    let params = params_for(64, 1)?;
    let b = 16;
    let raw = simulated(64, 64)?;
    let g = grouped(&raw, &params, b)?;
    let inputs = ModelInputs::from_grouped(&g, params.intensity_scale(), OffsetSource::Nominal);
    let reps = reps.max(1);
    let time = |f: &mut dyn FnMut() -> Result<(), BenchError>| -> Result<f64, BenchError> {
        f()?;
        let t = Instant::now();
        for _ in 0..reps {
            f()?;
        }
        Ok(t.elapsed().as_secs_f64() / reps as f64)
    };
    let model = PtychoPinn::new(&params, device)?;
    let (x, pos) = batch_tensors(&inputs, 0, b, device);
    let network_s = time(&mut || {
        let (a, phi) = model.amp_phase(x.clone());
        let _ = ops::to_vec_f64(a.slice([0..1, 0..1, 0..1, 0..1]));
        let _ = ops::to_vec_f64(phi.slice([0..1, 0..1, 0..1, 0..1]));
        Ok(())
    })?;
    let autoencoder_s = time(&mut || {
        let out = model.autoencoder(x.clone(), pos.clone())?;
        let _ = ops::to_vec_f64(out.pred_amp_scaled.slice([0..1, 0..1, 0..1, 0..1]));
        Ok(())
    })?;
    let ad = device.clone().autodiff();
    let mut model = PtychoPinn::new(&params, &ad)?;
    let (x, pos) = batch_tensors(&inputs, 0, b, &ad);
    let autoencoder_autodiff_s = time(&mut || {
        let out = model.autoencoder(x.clone(), pos.clone())?;
        let _ = ops::to_vec_f64(out.pred_amp_scaled.slice([0..1, 0..1, 0..1, 0..1]));
        Ok(())
    })?;
    let mut opt = TrainStep::new(LossWeights::default());
    let train_step_s = time(&mut || {
        let m = model.clone();
        (model, _) = opt.step(m, x.clone(), pos.clone(), x.clone(), 1e-3)?;
        Ok(())
    })?;
    Ok(ProfileBench {
        reps,
        network_s,
        autoencoder_s,
        autoencoder_autodiff_s,
        train_step_s,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_date_is_well_formed() {
        let d = utc_now();
        assert_eq!(d.len(), 20, "{d}");
        assert!(d.starts_with("20") && d.ends_with('Z'), "{d}");
    }

    #[test]
    fn peak_rss_is_read_on_linux() {
        if cfg!(target_os = "linux") {
            let p = peak_rss_mib().expect("VmHWM in /proc/self/status");
            assert!(p > 1.0 && p < 1.0e6, "{p}");
        }
    }

    #[test]
    fn roofline_and_targets_from_parts() {
        let mut r = BenchReport::new(&BenchOptions {
            device: DeviceKind::Flex,
            quick: true,
            infer_batch: 32,
            infer_streams: None,
        });
        r.merge(BenchReport {
            sgemm: Some(SgemmBench {
                n: 1024,
                reps: 1,
                best_s: 0.02,
                gflops: 100.0,
                gflop_per_cpu_s: None,
            }),
            train: Some(TrainPart {
                configs: vec![TrainBench {
                    n: 64,
                    gridsize: 1,
                    nfs: 2,
                    batch: 16,
                    steps: 1,
                    s_per_step: 2.0,
                    samples_per_s: 8.0,
                    cpu_s_per_sample: None,
                    peak_rss_mib_after: Some(900.0),
                }],
                peak_rss_mib: Some(900.0),
            }),
            ..Default::default()
        });
        r.finish();
        let f = r.roofline_fraction.expect("fraction");
        assert!((f - 8.0 * 6.3 / 100.0).abs() < 1e-12);
        assert_eq!(r.targets.len(), 2);
        assert!(r.targets.iter().all(|t| t.met));
    }

    fn report_with(
        device: &str,
        sgemm: f64,
        samples_per_s: f64,
        patterns_per_s: f64,
    ) -> BenchReport {
        BenchReport {
            device: device.into(),
            sgemm: Some(SgemmBench {
                n: 1024,
                reps: 1,
                best_s: 0.02,
                gflops: sgemm,
                gflop_per_cpu_s: None,
            }),
            train: Some(TrainPart {
                configs: vec![TrainBench {
                    n: 64,
                    gridsize: 1,
                    nfs: 2,
                    batch: 16,
                    steps: 1,
                    s_per_step: 16.0 / samples_per_s,
                    samples_per_s,
                    cpu_s_per_sample: None,
                    peak_rss_mib_after: None,
                }],
                peak_rss_mib: None,
            }),
            infer: Some(InferBench {
                patterns: 64,
                batch: 32,
                streams: 1,
                model_patterns_per_s: patterns_per_s,
                end_to_end_patterns_per_s: patterns_per_s,
                cpu_s_per_pattern: None,
                stitch_s: 0.001,
                peak_rss_mib: None,
            }),
            ..Default::default()
        }
    }

    #[test]
    fn targets_depend_on_the_device() {
        // 10 samples/s against 100 GFLOP/s is 0.63 of the roofline: enough for flex (0.4), not
        // for tch (0.9); 100 patterns/s beats flex's 45 but not tch's 135; cuda has no CPU target.
        let mut flex = report_with("flex", 100.0, 10.0, 100.0);
        flex.finish();
        assert_eq!(flex.targets.len(), 2);
        assert!(flex.targets.iter().all(|t| t.met), "{:?}", flex.targets);
        let mut tch = report_with("tch-cpu", 100.0, 10.0, 100.0);
        tch.finish();
        assert_eq!(tch.targets.len(), 2);
        assert!(tch.targets.iter().all(|t| !t.met), "{:?}", tch.targets);
        assert_eq!(tch.targets[1].target, ">= 135");
        let mut cuda = report_with("cuda", 100.0, 10.0, 100.0);
        cuda.finish();
        assert!(cuda.targets.is_empty(), "{:?}", cuda.targets);
    }

    #[test]
    fn suite_compares_each_device_with_the_first() {
        let suite = BenchSuite::new(vec![
            report_with("flex", 50.0, 8.0, 20.0),
            report_with("tch-cpu", 150.0, 24.0, 90.0),
        ]);
        assert_eq!(suite.best_sgemm_gflops, Some(150.0));
        assert_eq!(suite.relative.len(), 1);
        let r = &suite.relative[0];
        assert_eq!(
            (r.device.as_str(), r.baseline.as_str()),
            ("tch-cpu", "flex")
        );
        assert!((r.train_speedup.unwrap() - 3.0).abs() < 1e-12);
        assert!((r.infer_speedup.unwrap() - 4.5).abs() < 1e-12);
        assert!((r.roofline_fraction_vs_best_sgemm.unwrap() - 24.0 * 6.3 / 150.0).abs() < 1e-12);
        let json = serde_json::to_string(&suite).unwrap();
        let back: BenchSuite = serde_json::from_str(&json).unwrap();
        assert_eq!(back.runs.len(), 2);
    }

    #[test]
    fn cpu_time_advances_with_work() {
        if !cfg!(target_os = "linux") {
            eprintln!("skipped: /proc/self/stat is Linux-only");
            return;
        }
        let c0 = process_cpu_s().expect("cpu time");
        let t = Instant::now();
        let mut x = 0u64;
        while t.elapsed().as_secs_f64() < 0.05 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        std::hint::black_box(x);
        let c1 = process_cpu_s().expect("cpu time");
        assert!(c1 >= c0 && c1 - c0 < 10.0, "{c0} {c1}");
    }

    #[test]
    fn sgemm_rate_is_positive() {
        let d = Device::flex();
        let g = bench_sgemm(&d, 64, 1);
        assert!(g.gflops > 0.0 && g.best_s > 0.0);
    }

    #[test]
    fn stitch_bench_runs() {
        let s = bench_stitch(1).expect("stitch bench");
        assert_eq!((s.patches, s.m), (512, 20));
        assert!(s.patches_per_s > 0.0);
    }
}
