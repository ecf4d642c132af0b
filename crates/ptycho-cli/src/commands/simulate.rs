//! `ptycho simulate`: a synthetic dataset on the 'lines' object (spec §8), written as an NPZ of
//! the reference key set.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, ValueEnum};
use ptycho_workflows::{SimObject, SimulationOptions, simulate_lines};

/// Synthetic objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ObjectKind {
    /// Random smoothed lines (real amplitude, zero phase).
    Lines,
}

/// Simulate a ptychography scan of a synthetic object with the default probe and write the
/// reference NPZ key set (xcoords, ycoords, xcoords_start, ycoords_start, diff3d as amplitudes,
/// probeGuess, objectGuess, scan_index).
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Output NPZ file (written atomically; its directory must exist).
    #[arg(long, short = 'o', value_name = "FILE.npz")]
    pub output: PathBuf,
    /// Number of scan positions, i.e. diffraction patterns (≥ 1).
    #[arg(
        long,
        visible_alias = "n_images",
        value_name = "M",
        default_value_t = 512
    )]
    pub n_images: usize,
    /// Synthetic object.
    #[arg(long, value_enum, default_value_t = ObjectKind::Lines)]
    pub object: ObjectKind,
    /// Object side in pixels (≥ N). Default: int(3.5·N) = 224 for N = 64.
    #[arg(long, visible_alias = "object_size", value_name = "PIXELS")]
    pub object_size: Option<usize>,
    /// Diffraction pattern (and probe) size N in pixels, even.
    #[arg(
        long = "n",
        visible_alias = "N",
        value_name = "PIXELS",
        default_value_t = 64
    )]
    pub n: usize,
    /// Mean photons per diffraction pattern (counts, > 0). Recorded in the file's `_metadata`,
    /// where `ptycho train` (and the reference's train.py) take it from.
    #[arg(long, value_name = "COUNTS", default_value_t = 1e9)]
    pub nphotons: f64,
    /// Seed of every random draw (object, scan positions, noise).
    #[arg(long, value_name = "INT", default_value_t = 42)]
    pub seed: u64,
    /// Store noise-free amplitudes instead of drawing Poisson counts.
    #[arg(long)]
    pub no_noise: bool,
}

pub fn run(args: &SimulateArgs) -> anyhow::Result<ExitCode> {
    let opts = SimulationOptions {
        n_images: args.n_images,
        object: match args.object {
            ObjectKind::Lines => SimObject::Lines,
        },
        object_size: args.object_size,
        n: args.n,
        nphotons: args.nphotons,
        seed: args.seed,
        noise: !args.no_noise,
        ..SimulationOptions::default()
    };
    let raw = simulate_lines(&opts)?;
    raw.write_npz(&args.output)
        .with_context(|| format!("writing {}", args.output.display()))?;
    let obj = raw.object_guess.as_ref().map_or((0, 0), |o| o.dim());
    println!(
        "wrote {}: {} patterns of {}×{} (amplitudes{}), object {}×{}",
        args.output.display(),
        raw.n_points(),
        raw.n(),
        raw.n(),
        if args.no_noise {
            ", noise-free"
        } else {
            ", Poisson noise"
        },
        obj.0,
        obj.1
    );
    Ok(ExitCode::SUCCESS)
}
