//! `ptycho simulate`: a synthetic dataset (spec §8) on a synthetic object (lines, grf, points,
//! diagonals) or on the object and probe of a file, written as an NPZ of the reference key set.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use ptycho_workflows::simulate;

use crate::args::{CommonArgs, SimulationArgs};

/// Simulate a ptychography scan of a synthetic object with the default probe (or of the
/// objectGuess and probeGuess of --input-file) and write the
/// reference NPZ key set (xcoords, ycoords, xcoords_start, ycoords_start, diff3d as amplitudes,
/// probeGuess, objectGuess, scan_index). Settings: defaults < --config FILE < flags.
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Output NPZ file (written atomically; its directory must exist).
    #[arg(long, short = 'o', value_name = "FILE.npz")]
    pub output: PathBuf,

    #[command(flatten)]
    pub simulation: SimulationArgs,

    #[command(flatten)]
    pub common: CommonArgs,
}

pub fn run(args: &SimulateArgs) -> anyhow::Result<ExitCode> {
    let cfg = args.simulation.resolve()?;
    let raw = simulate(&cfg)?;
    // The error names the file and the key; no context that would repeat the path.
    raw.write_npz(&args.output)?;
    let obj = raw.object_guess.as_ref().map_or((0, 0), |o| o.dim());
    let source = match &cfg.input_file {
        Some(f) => format!("objectGuess and probeGuess of {}", f.display()),
        None => format!("synthetic {} object", cfg.object),
    };
    println!(
        "wrote {}: {} patterns of {}×{} (amplitudes{}), object {}×{} ({source})",
        args.output.display(),
        raw.n_points(),
        raw.n(),
        raw.n(),
        if !cfg.noise {
            ", noise-free"
        } else {
            ", Poisson noise"
        },
        obj.0,
        obj.1
    );
    Ok(ExitCode::SUCCESS)
}
