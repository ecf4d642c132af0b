//! One file per subcommand; each exposes `Args` and `run(&Args) -> anyhow::Result<ExitCode>`.

pub mod bench;
pub mod params;
pub mod run;
