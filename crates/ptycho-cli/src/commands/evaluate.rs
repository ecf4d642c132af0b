//! `ptycho evaluate`: metrics of a reconstruction against a ground-truth object.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use ptycho_workflows::evaluate::{evaluate_files, write_comparison_figure};

use crate::args::{CommonArgs, EvaluationArgs};

/// Compare a reconstruction (reconstruction.npz from `ptycho infer`) with the objectGuess of a
/// data NPZ: the ground truth is cropped to the scanned region ± M/2, both images are
/// centre-cropped to a common shape, 2 border pixels are trimmed, then amplitude and phase
/// MAE, MSE, PSNR, SSIM, MS-SSIM and FRC are computed (phases plane-aligned, radians; the
/// predicted amplitude is rescaled to the ground-truth mean). `--register` adds the metrics after
/// sub-pixel registration (and reports the shift found).
#[derive(Debug, Args)]
pub struct EvaluateArgs {
    /// Reconstruction NPZ written by `ptycho infer` (keys object, origin).
    #[arg(long, value_name = "FILE.npz")]
    pub reconstruction: PathBuf,
    /// Data NPZ whose objectGuess is the ground truth (its xcoords/ycoords give the scanned region).
    #[arg(long, visible_alias = "ground_truth", value_name = "FILE.npz")]
    pub ground_truth: PathBuf,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Also write the comparison figure (ground truth | reconstruction | difference; amplitude
    /// and phase, as the metrics compare them; registered with `--register`) to this PNG.
    #[arg(long, value_name = "FILE.png")]
    pub figure: Option<PathBuf>,

    #[command(flatten)]
    pub evaluation: EvaluationArgs,

    #[command(flatten)]
    pub common: CommonArgs,
}

pub fn run(args: &EvaluateArgs) -> anyhow::Result<ExitCode> {
    let cfg = args.evaluation.resolve()?;
    let (ev, images) = evaluate_files(&args.reconstruction, &args.ground_truth, &cfg)?;
    if let Some(fig) = &args.figure {
        write_comparison_figure(fig, &images, ev.registered)?;
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &ev)?;
        writeln!(out)?;
    } else {
        write!(out, "{ev}")?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
