//! Helpers shared by this crate's integration tests.

use std::path::PathBuf;

/// Path of the reference golden file `name` in the repository's `testdata/goldens/`.
///
/// Panics, naming the path, when the file is missing: a parity test fails rather than passing
/// without comparing anything.
pub fn golden(name: &str) -> PathBuf {
    let path = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/goldens"
    ))
    .join(name);
    assert!(
        path.is_file(),
        "golden file {} is missing (the parity tests read testdata/goldens/ of the repository)",
        path.display()
    );
    path
}
