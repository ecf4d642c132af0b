//! End-to-end tests of the ptycho workspace live in `tests/`; they run the real `ptycho` binary.
//!
//! This library only offers helpers shared by those tests.

use std::path::PathBuf;
use std::process::Command;

/// Path of the goldens directory: `$PTYCHO_GOLDENS`, else `../shared/goldens` next to the workspace.
pub fn goldens_dir() -> PathBuf {
    std::env::var_os("PTYCHO_GOLDENS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/goldens"))
}

/// The goldens directory if it exists; otherwise prints why the caller skips and returns `None`.
pub fn goldens_or_skip(test: &str) -> Option<PathBuf> {
    let dir = goldens_dir();
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "skipping {test}: goldens directory {} not found (set PTYCHO_GOLDENS)",
            dir.display()
        );
        None
    }
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
