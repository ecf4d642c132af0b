//! The measurements of `ptycho bench` on fixed simulated data: every measurement excludes a
//! warm-up run and reports wall-clock seconds; results are read back to force completion.

use std::time::Instant;

use anyhow::{Context, Result};
use burn::tensor::{DType, Device, Tensor, TensorData};
use ndarray::{Array3, Axis};
use num_complex::Complex32;
use ptycho_config::{
    DEFAULT_STITCH_CROP, GroupingConfig, ModelConfig, Params, SimulationConfig, TrainingConfig,
};
use ptycho_model::{LossWeights, PtychoPinn, TrainStep, ops};
use ptycho_workflows::infer::{predict_object_patches, prediction_batch, prediction_streams};
use ptycho_workflows::model_inputs::{ModelInputs, OffsetSource};
use ptycho_workflows::stitch::reassemble_position;
use ptycho_workflows::{GroupedData, RawData, group, simulate_lines};

use super::report::{
    BenchOptions, BenchPart, BenchReport, DataBench, InferBench, ProfileBench, SgemmBench,
    StitchBench, TrainBench, TrainPart,
};
use super::sys::{cpu_delta, peak_rss_mib, process_cpu_s};

/// Run one part and return a report holding only it.
pub fn run_part(part: BenchPart, opts: &BenchOptions) -> Result<BenchReport> {
    let mut report = BenchReport::new(opts);
    let device = opts.device.to_device()?;
    match part {
        BenchPart::Sgemm => report.sgemm = Some(bench_sgemm(&device, 1024, 20)?),
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

fn params_for(n: usize, gridsize: usize) -> Result<Params> {
    let cfg = TrainingConfig {
        model: ModelConfig {
            n,
            gridsize,
            ..ModelConfig::default()
        },
        batch_size: 16,
        ..Default::default()
    };
    let valid = cfg.validate()?;
    Ok(Params::from_training(&valid))
}

fn simulated(n: usize, n_images: usize) -> Result<RawData> {
    let cfg = SimulationConfig {
        n_images,
        n,
        seed: 7,
        ..SimulationConfig::default()
    }
    .validate()?;
    Ok(simulate_lines(&cfg)?)
}

fn grouped(raw: &RawData, params: &Params, n_groups: usize) -> Result<GroupedData> {
    let grouping = GroupingConfig {
        n_groups,
        seed: 1,
        ..GroupingConfig::default()
    }
    .validate()?;
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
pub fn bench_sgemm(device: &Device, n: usize, reps: usize) -> Result<SgemmBench> {
    let v: Vec<f32> = (0..n * n).map(|k| ((k % 97) as f32) * 0.01).collect();
    let a: Tensor<2> = Tensor::from_data(TensorData::new(v.clone(), [n, n]), (device, DType::F32));
    let b: Tensor<2> = Tensor::from_data(TensorData::new(v, [n, n]), (device, DType::F32));
    ops::to_vec_f64(a.clone().matmul(b.clone()).slice([0..1, 0..1]))?;
    let mut best = f64::INFINITY;
    let c0 = process_cpu_s();
    for _ in 0..reps.max(1) {
        let t = Instant::now();
        ops::to_vec_f64(a.clone().matmul(b.clone()).slice([0..1, 0..1]))?;
        best = best.min(t.elapsed().as_secs_f64());
    }
    let gflop = 2.0 * (n as f64).powi(3) / 1e9;
    Ok(SgemmBench {
        n,
        reps,
        best_s: best,
        gflops: gflop / best,
        gflop_per_cpu_s: cpu_delta(c0)
            .filter(|c| *c > 0.0)
            .map(|c| gflop * reps.max(1) as f64 / c),
    })
}

/// NPZ load (512 patterns at N = 64) and grouping times, best of 3.
pub fn bench_data() -> Result<DataBench> {
    let raw = simulated(64, 512)?;
    let dir = tempfile::tempdir().with_context(|| {
        format!(
            "creating a temporary directory in {}",
            std::env::temp_dir().display()
        )
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
pub fn bench_stitch(reps: usize) -> Result<StitchBench> {
    let raw = simulated(64, 512)?;
    let params = params_for(64, 1)?;
    let g = grouped(&raw, &params, 512)?;
    let y =
        g.y.as_ref()
            .context("simulated groups carry no ground truth")?;
    let patches: Array3<Complex32> = y.index_axis(Axis(3), 0).to_owned();
    let centres: Vec<[f64; 2]> = (0..g.n_groups())
        .map(|k| [g.coords_nn[[k, 0, 0, 0]], g.coords_nn[[k, 0, 1, 0]]])
        .collect();
    let m = DEFAULT_STITCH_CROP;
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
) -> Result<TrainBench> {
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
) -> Result<InferBench> {
    let params = params_for(64, 1)?;
    let raw = simulated(64, patterns.max(64))?;
    let g = grouped(&raw, &params, patterns)?;
    let inputs = ModelInputs::from_grouped(&g, params.intensity_scale(), OffsetSource::Nominal);
    let model = PtychoPinn::new(&params, device)?;
    let (x, pos) = batch_tensors(&inputs, 0, batch, device);
    let obj = model.diffraction_to_obj(x, pos)?;
    ops::to_vec_f64(obj.re)?;
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
    let _ = reassemble_position(patches.view(), &centres, DEFAULT_STITCH_CROP)?;
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
pub fn bench_profile(device: &Device, reps: usize) -> Result<ProfileBench> {
    let params = params_for(64, 1)?;
    let b = 16;
    let raw = simulated(64, 64)?;
    let g = grouped(&raw, &params, b)?;
    let inputs = ModelInputs::from_grouped(&g, params.intensity_scale(), OffsetSource::Nominal);
    let reps = reps.max(1);
    let time = |f: &mut dyn FnMut() -> Result<()>| -> Result<f64> {
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
        ops::to_vec_f64(a.slice([0..1, 0..1, 0..1, 0..1]))?;
        ops::to_vec_f64(phi.slice([0..1, 0..1, 0..1, 0..1]))?;
        Ok(())
    })?;
    let autoencoder_s = time(&mut || {
        let out = model.autoencoder(x.clone(), pos.clone())?;
        ops::to_vec_f64(out.pred_amp_scaled.slice([0..1, 0..1, 0..1, 0..1]))?;
        Ok(())
    })?;
    let ad = device.clone().autodiff();
    let mut model = PtychoPinn::new(&params, &ad)?;
    let (x, pos) = batch_tensors(&inputs, 0, b, &ad);
    let autoencoder_autodiff_s = time(&mut || {
        let out = model.autoencoder(x.clone(), pos.clone())?;
        ops::to_vec_f64(out.pred_amp_scaled.slice([0..1, 0..1, 0..1, 0..1]))?;
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
    fn sgemm_rate_is_positive() {
        let d = Device::flex();
        let g = bench_sgemm(&d, 64, 1).unwrap();
        assert!(g.gflops > 0.0 && g.best_s > 0.0);
    }

    #[test]
    fn stitch_bench_runs() {
        let s = bench_stitch(1).expect("stitch bench");
        assert_eq!((s.patches, s.m), (512, 20));
        assert!(s.patches_per_s > 0.0);
    }
}
