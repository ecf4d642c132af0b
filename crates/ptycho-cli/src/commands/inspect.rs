//! `ptycho inspect`: summarise a model archive without building any model.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use ptycho_persist::{inspect_archive, resolve_archive_path};

use crate::args::CommonArgs;

/// Show a model archive: which network it holds (pinn or supervised), manifest, params (without
/// the probe array), per-model parameter counts and the zip entries.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The archive `wts.h5.zip`, or a directory holding one.
    #[arg(value_name = "PATH")]
    pub path: PathBuf,
    /// Print one JSON object instead of the human-readable summary.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub common: CommonArgs,
}

pub fn run(args: &InspectArgs) -> anyhow::Result<ExitCode> {
    let path = resolve_archive_path(&args.path);
    let info = inspect_archive(&path)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &info)?;
        writeln!(out)?;
    } else {
        write!(out, "{info}")?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
