//! Inference with a saved model (spec §7, §11.3): load the archive (params first, CONFIG-001),
//! group and normalise the test data with the archive's N and gridsize, predict object patches
//! with `diffraction_to_obj` in batches, stitch them at the group centres and write
//! `reconstruction.npz`, two figures and (when the test data has `objectGuess`) `metrics.json`
//! and the comparison figure.
//!
//! Units: diffraction data are amplitudes; coordinates are `[x, y]` = `[column, row]` in object
//! pixels; the stitched object is complex (amplitude·e^{iφ}, φ in radians).

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::tensor::{Device, Tensor};
use ndarray::Array3;
use num_complex::Complex32;
use ptycho_config::{InferenceConfig, Params, Valid};
use ptycho_model::{DeviceKind, ModelError, PtychoPinn};
use ptycho_persist::{ArchivedModel, load_any_model, resolve_archive_path, write_bytes_atomic};

use crate::data::RawData;
use crate::error::{Result, WorkflowError};
use crate::evaluate::{Evaluation, evaluate_with_images, write_comparison_figure};
use crate::grouping::{GroupedData, group};
use crate::imaging::{coverage, object_panels, write_image_figure};
use crate::metrics::EvalImages;
use crate::model_inputs::{ModelInputs, OffsetSource};
use crate::reconstruction::Reconstruction;
use crate::stitch::reassemble_position;

/// File names written into the output directory.
pub const RECONSTRUCTION_FILE: &str = "reconstruction.npz";
/// Amplitude figure (grey, 1st–99th percentiles of the covered pixels, colour bar, axes in pixels).
pub const AMPLITUDE_PNG: &str = "reconstructed_amplitude.png";
/// Phase figure (radians; viridis on the covered pixels' percentiles, or cyclic over [−π, π]).
pub const PHASE_PNG: &str = "reconstructed_phase.png";
/// Ground truth | reconstruction | difference, amplitude and phase (only with `objectGuess`).
pub const COMPARISON_PNG: &str = "comparison.png";
/// Metrics against `objectGuess` (only when the test data has one).
pub const METRICS_FILE: &str = "metrics.json";

/// Runtime knobs of [`infer`] that are not settings (the settings are a
/// [`Valid<InferenceConfig>`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InferRuntime {
    /// Backend/device of the prediction. Default: flex (CPU).
    pub device: DeviceKind,
    /// Write the outputs into the config's `output_dir` (created, with parents, only once
    /// everything succeeded). Default: false (compute only).
    pub write_outputs: bool,
}

impl Default for InferRuntime {
    fn default() -> Self {
        InferRuntime {
            device: DeviceKind::Flex,
            write_outputs: false,
        }
    }
}

/// What [`infer`] produced.
#[derive(Debug, Clone)]
pub struct InferResult {
    /// The stitched reconstruction.
    pub reconstruction: Reconstruction,
    /// The archive that was loaded (the resolved `wts.h5.zip` path).
    pub archive: PathBuf,
    /// The params restored from the archive (N, gridsize, s).
    pub params: Params,
    /// Groups predicted (G).
    pub n_groups: usize,
    /// Diffraction patterns fed to the network (G · gridsize²).
    pub n_patterns: usize,
    /// Normalisation factor of the test set (its own, spec §3.1).
    pub norm_factor: f64,
    /// Wall time of the batched prediction, seconds.
    pub predict_seconds: f64,
    /// Patterns per second of the prediction.
    pub patterns_per_second: f64,
    /// Metrics against the test data's `objectGuess`, if it has one.
    pub evaluation: Option<Evaluation>,
    /// Why the metrics were skipped although the test data has `objectGuess`.
    pub evaluation_error: Option<String>,
    /// Files written (empty unless [`InferRuntime::write_outputs`]).
    pub files: Vec<PathBuf>,
}

