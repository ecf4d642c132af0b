//! Inference with a saved model (spec §7, §11.3): load the archive (params first, CONFIG-001),
//! group and normalise the test data with the archive's N and gridsize, predict object patches
//! with `diffraction_to_obj` in batches, stitch them at the group centres (a piece of the scan
//! at a time: memory does not grow with the number of patterns) and write
//! `reconstruction.npz`, two figures and (when the test data has `objectGuess`) `metrics.json`
//! and the comparison figure.
//!
//! Units: diffraction data are amplitudes; coordinates are `[x, y]` = `[column, row]` in object
//! pixels; the stitched object is complex (amplitude·e^{iφ}, φ in radians).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::tensor::{Device, Tensor};
use indicatif::{ProgressBar, ProgressStyle};
use ndarray::{Array2, Array3, s};
use num_complex::Complex32;
use ptycho_config::{InferenceConfig, Params, StitchAt, Valid};
use ptycho_model::{DeviceKind, ModelError, PtychoPinn};
use ptycho_persist::{ArchivedModel, load_any_model, resolve_archive_path, write_bytes_atomic};

use crate::data::{PatternSource, RawData, ScanHeader, check_subsample, subsample_rows};
use crate::error::{Result, WorkflowError};
use crate::evaluate::{Evaluation, evaluate_with_images, write_comparison_figure};
use crate::grouping::{coords_tables, group_indices_of};
use crate::imaging::{coverage, object_panels, write_image_figure};
use crate::metrics::EvalImages;
use crate::model_inputs::ModelInputs;
use crate::normalize;
use crate::reconstruction::Reconstruction;
use crate::stitch::{Stitcher, scan_box_coverage};

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
    /// No progress bar (it is also hidden when stderr is not a terminal). Default: true.
    pub quiet: bool,
    /// Bytes of network input read and predicted per piece of the scan (at least one pass of
    /// groups). Default: [`PIECE_INPUT_BYTES`].
    pub piece_bytes: usize,
}

impl Default for InferRuntime {
    fn default() -> Self {
        InferRuntime {
            device: DeviceKind::Flex,
            write_outputs: false,
            quiet: true,
            piece_bytes: PIECE_INPUT_BYTES,
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
    /// Wall time of the batched prediction, seconds (the network only).
    pub predict_seconds: f64,
    /// Patterns per second of the prediction.
    pub patterns_per_second: f64,
    /// Canvas pixels with a non-zero stitching weight (reached by at least one crop), the shape
    /// of the reconstruction's object.
    pub covered: Array2<bool>,
    /// Member windows left out of the canvas (gridsize ≥ 2 stitched at the members): those more
    /// than (N − M)/2 px from their group centre, which would reach past the group's object; a
    /// group that loses one stitches its central window as well. 0 otherwise.
    pub unstitched_windows: usize,
    /// Fraction of the scan's bounding box that the canvas covers
    /// ([`crate::stitch::scan_box_coverage`] of [`InferResult::covered`]).
    pub scan_coverage: f64,
    /// Wall time of the whole reconstruction (grouping, reading the patterns, prediction,
    /// stitching; not the metrics or the files), seconds.
    pub seconds: f64,
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
    let model = InferenceModel::load(archive, run.device)?;
    model.reconstruct(&test.header(), test, cfg, run)
}

/// A model loaded once for inference, to reconstruct any number of scans
/// ([`InferenceModel::reconstruct`]): the archive's params restored first and the network built
/// from them (CONFIG-001).
pub struct InferenceModel {
    archive: PathBuf,
    params: Params,
    model: ArchivedModel,
    kind: DeviceKind,
    device: Device,
}

impl std::fmt::Debug for InferenceModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InferenceModel")
            .field("archive", &self.archive)
            .field("model_type", &self.model.model_type())
            .field("n", &self.params.n())
            .field("gridsize", &self.params.gridsize())
            .field("device", &self.kind)
            .finish_non_exhaustive()
    }
}

