//! The benchmark's report: parts, roofline fractions, `--target` checks and the comparison of
//! several devices. Its JSON field names are the `ptycho bench --json` output.

use clap::ValueEnum;
use ptycho_model::DeviceKind;
use serde::{Deserialize, Serialize};

use super::sys::utc_now;

/// FLOPs of one training sample (forward + backward) at N = 64, gridsize 1, nfs 2, as measured
/// for the reference model (issue #7); the roofline fraction is `samples/s · this ÷ sgemm FLOP/s`.
pub const TRAIN_GFLOP_PER_SAMPLE: f64 = 6.3;

fn one() -> usize {
    1
}

/// One part of the benchmark (each can run alone, e.g. in a child process, `--only PART`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
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

/// A `--target` and whether it was met.
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

    /// Compute the roofline fractions from the parts present and check `targets` (those whose
    /// measurement is present) against them.
    pub fn finish(&mut self, targets: &[Target]) {
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
        self.targets = targets.iter().filter_map(|t| t.check(self)).collect();
    }
}

/// A quantity that `ptycho bench --target NAME=VALUE` can check (the values of the project's
/// targets are in plans/BENCHMARKS.md, not in the code).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum TargetKind {
    /// Minimum training roofline fraction, N=64 gs=1 B=16 (CPU-time based when known).
    Roofline,
    /// Minimum end-to-end inference + stitching rate, patterns/s.
    InferPatternsPerS,
    /// Maximum time of stitching 512 patches at M = 20, ms.
    StitchMs,
    /// Maximum peak RSS of training N=64 gs=1 B=16, MiB.
    TrainPeakRssMib,
}

/// One `--target NAME=VALUE`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Target {
    pub kind: TargetKind,
    pub value: f64,
}

impl std::str::FromStr for Target {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let names = || {
            TargetKind::value_variants()
                .iter()
                .filter_map(|k| k.to_possible_value().map(|v| v.get_name().to_string()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let (name, value) = s
            .split_once('=')
            .ok_or_else(|| format!("`{s}` is not NAME=VALUE (names: {})", names()))?;
        let kind = TargetKind::from_str(name.trim(), true)
            .map_err(|_| format!("unknown target `{name}` (names: {})", names()))?;
        let value: f64 = value
            .trim()
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite())
            .ok_or_else(|| format!("target `{name}`: `{value}` is not a finite number"))?;
        Ok(Self { kind, value })
    }
}

impl Target {
    /// The check of this target against `r`, `None` when `r` lacks the measurement.
    fn check(&self, r: &BenchReport) -> Option<TargetCheck> {
        let v = self.value;
        let (name, measured, target, met) = match self.kind {
            TargetKind::Roofline => {
                let f = r.roofline_fraction_cpu.or(r.roofline_fraction)?;
                (
                    "train N=64 gs=1 B=16 roofline fraction (CPU time when known)",
                    f,
                    format!(">= {v}"),
                    f >= v,
                )
            }
            TargetKind::InferPatternsPerS => {
                let p = r.infer.as_ref()?.end_to_end_patterns_per_s;
                (
                    "inference + stitching, patterns/s",
                    p,
                    format!(">= {v}"),
                    p >= v,
                )
            }
            TargetKind::StitchMs => {
                let ms = r.stitch.as_ref()?.best_s * 1e3;
                ("stitch 512 patches M=20, ms", ms, format!("< {v}"), ms < v)
            }
            TargetKind::TrainPeakRssMib => {
                let p = r.train64()?.peak_rss_mib_after?;
                (
                    "training N=64 gs=1 B=16 peak RSS, MiB",
                    p,
                    format!("< {v}"),
                    p < v,
                )
            }
        };
        Some(TargetCheck {
            name: name.into(),
            measured,
            target,
            met,
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn target(s: &str) -> Target {
        s.parse().unwrap()
    }

    #[test]
    fn targets_parse_and_name_bad_input() {
        assert_eq!(
            target("roofline=0.4"),
            Target {
                kind: TargetKind::Roofline,
                value: 0.4
            }
        );
        assert_eq!(target("stitch_ms = 100").kind, TargetKind::StitchMs);
        let e = "warp=1".parse::<Target>().unwrap_err();
        assert!(
            e.contains("warp") && e.contains("infer_patterns_per_s"),
            "{e}"
        );
        let e = "roofline".parse::<Target>().unwrap_err();
        assert!(e.contains("NAME=VALUE"), "{e}");
        let e = "roofline=fast".parse::<Target>().unwrap_err();
        assert!(e.contains("fast"), "{e}");
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
        let targets = [
            target("roofline=0.4"),
            target("infer_patterns_per_s=45"),
            target("stitch_ms=100"),
            target("train_peak_rss_mib=1024"),
        ];
        r.finish(&targets);
        let f = r.roofline_fraction.expect("fraction");
        assert!((f - 8.0 * 6.3 / 100.0).abs() < 1e-12);
        // Only the measured parts are checked (no infer, no stitch).
        assert_eq!(r.targets.len(), 2);
        assert!(r.targets.iter().all(|t| t.met));
        r.finish(&[]);
        assert!(r.targets.is_empty());
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
    fn targets_are_met_or_not() {
        // 10 samples/s against 100 GFLOP/s is 0.63 of the roofline: meets 0.4, not 0.9;
        // 100 patterns/s meets 45, not 135.
        let mut r = report_with("flex", 100.0, 10.0, 100.0);
        r.finish(&[target("roofline=0.4"), target("infer_patterns_per_s=45")]);
        assert_eq!(r.targets.len(), 2);
        assert!(r.targets.iter().all(|t| t.met), "{:?}", r.targets);
        r.finish(&[target("roofline=0.9"), target("infer_patterns_per_s=135")]);
        assert_eq!(r.targets.len(), 2);
        assert!(r.targets.iter().all(|t| !t.met), "{:?}", r.targets);
        assert_eq!(r.targets[1].target, ">= 135");
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
}
