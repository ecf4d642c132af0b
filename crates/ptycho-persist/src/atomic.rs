//! Crash-safe file output, used for every file the project writes: the content goes to a
//! temporary file in the destination directory, which is flushed, fsynced and renamed over the
//! destination. A reader (or a killed process) sees either the old file or the complete new one,
//! never a part. A killed writer can leave its temporary file behind; [`remove_stale_temporaries`]
//! removes those.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

/// Name prefix of the temporary files [`write_atomic`] creates (hidden on Unix).
pub const TEMP_PREFIX: &str = ".ptycho-tmp-";

/// What [`write_atomic_with`] does when the destination already exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    /// Replace it (atomically).
    Replace,
    /// Leave it and fail with [`io::ErrorKind::AlreadyExists`] (checked at the rename, so a
    /// file created meanwhile is not clobbered either).
    Refuse,
}

/// Write `path` atomically, replacing an existing file: `fill` writes the content into a
/// temporary file next to it (through a buffered, seekable writer), which is then flushed,
/// fsynced and renamed over `path`. On error the temporary file is removed and `path` is
/// untouched.
pub fn write_atomic<F>(path: &Path, fill: F) -> io::Result<()>
where
    F: FnOnce(&mut BufWriter<&mut File>) -> io::Result<()>,
{
    write_atomic_with(path, Existing::Replace, fill)
}

/// Write `bytes` to `path` atomically (see [`write_atomic`]).
pub fn write_bytes_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic(path, |w| w.write_all(bytes))
}

/// [`write_atomic`] with a choice of what happens to an existing `path`.
pub fn write_atomic_with<F>(path: &Path, existing: Existing, fill: F) -> io::Result<()>
where
    F: FnOnce(&mut BufWriter<&mut File>) -> io::Result<()>,
{
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut builder = tempfile::Builder::new();
    builder.prefix(TEMP_PREFIX);
    // Outputs are ordinary shareable files (tempfile's default is owner-only 0600).
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644));
    let mut tmp = builder.tempfile_in(dir)?;
    {
        let mut w = BufWriter::new(tmp.as_file_mut());
        fill(&mut w)?;
        w.flush()?;
    }
    tmp.as_file().sync_all()?;
    match existing {
        Existing::Replace => tmp.persist(path),
        Existing::Refuse => tmp.persist_noclobber(path),
    }
    .map_err(|e| e.error)?;
    // Make the rename itself durable (best effort: not every platform can fsync a directory).
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Whether `name` is a temporary file of [`write_atomic`] (or of the archive writer of earlier
/// versions, `.wts-*.tmp`).
fn is_temporary(name: &str) -> bool {
    name.starts_with(TEMP_PREFIX) || (name.starts_with(".wts-") && name.ends_with(".tmp"))
}

/// Remove the temporary files that killed writers left in `dir` (best effort: an unreadable
/// directory or a file that cannot be removed is skipped). Returns how many were removed.
/// Only call this when no other process is writing into `dir`.
pub fn remove_stale_temporaries(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .filter(|e| is_temporary(&e.file_name().to_string_lossy()))
        .filter(|e| std::fs::remove_file(e.path()).is_ok())
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_write_leaves_old_file_and_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.txt");
        write_bytes_atomic(&p, b"old").unwrap();
        let err = write_atomic(&p, |w| {
            w.write_all(b"partial")?;
            Err(io::Error::other("boom"))
        });
        assert!(err.is_err());
        assert_eq!(std::fs::read(&p).unwrap(), b"old");
        let n = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(n, 1, "temporary file left behind");
    }

    #[test]
    fn refuse_keeps_an_existing_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.txt");
        write_atomic_with(&p, Existing::Refuse, |w| w.write_all(b"first")).unwrap();
        let err = write_atomic_with(&p, Existing::Refuse, |w| w.write_all(b"second")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&p).unwrap(), b"first");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn stale_temporaries_are_removed_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            ".ptycho-tmp-abc",
            ".wts-xyz.zip.tmp",
            "keep.txt",
            ".wts-keep",
        ] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        assert_eq!(remove_stale_temporaries(dir.path()), 2);
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, [".wts-keep", "keep.txt"]);
    }
}