/// Reconstruct `test` with the model archived at `archive` (a directory holding `wts.h5.zip`,
/// or the zip itself) using the settings `cfg`; see the module documentation. The archive decides
/// N and gridsize (CONFIG-001). Nothing is written unless every step before the output succeeded.
pub fn infer(
    archive: &Path,
    test: &RawData,
    cfg: &Valid<InferenceConfig>,
    run: &InferRuntime,
) -> Result<InferResult> {
    let archive_path = resolve_archive_path(archive);
    let device = run.device.to_device()?;
    // CONFIG-001: the params come from the archive, and the model is built from them.
    // The archive's params say which network it holds.
    let (loaded, params) = load_any_model(&archive_path, &device)?;
    if test.n() != params.n() {
        return Err(WorkflowError::PatternSize {
            archive: archive_path,
            got: test.n(),
            expected: params.n(),
        });
    }
    // Depends on the archive: the config cannot know its N.
    if cfg.stitch_crop > params.n() {
        return Err(WorkflowError::InvalidOption {
            field: "stitch_crop",
            value: cfg.stitch_crop.to_string(),
            reason: format!("must not exceed the patch size N = {}", params.n()),
        });
    }
    let sub;
    let test = match cfg.n_subsample {
        Some(k) if k < test.n_points() => {
            sub = test.subsample(k, cfg.subsample_seed.unwrap_or(cfg.seed))?;
            &sub
        }
        _ => test,
    };
    let grouping = cfg.grouping(test.n_points(), params.gridsize())?;
    let grouped = group(test, &params, &grouping)?;

    let t0 = Instant::now();
    let (patches, centres) = match loaded {
        ArchivedModel::Pinn(loaded) => {
            let patches = predict_patches(
                &loaded.diffraction_to_obj,
                &grouped,
                params.intensity_scale(),
                cfg.batch_size,
                run.device,
                &device,
            )?;
            (patches, group_centres(&grouped))
        }
        // One patch per pattern, at its own scan position.
        ArchivedModel::Supervised(loaded) => crate::train::supervised::predict_patches(
            &loaded.diffraction_to_obj,
            &grouped,
            prediction_batch(run.device, cfg.batch_size),
            &device,
        )?,
    };
    let predict_seconds = t0.elapsed().as_secs_f64();
    let n_patterns = grouped.n_groups() * grouped.channels();
    let patterns_per_second = n_patterns as f64 / predict_seconds.max(1e-9);
    tracing::info!(
        groups = grouped.n_groups(),
        patterns = n_patterns,
        seconds = predict_seconds,
        patterns_per_second,
        "prediction done"
    );

    let stitched = reassemble_position(patches.view(), &centres, cfg.stitch_crop)?;
    let reconstruction = Reconstruction {
        object: stitched.object,
        origin: stitched.origin,
        stitch_crop: Some(cfg.stitch_crop),
    };
    // Metrics are a by-product: if they cannot be computed (e.g. the objectGuess does not cover
    // the scan), the reconstruction is still written and the reason is kept and logged.
    let (evaluation, evaluation_error) = if test.object_guess.is_some() {
        match evaluate_with_images(&reconstruction, test, &cfg.evaluation()) {
            Ok(ev) => (Some(ev), None),
            Err(e) => {
                tracing::warn!("metrics against objectGuess skipped: {e}");
                (None, Some(e.to_string()))
            }
        }
    } else {
        (None, None)
    };

    let mut files = Vec::new();
    if run.write_outputs {
        files = write_outputs(&cfg.output_dir, &reconstruction, evaluation.as_ref())?;
    }
    let evaluation = evaluation.map(|(ev, _)| ev);
    Ok(InferResult {
        reconstruction,
        archive: archive_path,
        params,
        n_groups: grouped.n_groups(),
        n_patterns,
        norm_factor: grouped.norm_factor,
        predict_seconds,
        patterns_per_second,
        evaluation,
        evaluation_error,
        files,
    })
}

/// The group centres `[x, y]` (object pixels), where the PINN's patches are stitched.
fn group_centres(grouped: &GroupedData) -> Vec<[f64; 2]> {
    (0..grouped.n_groups())
        .map(|g| {
            [
                grouped.coords_offsets[[g, 0, 0, 0]],
                grouped.coords_offsets[[g, 0, 1, 0]],
            ]
        })
        .collect()
}

