//! `ptycho simulate`: a synthetic dataset on the 'lines' object (spec §8), written as an NPZ of
//! the reference key set.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use ptycho_workflows::simulate_lines;

use crate::args::{CommonArgs, SimulationArgs};

/// Simulate a ptychography scan of a synthetic object with the default probe and write the
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
    let raw = simulate_lines(&cfg)?;
    // The error names the file and the key; no context that would repeat the path.
    raw.write_npz(&args.output)?;
    let obj = raw.object_guess.as_ref().map_or((0, 0), |o| o.dim());
    println!(
        "wrote {}: {} patterns of {}×{} (amplitudes{}), object {}×{}",
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
