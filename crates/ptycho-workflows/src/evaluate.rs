//! Evaluation of a stitched reconstruction against a ground-truth object (spec §10): the
//! reference alignment [`align_for_evaluation`] (ground truth cropped to the scanned region ± M/2,
//! both centre-cropped to the common shape) followed by [`eval_reconstruction`]; with
//! [`EvaluationConfig::register`] also after sub-pixel registration ([`register_and_align`],
//! spec §10.1 step 2), reported beside the unregistered metrics.
//!
//! The ground truth is the `objectGuess` of a data NPZ and the scan coordinates are that file's
//! `xcoords`/`ycoords` (`[x, y]` = `[column, row]`, object pixels).

use std::fmt;
use std::path::Path;

use ndarray::{Array1, Array2};
use num_complex::Complex32;
use ptycho_config::{EvaluationConfig, Valid};
use serde::Serialize;

use crate::data::{RawData, ScanFile, ScanHeader};
use crate::error::{Result, WorkflowError};
use crate::imaging::{comparison_panels, write_panel_grid};
use crate::metrics::{
    EvalImages, EvalMetrics, EvalOptions, REGISTRATION_BORDER, REGISTRATION_UPSAMPLE, Registration,
    align_for_evaluation, eval_reconstruction, evaluated_images, register_and_align,
};
use crate::reconstruction::Reconstruction;

/// Result of [`evaluate`]; serialise it for `metrics.json` / `ptycho evaluate --json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evaluation {
    /// The M used for the alignment crop, pixels.
    pub stitch_crop: usize,
    /// `[rows, cols]` of the reconstruction as given.
    pub reconstruction_shape: [usize; 2],
    /// `[rows, cols]` of the full ground truth.
    pub ground_truth_shape: [usize; 2],
    /// `[rows, cols]` of both images after alignment (before the metric border trim).
    pub aligned_shape: [usize; 2],
    /// The metrics (amplitude and phase) without registration.
    pub metrics: EvalMetrics,
    /// Whether registered metrics were computed (`registration` is then present).
    pub registered: bool,
    /// The registration and the metrics after it; `null` unless `registered`.
    pub registration: Option<RegisteredMetrics>,
}

/// Metrics after sub-pixel registration.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RegisteredMetrics {
    /// The shift `[x, y]` (pixels) applied to the reconstruction, the upsampling factor and the
    /// border crop.
    #[serde(flatten)]
    pub registration: Registration,
    /// The metrics on the registered images.
    pub metrics: EvalMetrics,
}

/// What a reconstruction is compared with: the scan's `objectGuess` and its scan positions
/// (`[x, y]` object pixels), which decide the region compared.
pub trait GroundTruth {
    /// The true object, if known.
    fn object_guess(&self) -> Option<&Array2<Complex32>>;
    /// Scan-centre positions `(x, y)`, object pixels.
    fn scan_positions(&self) -> (&Array1<f64>, &Array1<f64>);
}

impl GroundTruth for RawData {
    fn object_guess(&self) -> Option<&Array2<Complex32>> {
        self.object_guess.as_ref()
    }
    fn scan_positions(&self) -> (&Array1<f64>, &Array1<f64>) {
        (&self.xcoords, &self.ycoords)
    }
}

impl GroundTruth for ScanHeader {
    fn object_guess(&self) -> Option<&Array2<Complex32>> {
        self.object_guess.as_ref()
    }
    fn scan_positions(&self) -> (&Array1<f64>, &Array1<f64>) {
        (&self.xcoords, &self.ycoords)
    }
}

/// Align `recon` to the `objectGuess` of `truth` and compute the metrics (the reference's metric
/// options, [`EvalOptions::default`]); with `cfg.register` also after registration. The crop M is
/// the config's, else the reconstruction's, else [`ptycho_config::DEFAULT_STITCH_CROP`].
pub fn evaluate(
    recon: &Reconstruction,
    truth: &impl GroundTruth,
    cfg: &Valid<EvaluationConfig>,
) -> Result<Evaluation> {
    evaluate_with_images(recon, truth, cfg).map(|(ev, _)| ev)
}

/// [`evaluate`], also returning the images the reported metrics compare (the registered ones
/// when registration is on), for the comparison figure.
pub fn evaluate_with_images(
    recon: &Reconstruction,
    truth: &impl GroundTruth,
    cfg: &Valid<EvaluationConfig>,
) -> Result<(Evaluation, EvalImages)> {
    let Some(gt) = truth.object_guess() else {
        return Err(WorkflowError::MissingKey {
            path: "<ground truth>".into(),
            key: "objectGuess".into(),
        });
    };
    let m = cfg.stitch_crop_for(recon.stitch_crop);
    let (xs, ys) = truth.scan_positions();
    let coords: Vec<[f64; 2]> = xs.iter().zip(ys.iter()).map(|(&x, &y)| [x, y]).collect();
    let opts = EvalOptions::default();
    let (r, g) = align_for_evaluation(recon.object.view(), gt.view(), &coords, m)?;
    let metrics = eval_reconstruction(r.view(), g.view(), &opts)?;
    let (registration, images) = if cfg.register {
        let (rr, rg, reg) = register_and_align(
            r.view(),
            g.view(),
            REGISTRATION_UPSAMPLE,
            REGISTRATION_BORDER,
        )?;
        // The reference applies any shift found; a shift over a quarter of the image usually
        // means the two images do not correlate (e.g. an untrained model): say so.
        let [sx, sy] = reg.shift;
        if sx.abs() > r.ncols() as f64 / 4.0 || sy.abs() > r.nrows() as f64 / 4.0 {
            tracing::warn!(
                "registration shift [x, y] = [{sx:.2}, {sy:.2}] px is over a quarter of the {}×{} image: the reconstruction may not resemble the ground truth; the registered metrics compare a wrapped image",
                r.nrows(),
                r.ncols()
            );
        }
        let registered = eval_reconstruction(rr.view(), rg.view(), &opts)?;
        let images = evaluated_images(rr.view(), rg.view(), &opts)?;
        (
            Some(RegisteredMetrics {
                registration: reg,
                metrics: registered,
            }),
            images,
        )
    } else {
        (None, evaluated_images(r.view(), g.view(), &opts)?)
    };
    let ev = Evaluation {
        stitch_crop: m,
        reconstruction_shape: [recon.object.nrows(), recon.object.ncols()],
        ground_truth_shape: [gt.nrows(), gt.ncols()],
        aligned_shape: [r.nrows(), r.ncols()],
        metrics,
        registered: registration.is_some(),
        registration,
    };
    Ok((ev, images))
}