/// Run `diffraction_to_obj` over the groups in batches: input `s·X` channels-first, positions =
/// `coords_relative`; returns the trimmed object patches `(G, N, N)` (complex64).
fn predict_patches(
    model: &PtychoPinn,
    grouped: &GroupedData,
    s: f64,
    batch_size: usize,
    kind: DeviceKind,
    device: &Device,
) -> Result<Array3<Complex32>> {
    let inputs = ModelInputs::from_grouped(grouped, s, OffsetSource::Nominal);
    predict_object_patches(
        model,
        &inputs,
        prediction_batch(kind, batch_size),
        prediction_streams(kind),
        device,
    )
}

/// Groups per forward pass on `device` for a requested batch size: libtorch's CPU convolutions
/// run 1.6× slower per pattern at batch 32 than at 16 on the 2-core reference machine, so tch-cpu
/// passes hold at most 16 groups. Results do not depend on it (every group is independent).
pub fn prediction_batch(device: DeviceKind, requested: usize) -> usize {
    match device {
        DeviceKind::TchCpu => requested.clamp(1, 16),
        _ => requested.max(1),
    }
}

/// Batches run concurrently by [`predict_object_patches`] on `device`: two on the flex CPU
/// backend (its kernels leave a core idle in their serial parts, which the other batch fills:
/// 33 → 42–49 patterns/s on 2 cores, see plans/BENCHMARKS.md), one elsewhere (libtorch and CUDA
/// schedule their own threads).
pub fn prediction_streams(device: DeviceKind) -> usize {
    match device {
        DeviceKind::Flex => 2,
        _ => 1,
    }
}

/// One predicted batch: first group index, real and imaginary parts `(b, N, N)` flattened.
type BatchPatches = (usize, Vec<f32>, Vec<f32>);