/// Bytes of network input (`f32`) a piece of a scan may hold at once: the patterns of the
/// groups predicted together, read from the scan when their turn comes. With their predicted
/// patches (complex, one per group or pattern) it bounds what a reconstruction holds beside the
/// model and the canvas, whatever the number of patterns (N = 64: 512 patterns, 8 passes of 32
/// groups on two streams; more buys no speed, the network's own buffers are larger).
pub const PIECE_INPUT_BYTES: usize = 8 << 20;

impl InferenceModel {
    /// Load the archive at `archive` (a directory holding `wts.h5.zip`, or the zip) onto
    /// `device`.
    pub fn load(archive: &Path, device: DeviceKind) -> Result<Self> {
        let archive = resolve_archive_path(archive);
        let kind = device;
        let device = kind.to_device()?;
        // CONFIG-001: the params come from the archive, and the model is built from them.
        // The archive's params say which network it holds.
        let (model, params) = load_any_model(&archive, &device)?;
        Ok(InferenceModel {
            archive,
            params,
            model,
            kind,
            device,
        })
    }

    /// The restored params.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// The resolved archive path.
    pub fn archive(&self) -> &Path {
        &self.archive
    }

    /// The device the model runs on.
    pub fn device(&self) -> DeviceKind {
        self.kind
    }

