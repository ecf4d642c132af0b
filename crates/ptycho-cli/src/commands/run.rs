//! `ptycho run`: the end-to-end job (simulate → train → infer → evaluate). Placeholder for now.

use std::process::ExitCode;

use clap::Args;

/// Run the whole pipeline (not yet implemented).
#[derive(Debug, Args)]
pub struct RunArgs {}

pub fn run(_args: &RunArgs) -> anyhow::Result<ExitCode> {
    eprintln!("ptycho run: not yet implemented");
    Ok(ExitCode::from(1))
}