/// `diffraction_to_obj` over all groups of `inputs` in batches of `batch_size`, `streams`
/// batches at a time (each on its own thread, sharing the model and the backend's thread pool);
/// returns the object patches `(G, N, N)` in group order.
pub fn predict_object_patches(
    model: &PtychoPinn,
    inputs: &ModelInputs,
    batch_size: usize,
    streams: usize,
    device: &Device,
) -> Result<Array3<Complex32>> {
    let (g, n) = (inputs.g, inputs.n);
    let batch_size = batch_size.max(1);
    let starts: Vec<usize> = (0..g).step_by(batch_size).collect();
    let streams = streams.clamp(1, starts.len().max(1));
    let run_batch = |start: usize| -> Result<BatchPatches> {
        let end = (start + batch_size).min(g);
        let b = end - start;
        let idx: Vec<usize> = (start..end).collect();
        let (x, pos) = inputs.batch(&idx, device);
        let obj = model.diffraction_to_obj(x, pos)?;
        let re = readback(obj.re, "obj_re")?;
        let im = readback(obj.im, "obj_im")?;
        if re.len() != b * n * n || im.len() != b * n * n {
            return Err(ModelError::Shape {
                what: "diffraction_to_obj output",
                got: vec![re.len()],
                expected: format!("{} values (B, 1, {n}, {n})", b * n * n),
            }
            .into());
        }
        Ok((start, re, im))
    };
    let mut out = Array3::<Complex32>::zeros((g, n, n));
    let mut place = |(start, re, im): BatchPatches| {
        let flat = out
            .as_slice_mut()
            .expect("a freshly allocated array is contiguous");
        let dst = &mut flat[start * n * n..start * n * n + re.len()];
        for ((d, r), i) in dst.iter_mut().zip(&re).zip(&im) {
            *d = Complex32::new(*r, *i);
        }
    };
    if streams == 1 {
        for &start in &starts {
            place(run_batch(start)?);
        }
        return Ok(out);
    }
    let results: Vec<Result<Vec<BatchPatches>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..streams)
            .map(|k| {
                let starts = &starts;
                let run_batch = &run_batch;
                scope.spawn(move || {
                    starts
                        .iter()
                        .skip(k)
                        .step_by(streams)
                        .map(|&start| run_batch(start))
                        .collect::<Result<Vec<_>>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| match h.join() {
                Ok(r) => r,
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect()
    });
    for r in results {
        for batch in r? {
            place(batch);
        }
    }
    Ok(out)
}

fn readback(t: Tensor<4>, what: &'static str) -> Result<Vec<f32>> {
    t.into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .map_err(|e| {
            ModelError::Readback {
                what,
                message: format!("{e:?}"),
            }
            .into()
        })
}

/// Write `reconstruction.npz`, the amplitude and phase figures and (if given) `metrics.json` and
/// the comparison figure into `dir`.
fn write_outputs(
    dir: &Path,
    recon: &Reconstruction,
    evaluation: Option<&(Evaluation, EvalImages)>,
) -> Result<Vec<PathBuf>> {
    let io = |path: &Path, action: &'static str| {
        let path = path.to_path_buf();
        move |source| WorkflowError::Io {
            path,
            action,
            source,
        }
    };
    std::fs::create_dir_all(dir).map_err(io(dir, "creating the output directory"))?;
    let npz = dir.join(RECONSTRUCTION_FILE);
    recon.write_npz(&npz)?;
    let (amplitude, phase) = (recon.amplitude(), recon.phase());
    let covered = coverage(recon.object.view());
    let [amp_panel, phase_panel] = object_panels(amplitude.view(), phase.view(), covered.view());
    let amp_png = dir.join(AMPLITUDE_PNG);
    write_image_figure(&amp_png, &amp_panel).map_err(io(&amp_png, "writing"))?;
    let phase_png = dir.join(PHASE_PNG);
    write_image_figure(&phase_png, &phase_panel).map_err(io(&phase_png, "writing"))?;
    let mut files = vec![npz, amp_png, phase_png];
    if let Some((ev, images)) = evaluation {
        let path = dir.join(METRICS_FILE);
        let mut bytes = serde_json::to_vec_pretty(ev).map_err(|e| WorkflowError::Write {
            path: path.clone(),
            key: "metrics".into(),
            source: Box::new(e),
        })?;
        bytes.push(b'\n');
        write_bytes_atomic(&path, &bytes).map_err(io(&path, "writing"))?;
        files.push(path);
        let fig = dir.join(COMPARISON_PNG);
        write_comparison_figure(&fig, images, ev.registered)?;
        files.push(fig);
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batching_per_device() {
        assert_eq!(prediction_streams(DeviceKind::Flex), 2);
        assert_eq!(prediction_streams(DeviceKind::TchCpu), 1);
        assert_eq!(prediction_streams(DeviceKind::Cuda(0)), 1);
        assert_eq!(prediction_batch(DeviceKind::Flex, 32), 32);
        assert_eq!(prediction_batch(DeviceKind::Flex, 0), 1);
        assert_eq!(prediction_batch(DeviceKind::TchCpu, 32), 16);
        assert_eq!(prediction_batch(DeviceKind::TchCpu, 8), 8);
        assert_eq!(prediction_batch(DeviceKind::Cuda(0), 256), 256);
    }

    /// Two streams and odd batch sizes give the same patches, in group order, as one stream.
    #[test]
    fn streams_and_batches_do_not_change_the_patches() {
        use ptycho_config::{ModelConfig, TrainingConfig};
        let cfg = TrainingConfig {
            model: ModelConfig {
                n: 64,
                ..ModelConfig::default()
            },
            ..Default::default()
        };
        let params = Params::from_training(&cfg.validate().unwrap());
        let device = Device::flex();
        let model = PtychoPinn::new(&params, &device).unwrap();
        let (g, n) = (5, 64);
        let x_scaled: Vec<f32> = (0..g * n * n)
            .map(|k| ((k * 7919 % 1009) as f32) * 0.01)
            .collect();
        let inputs = ModelInputs {
            g,
            c: 1,
            n,
            x_scaled,
            positions: vec![0.0; g * 2],
        };
        let one = predict_object_patches(&model, &inputs, 5, 1, &device).unwrap();
        let two = predict_object_patches(&model, &inputs, 2, 2, &device).unwrap();
        assert_eq!(one.dim(), (5, 64, 64));
        let worst = one
            .iter()
            .zip(two.iter())
            .map(|(a, b)| (a - b).norm())
            .fold(0.0f32, f32::max);
        let scale = one.iter().map(|a| a.norm()).fold(0.0f32, f32::max);
        assert!(
            scale > 0.0 && worst <= 1e-5 * scale,
            "worst {worst}, scale {scale}"
        );
        // Different inputs give different patches (the comparison above can fail).
        assert!((one[[0, 32, 32]] - one[[1, 32, 32]]).norm() > 0.0);
    }
}
