//! Evaluation of a stitched reconstruction against a ground-truth object (spec §10): the
//! reference alignment [`align_for_evaluation`] (ground truth cropped to the scanned region ± M/2,
//! both centre-cropped to the common shape) followed by [`eval_reconstruction`].
//!
//! The ground truth is the `objectGuess` of a data NPZ and the scan coordinates are that file's
//! `xcoords`/`ycoords` (`[x, y]` = `[column, row]`, object pixels).

use std::fmt;
use std::path::Path;

use ptycho_config::{EvaluationConfig, Valid};
use serde::Serialize;

use crate::data::RawData;
use crate::error::{Result, WorkflowError};
use crate::metrics::{EvalMetrics, EvalOptions, align_for_evaluation, eval_reconstruction};
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
    /// The metrics (amplitude and phase).
    pub metrics: EvalMetrics,
}

/// Align `recon` to the `objectGuess` of `truth` and compute the metrics (the reference's metric
/// options, [`EvalOptions::default`]). The crop M is the config's, else the reconstruction's, else
/// [`ptycho_config::DEFAULT_STITCH_CROP`].
pub fn evaluate(
    recon: &Reconstruction,
    truth: &RawData,
    cfg: &Valid<EvaluationConfig>,
) -> Result<Evaluation> {
    let Some(gt) = &truth.object_guess else {
        return Err(WorkflowError::MissingKey {
            path: "<ground truth>".into(),
            key: "objectGuess".into(),
        });
    };
    let m = cfg.stitch_crop_for(recon.stitch_crop);
    let coords: Vec<[f64; 2]> = truth
        .xcoords
        .iter()
        .zip(truth.ycoords.iter())
        .map(|(&x, &y)| [x, y])
        .collect();
    let (r, g) = align_for_evaluation(recon.object.view(), gt.view(), &coords, m)?;
    let metrics = eval_reconstruction(r.view(), g.view(), &EvalOptions::default())?;
    Ok(Evaluation {
        stitch_crop: m,
        reconstruction_shape: [recon.object.nrows(), recon.object.ncols()],
        ground_truth_shape: [gt.nrows(), gt.ncols()],
        aligned_shape: [r.nrows(), r.ncols()],
        metrics,
    })
}

/// [`evaluate`] on files: a reconstruction NPZ (from `ptycho infer`) and a data NPZ whose
/// `objectGuess` is the ground truth. Errors name the file and key.
pub fn evaluate_files(
    reconstruction: &Path,
    ground_truth: &Path,
    cfg: &Valid<EvaluationConfig>,
) -> Result<Evaluation> {
    let recon = Reconstruction::from_npz(reconstruction)?;
    let (truth, _) = RawData::load(
        ground_truth,
        &ptycho_config::DataOptions::units(cfg.diffraction_units),
    )?;
    if truth.object_guess.is_none() {
        return Err(WorkflowError::MissingKey {
            path: ground_truth.to_path_buf(),
            key: "objectGuess".into(),
        });
    }
    evaluate(&recon, &truth, cfg)
}

fn opt(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.4}"))
}

impl fmt::Display for Evaluation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (a, p) = (&self.metrics.amplitude, &self.metrics.phase);
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
        writeln!(f, "{:<22}{:>14}{:>14}", "metric", "amplitude", "phase")?;
        let lines: [(&str, String, String); 8] = [
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
        ];
        for (name, av, pv) in lines {
            writeln!(f, "{name:<22}{av:>14}{pv:>14}")?;
        }
        Ok(())
    }
}
