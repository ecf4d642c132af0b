//! Defensive reading of an archive: every entry is checked (name, declared size, compression
//! ratio) before any entry is decompressed, and entries are read with a hard byte limit so a
//! lying header cannot exhaust memory. Nothing is ever written to disk or executed.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use zip::ZipArchive;
use zip::result::ZipError;

use crate::error::PersistError;

/// Largest uncompressed size accepted for one entry (bytes).
pub const MAX_ENTRY_BYTES: u64 = 2 << 30;
/// Largest total uncompressed size accepted for the whole archive (bytes).
pub const MAX_TOTAL_BYTES: u64 = 8 << 30;
/// Most entries accepted in one archive.
pub const MAX_ENTRIES: usize = 1024;
/// Largest accepted ratio uncompressed / compressed for entries above [`RATIO_MIN_BYTES`].
pub const MAX_COMPRESSION_RATIO: u64 = 200;
/// Entries smaller than this are exempt from the ratio check (bytes).
pub const RATIO_MIN_BYTES: u64 = 1 << 20;

/// One entry of the central directory, as declared (nothing decompressed yet).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EntryInfo {
    pub name: String,
    /// Declared uncompressed size in bytes.
    pub size: u64,
    /// Compressed size in bytes.
    pub compressed_size: u64,
}

/// An opened archive whose entry list has passed the safety checks.
pub(crate) struct SafeZip {
    path: PathBuf,
    zip: ZipArchive<BufReader<File>>,
    entries: Vec<EntryInfo>,
}

/// Whether a zip entry name stays inside the archive root: relative, no `..`/`.` components,
/// no backslashes, NUL or drive prefixes.
pub(crate) fn is_safe_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('/')
        && !name.contains('\\')
        && !name.contains('\0')
        && !name.contains(':')
        && name
            .trim_end_matches('/')
            .split('/')
            .all(|c| !c.is_empty() && c != ".." && c != ".")
}

impl SafeZip {
    /// Open `path` and check every entry of the central directory.
    pub(crate) fn open(path: &Path) -> Result<SafeZip, PersistError> {
        let file = File::open(path).map_err(|source| PersistError::Io {
            path: path.to_path_buf(),
            action: "cannot open archive",
            source,
        })?;
        // Declared compressed sizes can lie; no entry holds more compressed bytes than the file.
        let file_len = file
            .metadata()
            .map_err(|source| PersistError::Io {
                path: path.to_path_buf(),
                action: "cannot stat archive",
                source,
            })?
            .len();
        let mut zip =
            ZipArchive::new(BufReader::new(file)).map_err(|source| PersistError::NotZip {
                path: path.to_path_buf(),
                source,
            })?;
        if zip.len() > MAX_ENTRIES {
            return Err(PersistError::SuspiciousEntry {
                path: path.to_path_buf(),
                entry: "<central directory>".into(),
                detail: format!("{} entries (limit {MAX_ENTRIES})", zip.len()),
            });
        }
        let mut entries = Vec::with_capacity(zip.len());
        let mut total: u64 = 0;
        for i in 0..zip.len() {
            let f = zip.by_index_raw(i).map_err(|source| PersistError::NotZip {
                path: path.to_path_buf(),
                source,
            })?;
            let name = match f.name() {
                Ok(n) => n.into_owned(),
                Err(_) => String::from_utf8_lossy(f.name_raw()).into_owned(),
            };
            let suspicious = |detail: String| PersistError::SuspiciousEntry {
                path: path.to_path_buf(),
                entry: name.clone(),
                detail,
            };
            if !is_safe_name(&name) || f.enclosed_name().is_none() {
                return Err(PersistError::UnsafeEntryName {
                    path: path.to_path_buf(),
                    entry: name,
                });
            }
            if f.is_symlink() {
                return Err(suspicious("entry is a symbolic link".into()));
            }
            if f.encrypted() {
                return Err(suspicious("entry is encrypted".into()));
            }
            let (size, csize) = (f.size(), f.compressed_size().min(file_len));
            if size > MAX_ENTRY_BYTES {
                return Err(suspicious(format!(
                    "declared uncompressed size {size} bytes exceeds the limit of {MAX_ENTRY_BYTES}"
                )));
            }
            if size > RATIO_MIN_BYTES && size / csize.max(1) > MAX_COMPRESSION_RATIO {
                return Err(suspicious(format!(
                    "compression ratio {}:1 ({size} bytes from {csize}) exceeds {MAX_COMPRESSION_RATIO}:1 (zip bomb?)",
                    size / csize.max(1)
                )));
            }
            total = total.saturating_add(size);
            if total > MAX_TOTAL_BYTES {
                return Err(suspicious(format!(
                    "archive total uncompressed size exceeds {MAX_TOTAL_BYTES} bytes"
                )));
            }
            entries.push(EntryInfo {
                name,
                size,
                compressed_size: csize,
            });
        }
        Ok(SafeZip {
            path: path.to_path_buf(),
            zip,
            entries,
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The checked entries, in archive order.
    pub(crate) fn entries(&self) -> &[EntryInfo] {
        &self.entries
    }

    pub(crate) fn has(&self, name: &str) -> bool {
        self.entries.iter().any(|e| e.name == name)
    }

    /// Read one entry fully, never more than its declared size.
    pub(crate) fn read(&mut self, name: &str) -> Result<Vec<u8>, PersistError> {
        let path = self.path.clone();
        let Some(declared) = self.entries.iter().find(|e| e.name == name).map(|e| e.size) else {
            return Err(PersistError::MissingEntry {
                path,
                entry: name.into(),
            });
        };
        let corrupt = |detail: String| PersistError::CorruptEntry {
            path: path.clone(),
            entry: name.into(),
            detail,
        };
        let file = self.zip.by_name(name).map_err(|e| match e {
            ZipError::FileNotFound => PersistError::MissingEntry {
                path: path.clone(),
                entry: name.into(),
            },
            other => corrupt(other.to_string()),
        })?;
        // Pre-allocate at most 64 MiB on the header's word; the rest grows as data arrives.
        let mut buf = Vec::with_capacity(declared.min(64 << 20) as usize);
        file.take(declared + 1)
            .read_to_end(&mut buf)
            .map_err(|e| corrupt(e.to_string()))?;
        if buf.len() as u64 != declared {
            return Err(corrupt(format!(
                "declared {declared} bytes but holds {}{} bytes (lying header)",
                if buf.len() as u64 > declared {
                    "more than "
                } else {
                    ""
                },
                buf.len()
            )));
        }
        Ok(buf)
    }

    /// Read and parse a JSON entry.
    pub(crate) fn read_json(&mut self, name: &str) -> Result<serde_json::Value, PersistError> {
        let bytes = self.read(name)?;
        serde_json::from_slice(&bytes).map_err(|source| PersistError::Json {
            path: self.path.clone(),
            entry: name.into(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::is_safe_name;

    #[test]
    fn entry_names() {
        for ok in ["manifest.json", "autoencoder/model.safetensors", "a/b/"] {
            assert!(is_safe_name(ok), "{ok}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a/./b",
            "a\\..\\b",
            "C:/x",
            "a//b",
            "a\0b",
        ] {
            assert!(!is_safe_name(bad), "{bad:?}");
        }
    }
}
