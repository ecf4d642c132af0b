//! `ptycho infer`: reconstruct a test dataset with a saved model.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use ptycho_model::DeviceKind;
use ptycho_workflows::RawData;
use ptycho_workflows::infer::{InferOptions, infer};

/// Reconstruct the object of a test NPZ with a trained model: group the scan with the model's
/// N and gridsize (K = 4 neighbours, seed 45), normalise the data, predict object patches,
/// stitch their central M×M windows at the group centres and write reconstruction.npz
/// (object complex64, amplitude/phase float32, origin float64 [x, y]),
/// reconstructed_amplitude.png, reconstructed_phase.png and, when the test file has an
/// objectGuess, metrics.json.
#[derive(Debug, Args)]
pub struct InferArgs {
    /// Model directory holding wts.h5.zip, or the archive itself.
    #[arg(long, visible_alias = "model_path", value_name = "DIR|ZIP")]
    pub model: PathBuf,
    /// Test data NPZ (diff3d amplitudes, xcoords, ycoords, probeGuess[, objectGuess]).
    #[arg(long, visible_aliases = ["test_data", "test-data-file", "test_data_file"], value_name = "FILE.npz")]
    pub test_data: PathBuf,
    /// Output directory (created if missing).
    #[arg(
        long,
        visible_alias = "output_dir",
        value_name = "DIR",
        default_value = "inference_outputs"
    )]
    pub output_dir: PathBuf,
    /// Device: cpu|flex, tch-cpu, cuda, cuda:N (tch needs --features tch).
    #[arg(long, value_name = "DEVICE", default_value = "cpu")]
    pub device: String,
    /// Number of groups to reconstruct (≥ 1). Default: every scan point (gridsize 1) or
    /// points / gridsize² (gridsize > 1); the gridsize is the model's.
    #[arg(long, visible_aliases = ["n_groups", "n-images", "n_images"], value_name = "INT")]
    pub n_groups: Option<usize>,
    /// Central crop M of every predicted patch used for stitching, pixels (even, ≤ N).
    #[arg(
        long,
        visible_alias = "stitch_crop",
        value_name = "PIXELS",
        default_value_t = 20
    )]
    pub stitch_crop: usize,
    /// Groups per forward pass (≥ 1); more needs more memory. On flex two passes run at once;
    /// on tch-cpu a pass holds at most 16 groups (faster there).
    #[arg(
        long,
        visible_alias = "batch_size",
        value_name = "INT",
        default_value_t = 32
    )]
    pub batch_size: usize,
}

pub fn run(args: &InferArgs) -> anyhow::Result<ExitCode> {
    let device: DeviceKind = args.device.parse()?;
    let test = RawData::from_npz(&args.test_data)?;
    let opts = InferOptions {
        output_dir: Some(args.output_dir.clone()),
        device,
        n_groups: args.n_groups,
        stitch_crop: args.stitch_crop,
        batch_size: args.batch_size,
        ..InferOptions::default()
    };
    let res = infer(&args.model, &test, &opts)?;
    let (h, w) = res.reconstruction.object.dim();
    println!(
        "reconstructed {} groups ({} patterns, N = {}, gridsize = {}) in {:.2} s: {:.1} patterns/s on {}",
        res.n_groups,
        res.n_patterns,
        res.params.n(),
        res.params.gridsize(),
        res.predict_seconds,
        res.patterns_per_second,
        device
    );
    println!(
        "object {h}×{w}, origin [x, y] = [{:.3}, {:.3}]",
        res.reconstruction.origin[0], res.reconstruction.origin[1]
    );
    if let Some(ev) = &res.evaluation {
        let m = &ev.metrics;
        println!(
            "vs objectGuess: amplitude SSIM {:.4}, phase SSIM {:.4}, amplitude MAE {:.5}",
            m.amplitude.ssim, m.phase.ssim, m.amplitude.mae
        );
    }
    for f in &res.files {
        println!("wrote {}", f.display());
    }
    Ok(ExitCode::SUCCESS)
}