/// [`evaluate`] on files: a reconstruction NPZ (from `ptycho infer`) and a data NPZ whose
/// `objectGuess` is the ground truth. Errors name the file and key.
pub fn evaluate_files(
    reconstruction: &Path,
    ground_truth: &Path,
    cfg: &Valid<EvaluationConfig>,
) -> Result<(Evaluation, EvalImages)> {
    let recon = Reconstruction::from_npz(reconstruction)?;
    // Only the header is needed: the patterns stay on disk.
    let (truth, _) = ScanFile::open(
        ground_truth,
        &ptycho_config::DataOptions::units(cfg.diffraction_units),
    )?;
    if truth.header().object_guess.is_none() {
        return Err(WorkflowError::MissingKey {
            path: ground_truth.to_path_buf(),
            key: "objectGuess".into(),
        });
    }
    evaluate_with_images(&recon, truth.header(), cfg)
}

/// Write the comparison figure of the images the metrics compared (ground truth |
/// reconstruction | reconstruction − truth; amplitude row, phase row), atomically.
pub fn write_comparison_figure(path: &Path, images: &EvalImages, registered: bool) -> Result<()> {
    let f = |a: &ndarray::Array2<f64>| a.mapv(|v| v as f32);
    let (at, ap, pt, pp) = (
        f(&images.amp_t),
        f(&images.amp_p),
        f(&images.phi_t),
        f(&images.phi_p),
    );
    let (ad, pd) = (&ap - &at, &pp - &pt);
    let subtitle = if registered { " (registered)" } else { "" };
    let panels = comparison_panels(
        at.view(),
        ap.view(),
        ad.view(),
        pt.view(),
        pp.view(),
        pd.view(),
        subtitle,
    );
    write_panel_grid(path, &panels, 3).map_err(|source| WorkflowError::Io {
        path: path.to_path_buf(),
        action: "writing",
        source,
    })
}

fn opt(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.4}"))
}

fn rows(m: &EvalMetrics) -> [(&'static str, String, String); 8] {
    let (a, p) = (&m.amplitude, &m.phase);
    [
        ("MAE", format!("{:.6}", a.mae), format!("{:.6}", p.mae)),
        ("MSE", format!("{:.6}", a.mse), format!("{:.6}", p.mse)),
        (
            "PSNR (peak 255) dB",
            format!("{:.3}", a.psnr_peak255),
            format!("{:.3}", p.psnr_peak255),
        ),
        (
            "PSNR (range) dB",
            opt(a.psnr_data_range),
            opt(p.psnr_data_range),
        ),
        ("SSIM", format!("{:.4}", a.ssim), format!("{:.4}", p.ssim)),
        (
            "MS-SSIM",
            format!("{:.4}", a.ms_ssim),
            format!("{:.4}", p.ms_ssim),
        ),
        ("FRC50 (rings)", opt(a.frc50), opt(p.frc50)),
        ("FRC 1/7 (rings)", opt(a.frc1over7), opt(p.frc1over7)),
    ]
}

impl fmt::Display for Evaluation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "aligned {}×{} (reconstruction {}×{}, ground truth {}×{}, M = {}), phase alignment {:?}, amplitude scale {:.6}",
            self.aligned_shape[0],
            self.aligned_shape[1],
            self.reconstruction_shape[0],
            self.reconstruction_shape[1],
            self.ground_truth_shape[0],
            self.ground_truth_shape[1],
            self.stitch_crop,
            self.metrics.phase_align,
            self.metrics.amplitude_scale
        )?;
        match &self.registration {
            None => {
                writeln!(f, "{:<22}{:>14}{:>14}", "metric", "amplitude", "phase")?;
                for (name, av, pv) in rows(&self.metrics) {
                    writeln!(f, "{name:<22}{av:>14}{pv:>14}")?;
                }
            }
            Some(reg) => {
                writeln!(
                    f,
                    "registered: shift [x, y] = [{:.2}, {:.2}] px applied to the reconstruction (upsample {}, border crop {})",
                    reg.registration.shift[0],
                    reg.registration.shift[1],
                    reg.registration.upsample_factor,
                    reg.registration.border_crop
                )?;
                writeln!(
                    f,
                    "{:<22}{:>14}{:>14}{:>16}{:>14}",
                    "metric", "amplitude", "phase", "amplitude reg.", "phase reg."
                )?;
                for ((name, av, pv), (_, rav, rpv)) in
                    rows(&self.metrics).into_iter().zip(rows(&reg.metrics))
                {
                    writeln!(f, "{name:<22}{av:>14}{pv:>14}{rav:>16}{rpv:>14}")?;
                }
            }
        }
        Ok(())
    }
}
