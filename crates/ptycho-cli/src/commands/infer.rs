//! `ptycho infer`: reconstruct a test dataset with a saved model.

use std::process::ExitCode;

use anyhow::bail;
use clap::Args;
use ptycho_model::DeviceKind;
use ptycho_workflows::RawData;
use ptycho_workflows::infer::{InferRuntime, infer};

use crate::args::InferenceArgs;

/// Reconstruct the object of a test NPZ with a trained model: group the scan with the model's
/// N and gridsize (K = 4 neighbours, seed 45 unless set), normalise the data, predict object
/// patches, stitch their central M×M windows at the group centres and write reconstruction.npz
/// (object complex64, amplitude/phase float32, origin float64 [x, y]),
/// reconstructed_amplitude.png, reconstructed_phase.png and, when the test file has an
/// objectGuess, metrics.json. Settings: defaults < --config FILE < flags.
#[derive(Debug, Args)]
pub struct InferArgs {
    /// Device: cpu|flex, tch-cpu, cuda, cuda:N (tch needs --features tch).
    #[arg(long, value_name = "DEVICE", default_value = "cpu")]
    pub device: String,

    #[command(flatten)]
    pub inference: InferenceArgs,
}

pub fn run(args: &InferArgs) -> anyhow::Result<ExitCode> {
    let device: DeviceKind = args.device.parse()?;
    let cfg = args.inference.resolve()?;
    let Some(model) = cfg.model_path.clone() else {
        bail!("no model: pass --model DIR|ZIP (or model_path in the config file)");
    };
    let Some(test_path) = cfg.test_data_file.clone() else {
        bail!("no test data: pass --test-data FILE.npz (or test_data_file in the config file)");
    };
    let test = RawData::from_npz(&test_path)?;
    let run = InferRuntime {
        device,
        write_outputs: true,
    };
    let res = infer(&model, &test, &cfg, &run)?;
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
