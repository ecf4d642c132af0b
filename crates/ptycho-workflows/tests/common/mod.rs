//! Helpers shared by this crate's integration tests.

use std::path::{Path, PathBuf};

/// The goldens directory (`$PTYCHO_GOLDENS`, else `<workspace>/../shared/goldens`), or `None`
/// after printing why the calling test skips.
pub fn goldens() -> Option<PathBuf> {
    let dir = std::env::var_os("PTYCHO_GOLDENS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/goldens"));
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("skipping: goldens directory {} not found", dir.display());
        None
    }
}
