//! One file per subcommand; each exposes `Args` and `run(&Args) -> anyhow::Result<ExitCode>`.

pub mod bench;
pub mod evaluate;
pub mod infer;
pub mod inspect;
pub mod params;
pub mod run;
pub mod simulate;
pub mod train;