    /// Reconstruct the scan of `header` whose patterns `patterns` reads, with the settings
    /// `cfg` (`run.device` is not used: the model's device is). The groups are formed over the
    /// whole scan up front; then their patterns are read, predicted and stitched one piece at a
    /// time ([`PIECE_INPUT_BYTES`]), so memory does not grow with the number of patterns. The
    /// result equals a reconstruction of the whole scan at once up to the order of float64 sums.
    pub fn reconstruct(
        &self,
        header: &ScanHeader,
        patterns: &dyn PatternSource,
        cfg: &Valid<InferenceConfig>,
        run: &InferRuntime,
    ) -> Result<InferResult> {
        let t_start = Instant::now();
        let params = &self.params;
        let n = params.n();
        if header.n != n || patterns.pattern_size() != n {
            return Err(WorkflowError::PatternSize {
                archive: self.archive.clone(),
                got: header.n,
                expected: n,
            });
        }
        if patterns.n_patterns() != header.n_points() {
            return Err(WorkflowError::Grouping {
                reason: format!(
                    "{} diffraction patterns for {} scan positions",
                    patterns.n_patterns(),
                    header.n_points()
                ),
            });
        }
        // Depends on the archive: the config cannot know its N.
        if cfg.stitch_crop > n {
            return Err(WorkflowError::InvalidOption {
                field: "stitch_crop",
                value: cfg.stitch_crop.to_string(),
                reason: format!("must not exceed the patch size N = {n}"),
            });
        }
        // Rows of the scan that take part, as indices into `patterns`.
        if let Some(k) = cfg.n_subsample {
            check_subsample(k)?;
        }
        let rows = match cfg.n_subsample {
            Some(k) if k < header.n_points() => Some(subsample_rows(
                header.n_points(),
                k,
                cfg.subsample_seed.unwrap_or(cfg.seed),
            )),
            _ => None,
        };
        let sub = rows.as_ref().map(|r| header.select(r));
        let header = sub.as_ref().unwrap_or(header);
        let scan_row = |i: usize| rows.as_ref().map_or(i, |r| r[i]);
        let c = params.channels();
        let grouping = cfg.grouping(header.n_points(), params.gridsize())?;
        let idx = group_indices_of(header, c, &grouping)?;
        let g = idx.nrows();
        let energies = patterns.pattern_energies()?;
        let norm_factor = normalize::normalization_factor_of_energies(
            idx.iter().map(|&i| energies[scan_row(i)]),
            n,
        );
        let (coords_nn, coords_offsets, coords_relative) =
            coords_tables(&header.xcoords, &header.ycoords, &idx);
        let supervised = matches!(self.model, ArchivedModel::Supervised(_));
        // PINN at gridsize ≥ 2 stitched at the members: one window per member, cut from its
        // group's object (see `MemberWindows`).
        let windows = (!supervised && c > 1 && cfg.stitch_at == StitchAt::Members)
            .then(|| MemberWindows::new(&coords_nn, &coords_offsets, n, cfg.stitch_crop));
        let unstitched_windows = windows.as_ref().map_or(0, |w| w.dropped);
        // PINN: one patch per group at its centre (or one per member window); supervised: one
        // per pattern at its position.
        let centres: Vec<[f64; 2]> = if let Some(w) = &windows {
            w.centres.clone()
        } else if supervised {
            (0..g * c)
                .map(|k| {
                    let (gi, ci) = (k / c, k % c);
                    [coords_nn[[gi, 0, 0, ci]], coords_nn[[gi, 0, 1, ci]]]
                })
                .collect()
        } else {
            (0..g)
                .map(|gi| [coords_offsets[[gi, 0, 0, 0]], coords_offsets[[gi, 0, 1, 0]]])
                .collect()
        };
        let mut stitcher = Stitcher::new(&centres, cfg.stitch_crop, [n, n])?;

        let batch = prediction_batch(self.kind, cfg.batch_size);
        let streams = prediction_streams(self.kind);
        let piece = piece_groups(run.piece_bytes, c, n, batch * streams);
        let n_patterns = g * c;
        let bar = progress_bar(n_patterns, run.quiet || !std::io::stderr().is_terminal());
        let s = params.intensity_scale();
        let mut predict_seconds = 0.0;
        let mut x = Vec::new();
        for first in (0..g).step_by(piece) {
            let last = (first + piece).min(g);
            let pg = last - first;
            let members: Vec<usize> = idx
                .slice(s![first..last, ..])
                .iter()
                .map(|&i| scan_row(i))
                .collect();
            x.resize(members.len() * n * n, 0.0);
            patterns.read_patterns(&members, &mut x)?;
            // X = f·d in f32 (the grouped data), then s·X for the PINN (ModelInputs).
            for v in x.iter_mut() {
                let xf = (norm_factor * f64::from(*v)) as f32;
                *v = if supervised {
                    xf
                } else {
                    (s * f64::from(xf)) as f32
                };
            }
            let t0 = Instant::now();
            match &self.model {
                ArchivedModel::Pinn(loaded) => {
                    let mut positions = Vec::with_capacity(pg * c * 2);
                    for gi in first..last {
                        for ci in 0..c {
                            for k in 0..2 {
                                positions.push(coords_relative[[gi, 0, k, ci]] as f32);
                            }
                        }
                    }
                    let inputs = ModelInputs {
                        g: pg,
                        c,
                        n,
                        x_scaled: std::mem::take(&mut x),
                        positions,
                    };
                    let patches = predict_object_patches(
                        &loaded.diffraction_to_obj,
                        &inputs,
                        batch,
                        streams,
                        &self.device,
                    )?;
                    x = inputs.x_scaled;
                    predict_seconds += t0.elapsed().as_secs_f64();
                    match &windows {
                        Some(w) => {
                            let (at, cut) = w.cut(first, patches.view());
                            stitcher.add(at, cut.view())?;
                        }
                        None => stitcher.add(first, patches.view())?,
                    }
                }
                ArchivedModel::Supervised(loaded) => {
                    let patches = crate::train::supervised::predict_samples(
                        &loaded.diffraction_to_obj,
                        &x,
                        n,
                        batch,
                        &self.device,
                    )?;
                    predict_seconds += t0.elapsed().as_secs_f64();
                    stitcher.add(first * c, patches.view())?;
                }
            }
            bar.inc((pg * c) as u64);
        }
        bar.finish_and_clear();
        let patterns_per_second = n_patterns as f64 / predict_seconds.max(1e-9);
        tracing::info!(
            groups = g,
            patterns = n_patterns,
            seconds = predict_seconds,
            patterns_per_second,
            "prediction done"
        );
        let sums = stitcher.finish();
        let stitched = sums.average();
        let covered = sums.covered();
        drop(sums);
        let scan_coverage = scan_box_coverage(
            covered.view(),
            stitched.origin,
            header.xcoords.view(),
            header.ycoords.view(),
        );
        let reconstruction = Reconstruction {
            object: stitched.object,
            origin: stitched.origin,
            stitch_crop: Some(cfg.stitch_crop),
        };
        let seconds = t_start.elapsed().as_secs_f64();
        // Metrics are a by-product: if they cannot be computed (e.g. the objectGuess does not
        // cover the scan), the reconstruction is still written and the reason is kept and logged.
        let (evaluation, evaluation_error) = if header.object_guess.is_some() {
            match evaluate_with_images(&reconstruction, header, &cfg.evaluation()) {
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
            archive: self.archive.clone(),
            params: params.clone(),
            n_groups: g,
            n_patterns,
            norm_factor,
            predict_seconds,
            patterns_per_second,
            covered,
            unstitched_windows,
            scan_coverage,
            seconds,
            evaluation,
            evaluation_error,
            files,
        })
    }
}

