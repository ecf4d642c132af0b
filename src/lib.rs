//! End-to-end tests of the ptycho workspace live in `tests/`; they run the real `ptycho` binary.
//!
//! This library only offers helpers shared by those tests.

use std::path::PathBuf;
use std::process::Command;

/// Path of the reference golden file `name` in the repository's `testdata/goldens/`.
///
/// Panics, naming the path, when the file is missing: a test that needs the goldens fails rather
/// than passing without checking anything.
pub fn golden(name: &str) -> PathBuf {
    let path = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/goldens")).join(name);
    assert!(
        path.is_file(),
        "golden file {} is missing (the tests read testdata/goldens/ of the repository)",
        path.display()
    );
    path
}

/// Path of the `ptycho` binary of this build profile (`target/<profile>/ptycho`), built on demand.
///
/// Integration tests run from `target/<profile>/deps/`; the binary of the `ptycho-cli` package sits
/// one level up. `cargo test --workspace` builds it; when a test runs alone it is built here.
pub fn ptycho_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("current test executable");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test executable lives in target/<profile>/deps");
    let bin = profile_dir.join(format!("ptycho{}", std::env::consts::EXE_SUFFIX));
    if !bin.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "-p", "ptycho-cli", "--bin", "ptycho"]);
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("run cargo build for the ptycho binary");
        assert!(status.success(), "cargo build -p ptycho-cli failed");
    }
    bin
}

/// What one run of the `ptycho` binary printed, and its exit code (−1 when killed by a signal).
#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Run this build's `ptycho` binary with `args` (`RUST_LOG` unset, so stderr holds only what a
/// user would see) and capture its output.
pub fn ptycho(args: &[&str]) -> Out {
    let out = Command::new(ptycho_bin())
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run ptycho");
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Whether this build's `ptycho` binary has subcommand `name` (`ptycho <name> --help` succeeds).
///
/// Lets a test carry rows for commands that are written on other branches: such a row is skipped,
/// with a message naming the subcommand, until the command exists.
pub fn has_subcommand(name: &str) -> bool {
    Command::new(ptycho_bin())
        .args([name, "--help"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Every regular file under `dir` (recursively); empty when `dir` does not exist.
pub fn files_under(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in rd.flatten() {
            let p = entry.path();
            match entry.file_type() {
                Ok(t) if t.is_dir() => stack.push(p),
                Ok(_) => out.push(p),
                Err(_) => {}
            }
        }
    }
    out.sort();
    out
}

/// Check a failed run of the `ptycho` binary against the hostile-input contract: exit status ≠ 0
/// (and not killed by a signal), exactly one non-empty line on stderr, that line names `file` and
/// contains `expect`, and no panic message or backtrace hint. Returns a description of each
/// violation (empty when the run is fine).
pub fn check_one_line_failure(
    out: &std::process::Output,
    file: &std::path::Path,
    expect: &str,
) -> Vec<String> {
    let mut problems = Vec::new();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    match out.status.code() {
        Some(0) => problems.push("exit status 0".to_string()),
        None => problems.push(format!("killed by a signal ({:?})", out.status)),
        Some(_) => {}
    }
    if stderr.contains("panicked") || stderr.contains("RUST_BACKTRACE") {
        problems.push("stderr shows a panic".into());
    }
    if lines.len() != 1 {
        problems.push(format!("{} lines on stderr, expected 1", lines.len()));
    }
    let name = file.display().to_string();
    if !stderr.contains(&name) {
        problems.push(format!("stderr does not name the file {name}"));
    }
    if !stderr.contains(expect) {
        problems.push(format!("stderr lacks {expect:?}"));
    }
    if !problems.is_empty() {
        problems.push(format!("stderr was: {stderr:?}"));
    }
    problems
}
