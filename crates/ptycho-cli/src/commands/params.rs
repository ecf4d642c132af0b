//! `ptycho params`: print the resolved legacy params view (defaults < config file < flags).

use std::io::Write;
use std::process::ExitCode;

use clap::Args;
use ptycho_config::Params;

use crate::args::{CommonArgs, TrainingArgs};

/// Print the legacy params view that a training run with these options would use.
#[derive(Debug, Args)]
pub struct ParamsArgs {
    /// Print one JSON object (legacy key → value, sorted) instead of `key = value` lines.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub training: TrainingArgs,

    #[command(flatten)]
    pub common: CommonArgs,
}

pub fn run(args: &ParamsArgs) -> anyhow::Result<ExitCode> {
    let cfg = args.training.resolve()?;
    let view = Params::from_training(&cfg).to_legacy();
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &view)?;
        writeln!(out)?;
    } else {
        for (key, value) in &view {
            writeln!(out, "{key} = {value}")?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