/// The member windows of a gridsize ≥ 2 reconstruction ([`StitchAt::Members`]): for member `c`
/// of group `g`, its integer displacement `d = round(x_c − centre_g)` (`[x, y]` pixels) from the
/// group centre; the window is the patch of the group's object (`N×N`, centred on the group
/// centre) shifted by `−d` so that the member sits at the patch centre, stitched at
/// `centre_g + d`. The shift is whole pixels (no interpolation); the stitcher places the window
/// at the fractional centre as it does every patch. Windows with `|d| > (N − M)/2` on either axis
/// would reach past the group's object and are left out (`dropped`); a group that loses one
/// stitches its central window (`d = 0`, the reference's window) as well, so that every group
/// reaches the canvas and the coverage never falls below centre stitching's.
struct MemberWindows {
    /// Stitching centres of the kept windows, grouped by group in group order.
    centres: Vec<[f64; 2]>,
    /// Per kept window: its group and displacement `[dx, dy]`.
    kept: Vec<(usize, [i64; 2])>,
    dropped: usize,
}

impl MemberWindows {
    fn new(
        coords_nn: &ndarray::Array4<f64>,
        coords_offsets: &ndarray::Array4<f64>,
        n: usize,
        m: usize,
    ) -> Self {
        let (g, _, _, c) = coords_nn.dim();
        let reach = ((n - m) / 2) as i64;
        let mut centres = Vec::with_capacity(g * c);
        let mut kept = Vec::with_capacity(g * c);
        let mut dropped = 0;
        for gi in 0..g {
            let centre = [coords_offsets[[gi, 0, 0, 0]], coords_offsets[[gi, 0, 1, 0]]];
            let (mut lost, mut has_centre) = (false, false);
            for ci in 0..c {
                let d = [0, 1].map(|k| (coords_nn[[gi, 0, k, ci]] - centre[k]).round() as i64);
                if d[0].abs() > reach || d[1].abs() > reach {
                    dropped += 1;
                    lost = true;
                    continue;
                }
                has_centre |= d == [0, 0];
                centres.push([centre[0] + d[0] as f64, centre[1] + d[1] as f64]);
                kept.push((gi, d));
            }
            if lost && !has_centre {
                centres.push(centre);
                kept.push((gi, [0, 0]));
            }
        }
        Self {
            centres,
            kept,
            dropped,
        }
    }

    /// The windows of groups `first..first + B` cut from their objects `(B, N, N)`: the index of
    /// the first of them among all windows, and the windows `(W, N, N)` (pixels shifted in from
    /// outside the object are 0; the stitched central M×M never contains them).
    fn cut(
        &self,
        first: usize,
        objects: ndarray::ArrayView3<Complex32>,
    ) -> (usize, Array3<Complex32>) {
        let (b, n, _) = objects.dim();
        let lo = self.kept.partition_point(|&(gi, _)| gi < first);
        let hi = self.kept.partition_point(|&(gi, _)| gi < first + b);
        let mut out = Array3::<Complex32>::zeros((hi - lo, n, n));
        for (w, &(gi, [dx, dy])) in self.kept[lo..hi].iter().enumerate() {
            let obj = objects.index_axis(ndarray::Axis(0), gi - first);
            for i in 0..n {
                let si = i as i64 + dy;
                if !(0..n as i64).contains(&si) {
                    continue;
                }
                for j in 0..n {
                    let sj = j as i64 + dx;
                    if (0..n as i64).contains(&sj) {
                        out[[w, i, j]] = obj[[si as usize, sj as usize]];
                    }
                }
            }
        }
        (lo, out)
    }
}

