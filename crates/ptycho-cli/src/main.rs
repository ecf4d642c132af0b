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
    /// Train PtychoPINN on an NPZ dataset (checkpoint every epoch, --resume DIR continues).
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

/// The whole context chain on one line, newlines folded. A cause whose text an outer message
/// already quotes (our errors put their source in their own message) is not repeated.
fn one_line(err: &anyhow::Error) -> String {
    let mut message = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if message.contains(&text) {
            continue;
        }
        if !message.is_empty() {
            message.push_str(": ");
        }
        message.push_str(&text);
    }
    message.split_whitespace().collect::<Vec<_>>().join(" ")
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

    /// An error that quotes its source in its own message, as ours do.
    #[derive(Debug)]
    struct Quoting(std::io::Error);
    impl std::fmt::Display for Quoting {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "a.npz: I/O error: {}", self.0)
        }
    }
    impl std::error::Error for Quoting {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn one_line_folds_newlines_and_does_not_repeat_a_quoted_source() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let err = anyhow::Error::new(Quoting(io)).context("training on a.npz");
        assert_eq!(
            one_line(&err),
            "training on a.npz: a.npz: I/O error: no such file"
        );
        let plain = anyhow::anyhow!("first line\nsecond line").context("outer");
        assert_eq!(one_line(&plain), "outer: first line second line");
    }
}
