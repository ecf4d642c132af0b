//! Inference with a saved model (spec §7, §11.3): load the archive (params first, CONFIG-001),
//! group and normalise the test data with the archive's N and gridsize, predict object patches
//! with `diffraction_to_obj` in batches, stitch them at the group centres and write
//! `reconstruction.npz`, two PNGs and (when the test data has `objectGuess`) `metrics.json`.
//!
//! Units: diffraction data are amplitudes; coordinates are `[x, y]` = `[column, row]` in object
//! pixels; the stitched object is complex (amplitude·e^{iφ}, φ in radians).

use std::fs::File;
use std::io::{BufWriter, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::tensor::{Device, Tensor};
use ndarray::{Array0, Array1, Array2, Array3, ArrayD, Ix0, Ix1, Ix2};
use ndarray_npy::{NpzWriter, WriteNpzError};
use num_complex::Complex32;
use ptycho_config::Params;
use ptycho_model::{DeviceKind, ModelError, PtychoPinn};
use ptycho_persist::{load_model, resolve_archive_path, write_atomic, write_bytes_atomic};

use crate::data::{NpzFile, RawData};
use crate::error::{Result, WorkflowError};
use crate::evaluate::{EvaluateOptions, Evaluation, evaluate};
use crate::grouping::{GroupedData, GroupingOptions, group};
use crate::imaging::{Colormap, write_png};
use crate::model_inputs::{ModelInputs, OffsetSource};
use crate::stitch::reassemble_position;

/// File names written into the output directory.
pub const RECONSTRUCTION_FILE: &str = "reconstruction.npz";
/// Amplitude image (gray colormap).
pub const AMPLITUDE_PNG: &str = "reconstructed_amplitude.png";
/// Phase image (cyclic colormap over [−π, π]).
pub const PHASE_PNG: &str = "reconstructed_phase.png";
/// Metrics against `objectGuess` (only when the test data has one).
pub const METRICS_FILE: &str = "metrics.json";

/// Options of [`infer`] (defaults = the reference inference script).
#[derive(Debug, Clone, PartialEq)]
pub struct InferOptions {
    /// Directory receiving the outputs; created (with parents) only once everything succeeded.
    /// `None`: compute only, write nothing.
    pub output_dir: Option<PathBuf>,
    /// Backend/device of the prediction. Default: flex (CPU).
    pub device: DeviceKind,
    /// Groups to form: `None` = every scan point for gridsize 1, `max(1, n / gs²)` for gs > 1;
    /// `Some(k)` = `min(k, n)` for gs 1, `max(1, min(k, n / gs²))` for gs > 1.
    pub n_groups: Option<usize>,
    /// Central crop M (pixels, even, ≤ N) of every patch used for stitching. Default: 20.
    pub stitch_crop: usize,
    /// Groups per forward pass (≥ 1). Default: 32 (Keras predict).
    pub batch_size: usize,
    /// K, neighbours considered per group (gridsize > 1). Default: 4.
    pub neighbor_count: usize,
    /// Seed of the grouping draw. Default: 45.
    pub seed: u64,
}

impl Default for InferOptions {
    fn default() -> Self {
        InferOptions {
            output_dir: None,
            device: DeviceKind::Flex,
            n_groups: None,
            stitch_crop: 20,
            batch_size: 32,
            neighbor_count: 4,
            seed: 45,
        }
    }
}

/// A stitched reconstruction, as stored in `reconstruction.npz`.
#[derive(Debug, Clone, PartialEq)]
pub struct Reconstruction {
    /// Complex object `(S, S)` (amplitude·e^{iφ}); pixels no patch covered are 0. Key `object`
    /// (complex64); the file also holds `amplitude` = |object| and `phase` = arg object (radians,
    /// float32).
    pub object: Array2<Complex32>,
    /// Object-pixel coordinate `[x, y]` of canvas pixel (row 0, col 0); canvas pixel `(r, c)` is
    /// object pixel `(origin_y + r, origin_x + c)`. Key `origin` (float64, shape (2,)).
    pub origin: [f64; 2],
    /// The stitching crop M (pixels) used; key `stitch_crop` (int64 scalar), optional on read.
    pub stitch_crop: Option<usize>,
}

impl Reconstruction {
    /// Amplitude |object| (float32).
    pub fn amplitude(&self) -> Array2<f32> {
        self.object.mapv(|z| z.norm())
    }

    /// Phase arg(object) in radians, (−π, π] (float32).
    pub fn phase(&self) -> Array2<f32> {
        self.object.mapv(|z| z.arg())
    }

    /// Write `object`, `amplitude`, `phase`, `origin` and `stitch_crop` as a compressed NPZ,
    /// atomically (a failure leaves no partial file).
    pub fn write_npz(&self, path: &Path) -> Result<()> {
        let mut failed: Option<(&'static str, String)> = None;
        let res = write_atomic(path, |w: &mut BufWriter<&mut File>| {
            self.fill_npz(w).map_err(|(key, reason)| {
                let e = std::io::Error::other(reason.clone());
                failed = Some((key, reason));
                e
            })
        });
        match (res, failed) {
            (Ok(()), _) => Ok(()),
            (Err(_), Some((key, reason))) => Err(WorkflowError::Write {
                path: path.to_path_buf(),
                key: key.into(),
                reason,
            }),
            (Err(source), None) => Err(WorkflowError::Io {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    fn fill_npz<W: Write + Seek>(&self, w: W) -> std::result::Result<(), (&'static str, String)> {
        let mut npz = NpzWriter::new_compressed(w);
        let e = |key: &'static str| move |err: WriteNpzError| (key, err.to_string());
        npz.add_array("object", &self.object).map_err(e("object"))?;
        npz.add_array("amplitude", &self.amplitude())
            .map_err(e("amplitude"))?;
        npz.add_array("phase", &self.phase()).map_err(e("phase"))?;
        npz.add_array("origin", &Array1::from(self.origin.to_vec()))
            .map_err(e("origin"))?;
        let crop = Array0::from_elem((), self.stitch_crop.unwrap_or(0) as i64);
        npz.add_array("stitch_crop", &crop)
            .map_err(e("stitch_crop"))?;
        npz.finish().map_err(e("<finish>"))?;
        Ok(())
    }

    /// Read a reconstruction NPZ written by [`Reconstruction::write_npz`] (`object` required,
    /// `origin` required, `stitch_crop` optional).
    pub fn from_npz(path: &Path) -> Result<Self> {
        let mut npz = NpzFile::open(path)?;
        for key in ["object", "origin"] {
            if !npz.has(key) {
                return Err(WorkflowError::MissingKey {
                    path: path.to_path_buf(),
                    key: key.into(),
                });
            }
        }
        let bad = |key: &str, e: String| WorkflowError::BadArray {
            path: path.to_path_buf(),
            key: key.into(),
            reason: format!("expected {}: {e}", expected_of(key)),
        };
        let object: ArrayD<Complex32> = npz.read_raw("object").map_err(|e| bad("object", e))?;
        let object = object
            .into_dimensionality::<Ix2>()
            .map_err(|_| WorkflowError::BadArray {
                path: path.to_path_buf(),
                key: "object".into(),
                reason: "expected a 2-D complex64 array".into(),
            })?;
        if object.is_empty() {
            return Err(WorkflowError::BadArray {
                path: path.to_path_buf(),
                key: "object".into(),
                reason: "empty array".into(),
            });
        }
        let origin: ArrayD<f64> = npz.read_raw("origin").map_err(|e| bad("origin", e))?;
        let origin = origin
            .into_dimensionality::<Ix1>()
            .ok()
            .filter(|o| o.len() == 2);
        let Some(origin) = origin.filter(|o| o.iter().all(|v| v.is_finite())) else {
            return Err(WorkflowError::BadArray {
                path: path.to_path_buf(),
                key: "origin".into(),
                reason: "expected two finite float64 values [x, y]".into(),
            });
        };
        let stitch_crop = if npz.has("stitch_crop") {
            let c: ArrayD<i64> = npz
                .read_raw("stitch_crop")
                .map_err(|e| bad("stitch_crop", e))?;
            let v = c.into_dimensionality::<Ix0>().ok().map(|a| a.into_scalar());
            match v {
                Some(v) if v > 0 => Some(v as usize),
                Some(_) => None,
                None => {
                    return Err(WorkflowError::BadArray {
                        path: path.to_path_buf(),
                        key: "stitch_crop".into(),
                        reason: "expected an int64 scalar".into(),
                    });
                }
            }
        } else {
            None
        };
        Ok(Reconstruction {
            object,
            origin: [origin[0], origin[1]],
            stitch_crop,
        })
    }
}

fn expected_of(key: &str) -> &'static str {
    match key {
        "object" => "a 2-D complex64 array",
        "origin" => "a float64 array of shape (2,)",
        _ => "an int64 scalar",
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
    /// Files written (empty when `output_dir` is `None`).
    pub files: Vec<PathBuf>,
}

/// Number of groups the reference inference forms (spec §11.3) from `total` scan points.
pub fn inference_group_count(total: usize, gridsize: usize, requested: Option<usize>) -> usize {
    let c = gridsize * gridsize;
    if c <= 1 {
        requested.map_or(total, |k| k.min(total))
    } else {
        let cap = total / c;
        requested.map_or(cap, |k| k.min(cap)).max(1)
    }
}

fn check_options(opts: &InferOptions) -> Result<()> {
    if opts.batch_size == 0 {
        return Err(WorkflowError::InvalidOption {
            field: "batch_size",
            value: "0".into(),
            reason: "must be at least 1".into(),
        });
    }
    if opts.n_groups == Some(0) {
        return Err(WorkflowError::InvalidOption {
            field: "n_groups",
            value: "0".into(),
            reason: "must be at least 1".into(),
        });
    }
    if opts.stitch_crop == 0 || opts.stitch_crop % 2 == 1 {
        return Err(WorkflowError::InvalidOption {
            field: "stitch_crop",
            value: opts.stitch_crop.to_string(),
            reason: "must be an even number of pixels > 0".into(),
        });
    }
    Ok(())
}

/// Reconstruct `test` with the model archived at `archive` (a directory holding `wts.h5.zip`,
/// or the zip itself); see the module documentation. Nothing is written unless every step
/// before the output succeeded.
pub fn infer(archive: &Path, test: &RawData, opts: &InferOptions) -> Result<InferResult> {
    check_options(opts)?;
    let archive_path = resolve_archive_path(archive);
    let device = opts.device.to_device()?;
    // CONFIG-001: the params come from the archive, and the model is built from them.
    let (loaded, params) = load_model(&archive_path, &device)?;
    let model = loaded.diffraction_to_obj;
    if test.n() != params.n() {
        return Err(WorkflowError::PatternSize {
            archive: archive_path,
            got: test.n(),
            expected: params.n(),
        });
    }
    if opts.stitch_crop > params.n() {
        return Err(WorkflowError::InvalidOption {
            field: "stitch_crop",
            value: opts.stitch_crop.to_string(),
            reason: format!("must not exceed the patch size N = {}", params.n()),
        });
    }
    let n_groups = inference_group_count(test.n_points(), params.gridsize(), opts.n_groups);
    let grouping = GroupingOptions {
        n_groups,
        neighbor_count: opts.neighbor_count,
        seed: Some(opts.seed),
        ..GroupingOptions::default()
    };
    let grouped = group(test, &params, &grouping)?;

    let t0 = Instant::now();
    let patches = predict_patches(&model, &grouped, params.intensity_scale(), opts, &device)?;
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

    let centres: Vec<[f64; 2]> = (0..grouped.n_groups())
        .map(|g| {
            [
                grouped.coords_offsets[[g, 0, 0, 0]],
                grouped.coords_offsets[[g, 0, 1, 0]],
            ]
        })
        .collect();
    let stitched = reassemble_position(patches.view(), &centres, opts.stitch_crop)?;
    let reconstruction = Reconstruction {
        object: stitched.object,
        origin: stitched.origin,
        stitch_crop: Some(opts.stitch_crop),
    };
    // Metrics are a by-product: if they cannot be computed (e.g. the objectGuess does not cover
    // the scan), the reconstruction is still written and the reason is kept and logged.
    let (evaluation, evaluation_error) = if test.object_guess.is_some() {
        let eopts = EvaluateOptions {
            stitch_crop: Some(opts.stitch_crop),
            ..EvaluateOptions::default()
        };
        match evaluate(&reconstruction, test, &eopts) {
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
    if let Some(dir) = &opts.output_dir {
        files = write_outputs(dir, &reconstruction, evaluation.as_ref())?;
    }
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

/// Run `diffraction_to_obj` over the groups in batches: input `s·X` channels-first, positions =
/// `coords_relative`; returns the trimmed object patches `(G, N, N)` (complex64).
fn predict_patches(
    model: &PtychoPinn,
    grouped: &GroupedData,
    s: f64,
    opts: &InferOptions,
    device: &Device,
) -> Result<Array3<Complex32>> {
    let inputs = ModelInputs::from_grouped(grouped, s, OffsetSource::Nominal);
    predict_object_patches(
        model,
        &inputs,
        prediction_batch(opts.device, opts.batch_size),
        prediction_streams(opts.device),
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
        let (re, im) = model.diffraction_to_obj(x, pos)?;
        let re = readback(re, "obj_re")?;
        let im = readback(im, "obj_im")?;
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

/// Write `reconstruction.npz`, the two PNGs and (if given) `metrics.json` into `dir`.
fn write_outputs(
    dir: &Path,
    recon: &Reconstruction,
    evaluation: Option<&Evaluation>,
) -> Result<Vec<PathBuf>> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| WorkflowError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let npz = dir.join(RECONSTRUCTION_FILE);
    recon.write_npz(&npz)?;
    let amp_png = dir.join(AMPLITUDE_PNG);
    write_png(&amp_png, recon.amplitude().view(), Colormap::Gray, None).map_err(io(&amp_png))?;
    let phase_png = dir.join(PHASE_PNG);
    let pi = std::f64::consts::PI;
    write_png(
        &phase_png,
        recon.phase().view(),
        Colormap::Cyclic,
        Some((-pi, pi)),
    )
    .map_err(io(&phase_png))?;
    let mut files = vec![npz, amp_png, phase_png];
    if let Some(ev) = evaluation {
        let path = dir.join(METRICS_FILE);
        let mut bytes = serde_json::to_vec_pretty(ev).map_err(|e| WorkflowError::Write {
            path: path.clone(),
            key: "metrics".into(),
            reason: e.to_string(),
        })?;
        bytes.push(b'\n');
        write_bytes_atomic(&path, &bytes).map_err(io(&path))?;
        files.push(path);
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray_npy::NpzReader;

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

    #[test]
    fn group_counts_follow_the_reference() {
        assert_eq!(inference_group_count(100, 1, None), 100);
        assert_eq!(inference_group_count(100, 1, Some(30)), 30);
        assert_eq!(inference_group_count(100, 1, Some(300)), 100);
        assert_eq!(inference_group_count(100, 2, None), 25);
        assert_eq!(inference_group_count(100, 2, Some(10)), 10);
        assert_eq!(inference_group_count(100, 2, Some(80)), 25);
        assert_eq!(inference_group_count(3, 2, None), 1);
    }

    #[test]
    fn reconstruction_npz_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.npz");
        let rec = Reconstruction {
            object: Array2::from_shape_fn((6, 8), |(r, c)| {
                Complex32::from_polar(1.0 + r as f32, 0.1 * c as f32 - 0.3)
            }),
            origin: [12.5, -3.25],
            stitch_crop: Some(20),
        };
        rec.write_npz(&p).unwrap();
        let back = Reconstruction::from_npz(&p).unwrap();
        assert_eq!(back, rec);
        let mut npz = NpzReader::new(File::open(&p).unwrap()).unwrap();
        let amp: Array2<f32> = npz.by_name("amplitude").unwrap();
        assert!((amp[[2, 3]] - 3.0).abs() < 1e-6);
        let ph: Array2<f32> = npz.by_name("phase").unwrap();
        assert!((ph[[2, 3]] - 0.0).abs() < 1e-6 && (ph[[0, 0]] + 0.3).abs() < 1e-6);
    }

    #[test]
    fn bad_reconstruction_files_name_file_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.npz");
        std::fs::write(&p, b"not a zip").unwrap();
        let e = Reconstruction::from_npz(&p).unwrap_err().to_string();
        assert!(
            e.contains("x.npz") && e.contains("not a readable NPZ"),
            "{e}"
        );
        let mut w = NpzWriter::new(File::create(&p).unwrap());
        w.add_array("object", &Array2::<Complex32>::zeros((3, 3)))
            .unwrap();
        w.finish().unwrap();
        let e = Reconstruction::from_npz(&p).unwrap_err().to_string();
        assert!(e.contains("x.npz") && e.contains("`origin`"), "{e}");
    }
}