/// Groups per piece of a reconstruction: as many as `bytes` of input hold, a multiple of `step`
/// (the groups predicted at once), at least `step`.
fn piece_groups(bytes: usize, c: usize, n: usize, step: usize) -> usize {
    let per_group = c * n * n * std::mem::size_of::<f32>();
    let fit = (bytes / per_group.max(1)).max(1);
    let step = step.max(1);
    (fit / step).max(1) * step
}

fn progress_bar(patterns: usize, hidden: bool) -> ProgressBar {
    if hidden {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(patterns as u64);
    if let Ok(style) = ProgressStyle::with_template(
        "reconstructing [{bar:30}] {pos}/{len} patterns ({per_sec}, {eta} left)",
    ) {
        pb.set_style(style.progress_chars("=> "));
    }
    pb
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

    /// Two groups of two members (N = 8, M = 4, reach 2): windows are whole-pixel shifts of their
    /// group's object by the rounded member displacement, stitched at centre + displacement; a
    /// member 3 px from its centre is dropped and its group stitches its central window as well;
    /// `cut` of the second group alone starts at its first window.
    #[test]
    fn member_windows_shift_the_group_object_to_each_member() {
        // coords (G=2, 1, 2, C=2): group 0 centre (10, 20), members at (11.4, 19.2) and
        // (8.6, 20.8); group 1 centre (30, 30), members at (33, 30) (dropped) and (29, 31).
        let nn = ndarray::Array4::from_shape_vec(
            (2, 1, 2, 2),
            vec![11.4, 8.6, 19.2, 20.8, 33.0, 29.0, 30.0, 31.0],
        )
        .unwrap();
        let off =
            ndarray::Array4::from_shape_vec((2, 1, 2, 1), vec![10.0, 20.0, 30.0, 30.0]).unwrap();
        let w = MemberWindows::new(&nn, &off, 8, 4);
        assert_eq!(w.dropped, 1);
        assert_eq!(
            w.kept,
            vec![(0, [1, -1]), (0, [-1, 1]), (1, [-1, 1]), (1, [0, 0])]
        );
        assert_eq!(
            w.centres,
            vec![[11.0, 19.0], [9.0, 21.0], [29.0, 31.0], [30.0, 30.0]]
        );
        let objects = Array3::from_shape_fn((2, 8, 8), |(g, i, j)| {
            Complex32::new((100 * g + 10 * i + j) as f32, 0.0)
        });
        let (at, cut) = w.cut(0, objects.slice(s![0..1, .., ..]));
        assert_eq!((at, cut.dim()), (0, (2, 8, 8)));
        // Window 0: member at (+1, −1) from the centre → window[i, j] = object[i − 1, j + 1].
        assert_eq!(cut[[0, 4, 4]].re, (10 * 3 + 5) as f32);
        assert_eq!(cut[[0, 0, 3]].re, 0.0, "row −1 is outside the object");
        // Window 1: member at (−1, +1) → window[i, j] = object[i + 1, j − 1].
        assert_eq!(cut[[1, 4, 4]].re, (10 * 5 + 3) as f32);
        assert_eq!(cut[[1, 2, 0]].re, 0.0, "column −1 is outside the object");
        let (at, cut) = w.cut(1, objects.slice(s![1..2, .., ..]));
        assert_eq!(
            (at, cut.dim().0),
            (2, 2),
            "group 1: its kept member's window, then its central window"
        );
        assert_eq!(cut[[0, 4, 4]].re, (100 + 10 * 5 + 3) as f32);
        assert_eq!(cut[[1, 4, 4]].re, (100 + 10 * 4 + 4) as f32, "unshifted");
    }

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
