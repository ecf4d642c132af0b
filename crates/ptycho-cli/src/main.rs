//! The `ptycho` command-line tool: a thin dispatcher over the subcommands in `commands/`.

mod args;
mod commands;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// PtychoPINN in Rust: physics-informed neural network reconstruction for ptychography.
#[derive(Debug, Parser)]
#[command(name = "ptycho", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The main job on built-in simulated data: simulate → train → reconstruct → evaluate.
    Run(commands::run::RunArgs),
    /// Simulate a synthetic dataset (lines object) and write it as an NPZ.
    Simulate(commands::simulate::SimulateArgs),
    /// Train PtychoPINN (or, with --model-type supervised, the supervised baseline) on an NPZ
    /// dataset (checkpoint every epoch, --resume DIR continues).
    Train(Box<commands::train::TrainArgs>),
    /// Reconstruct a test dataset with a saved model; writes reconstruction.npz and PNGs.
    Infer(commands::infer::InferArgs),
    /// Metrics of a reconstruction against the objectGuess of a data NPZ.
    Evaluate(commands::evaluate::EvaluateArgs),
    /// Summarise a model archive (manifest, params, parameter counts).
    Inspect(commands::inspect::InspectArgs),
    /// Print the resolved legacy params view (defaults < --config FILE < flags).
    Params(Box<commands::params::ParamsArgs>),
    /// Measure training, inference, stitching and data-loading throughput and peak memory.
    Bench(commands::bench::BenchArgs),
}

/// Exit status for errors reported by a command (clap uses the same for usage errors).
const EXIT_ERROR: u8 = 2;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err)
            if err.use_stderr()
                && err.kind()
                    != clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand =>
        {
            eprintln!("{}", usage_error_line(&err));
            return ExitCode::from(EXIT_ERROR);
        }
        // --help / --version (exit 0), or the help for a bare `ptycho` (exit 2): clap prints them.
        Err(err) => err.exit(),
    };
    init_logging();
    let result = match &cli.command {
        Command::Params(args) => commands::params::run(args),
        Command::Bench(args) => commands::bench::run(args),
        Command::Simulate(args) => commands::simulate::run(args),
        Command::Infer(args) => commands::infer::run(args),
        Command::Evaluate(args) => commands::evaluate::run(args),
        Command::Inspect(args) => commands::inspect::run(args),
        Command::Run(args) => commands::run::run(args),
        Command::Train(args) => commands::train::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", one_line(&err));
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// The whole context chain on one line: each cause's text joined by ": ", whitespace folded.
/// Our errors do not repeat their source's text, so every cause appears exactly once.
fn one_line(err: &anyhow::Error) -> String {
    err.chain()
        .map(|cause| cause.to_string())
        .collect::<Vec<_>>()
        .join(": ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// A clap usage error on one line: its `error:` line plus any `tip:` lines, without the usage block.
fn usage_error_line(err: &clap::Error) -> String {
    let text = err.render().to_string();
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let mut out = lines
        .next()
        .unwrap_or("error: invalid arguments")
        .to_string();
    for tip in lines.filter(|l| l.starts_with("tip:")) {
        out.push_str(" (");
        out.push_str(tip);
        out.push(')');
    }
    out
}

/// Log to stderr; level from `RUST_LOG` (default: warnings only).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    // An already-installed subscriber is not an error worth reporting.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// `ptycho params | head` closes stdout early; that is not a failure.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.downcast_ref::<std::io::Error>()
        .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
        || err
            .downcast_ref::<serde_json::Error>()
            .and_then(|e| e.io_error_kind())
            .is_some_and(|k| k == std::io::ErrorKind::BrokenPipe)
}

#[cfg(test)]
mod tests {
    use super::one_line;

    /// An error that names its file and keeps its I/O cause as the source, as ours do.
    #[derive(Debug)]
    struct NamesFile(std::io::Error);
    impl std::fmt::Display for NamesFile {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "a.npz: I/O error (opening)")
        }
    }
    impl std::error::Error for NamesFile {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn one_line_joins_the_chain_and_folds_newlines() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let err = anyhow::Error::new(NamesFile(io)).context("training");
        assert_eq!(
            one_line(&err),
            "training: a.npz: I/O error (opening): no such file"
        );
        let plain = anyhow::anyhow!("first line\nsecond line").context("outer");
        assert_eq!(one_line(&plain), "outer: first line second line");
        // No de-duplication: a cause that repeats an outer text is printed again.
        let twice = anyhow::anyhow!("same").context("same");
        assert_eq!(one_line(&twice), "same: same");
    }
}
