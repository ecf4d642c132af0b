//! End-to-end tests of the ptycho workspace live in `tests/`; they run the real `ptycho` binary.
//!
//! This library only offers helpers shared by those tests.

use std::path::PathBuf;

/// Path of the goldens directory: `$PTYCHO_GOLDENS`, else `../shared/goldens` next to the workspace.
pub fn goldens_dir() -> PathBuf {
    std::env::var_os("PTYCHO_GOLDENS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/goldens"))
}
