//! Defensive reading of an archive: every entry is checked (name, declared size, compression
//! ratio) before any entry is decompressed, and entries are read with a hard byte limit so a
//! lying header cannot exhaust memory. Nothing is ever written to disk or executed.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use zip::ZipArchive;
use zip::result::ZipError;

use crate::error::PersistError;

/// Largest uncompressed size accepted for one entry of a model archive (bytes).
pub const MAX_ENTRY_BYTES: u64 = 2 << 30;
/// Largest total uncompressed size accepted for a whole model archive (bytes).
pub const MAX_TOTAL_BYTES: u64 = 8 << 30;
/// Most entries accepted in one archive.
pub const MAX_ENTRIES: usize = 1024;
/// Largest accepted ratio uncompressed / compressed of a model archive's entries above
/// [`RATIO_MIN_BYTES`].
pub const MAX_COMPRESSION_RATIO: u64 = 200;
/// Entries smaller than this are exempt from the ratio check (bytes).
pub const RATIO_MIN_BYTES: u64 = 1 << 20;
/// Deflate cannot expand by more than ~1032:1: a larger declared ratio is a lying header.
pub const DEFLATE_MAX_RATIO: u64 = 1100;

/// The limits a [`SafeZip`] checks every entry of the central directory against before anything
/// is decompressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZipLimits {
    /// Most entries.
    pub max_entries: usize,
    /// Largest declared uncompressed size of one entry (bytes).
    pub max_entry_bytes: u64,
    /// Largest declared uncompressed size of all entries together (bytes).
    pub max_total_bytes: u64,
    /// Largest ratio uncompressed / compressed of an entry above [`RATIO_MIN_BYTES`].
    pub max_ratio: u64,
}

impl ZipLimits {
    /// Model archives and training checkpoints (what ptycho writes: weights of at most a few
    /// hundred MB that compress by a few ×).
    pub const ARCHIVE: ZipLimits = ZipLimits {
        max_entries: MAX_ENTRIES,
        max_entry_bytes: MAX_ENTRY_BYTES,
        max_total_bytes: MAX_TOTAL_BYTES,
        max_ratio: MAX_COMPRESSION_RATIO,
    };
    /// Datasets (NPZ files written by numpy or ptycho): arrays can be tens of GB, and sparse
    /// diffraction data compress well, so only what deflate cannot produce is refused; memory is
    /// bounded by the data actually decompressed, which [`SafeZip::reader`] caps at the declared
    /// size.
    pub const DATA: ZipLimits = ZipLimits {
        max_entries: MAX_ENTRIES,
        max_entry_bytes: 64 << 30,
        max_total_bytes: 256 << 30,
        max_ratio: DEFLATE_MAX_RATIO,
    };
}

/// One entry of the central directory, as declared (nothing decompressed yet).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EntryInfo {
    pub name: String,
    /// Declared uncompressed size in bytes.
    pub size: u64,
    /// Compressed size in bytes.
    pub compressed_size: u64,
}

/// An opened zip file whose entry list has passed the safety checks ([`ZipLimits`], entry names,
/// no symbolic links or encryption). The one zip reader of the workspace: model archives,
/// training checkpoints and NPZ datasets are all read through it.
pub struct SafeZip {
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

impl std::fmt::Debug for SafeZip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SafeZip")
            .field("path", &self.path)
            .field("entries", &self.entries)
            .finish_non_exhaustive()
    }
}

impl SafeZip {
    /// Open `path` with the [`ZipLimits::ARCHIVE`] limits.
    pub fn open(path: &Path) -> Result<SafeZip, PersistError> {
        SafeZip::open_with(path, &ZipLimits::ARCHIVE)
    }

    /// Open `path` and check every entry of the central directory against `limits`.
    pub fn open_with(path: &Path, limits: &ZipLimits) -> Result<SafeZip, PersistError> {
        let file = File::open(path).map_err(|source| PersistError::Io {
            path: path.to_path_buf(),
            action: "cannot open",
            source,
        })?;
        // Declared compressed sizes can lie; no entry holds more compressed bytes than the file.
        let file_len = file
            .metadata()
            .map_err(|source| PersistError::Io {
                path: path.to_path_buf(),
                action: "cannot read its size",
                source,
            })?
            .len();
        let mut zip =
            ZipArchive::new(BufReader::new(file)).map_err(|source| PersistError::NotZip {
                path: path.to_path_buf(),
                source,
            })?;
        if zip.len() > limits.max_entries {
            return Err(PersistError::SuspiciousEntry {
                path: path.to_path_buf(),
                entry: "<central directory>".into(),
                detail: format!("{} entries (limit {})", zip.len(), limits.max_entries),
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
            if f.compression() == zip::CompressionMethod::Stored && f.size() != f.compressed_size()
            {
                return Err(suspicious(format!(
                    "stored (uncompressed) entry declares {} bytes but occupies {} (lying header)",
                    f.size(),
                    f.compressed_size()
                )));
            }
            let (size, csize) = (f.size(), f.compressed_size().min(file_len));
            if size > limits.max_entry_bytes {
                return Err(suspicious(format!(
                    "declared uncompressed size {size} bytes exceeds the limit of {}",
                    limits.max_entry_bytes
                )));
            }
            if size > RATIO_MIN_BYTES && size / csize.max(1) > limits.max_ratio {
                return Err(suspicious(format!(
                    "compression ratio {}:1 ({size} bytes from {csize}) exceeds {}:1 (zip bomb?)",
                    size / csize.max(1),
                    limits.max_ratio
                )));
            }
            total = total.saturating_add(size);
            if total > limits.max_total_bytes {
                return Err(suspicious(format!(
                    "archive total uncompressed size exceeds {} bytes",
                    limits.max_total_bytes
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

    /// The file this zip was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The checked entries, in archive order.
    pub fn entries(&self) -> &[EntryInfo] {
        &self.entries
    }

    /// The checked entry `name`, if there is one.
    pub fn entry(&self, name: &str) -> Option<&EntryInfo> {
        self.entries.iter().find(|e| e.name == name)
    }

    /// Whether there is an entry `name`.
    pub fn has(&self, name: &str) -> bool {
        self.entry(name).is_some()
    }

    /// A reader of entry `name` that yields at most its declared size plus one byte (so that a
    /// reader expecting the declared size sees a lying header as extra data). Decompression
    /// errors, a CRC mismatch included, surface as read errors.
    pub fn reader(&mut self, name: &str) -> Result<impl Read + '_, PersistError> {
        let path = self.path.clone();
        let Some(declared) = self.entry(name).map(|e| e.size) else {
            return Err(PersistError::MissingEntry {
                path,
                entry: name.into(),
            });
        };
        let file = self.zip.by_name(name).map_err(|e| match e {
            ZipError::FileNotFound => PersistError::MissingEntry {
                path: path.clone(),
                entry: name.into(),
            },
            other => PersistError::CorruptEntry {
                path: path.clone(),
                entry: name.into(),
                detail: other.to_string(),
            },
        })?;
        Ok(file.take(declared + 1))
    }

    /// Read one entry fully, never more than its declared size.
    pub fn read(&mut self, name: &str) -> Result<Vec<u8>, PersistError> {
        let path = self.path.clone();
        let corrupt = |detail: String| PersistError::CorruptEntry {
            path: path.clone(),
            entry: name.into(),
            detail,
        };
        let declared = self.entry(name).map_or(0, |e| e.size);
        let mut reader = self.reader(name)?;
        // Pre-allocate at most 64 MiB on the header's word; the rest grows as data arrives.
        let mut buf = Vec::with_capacity(declared.min(64 << 20) as usize);
        reader
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

    /// Where the bytes of a stored (uncompressed) entry `name` begin in the file, and their
    /// declared CRC-32, so that a caller can read slices of a large entry by position instead of
    /// streaming it all (and must check the CRC itself once it has read every byte); `None` for
    /// a compressed entry. The entry's extent (`offset..offset + size`) lies inside the file.
    pub fn stored_data_offset(&mut self, name: &str) -> Result<Option<(u64, u32)>, PersistError> {
        let path = self.path.clone();
        let corrupt = |detail: String| PersistError::CorruptEntry {
            path: path.clone(),
            entry: name.into(),
            detail,
        };
        let Some(size) = self.entry(name).map(|e| e.size) else {
            return Err(PersistError::MissingEntry {
                path: path.clone(),
                entry: name.into(),
            });
        };
        let stored = self
            .zip
            .by_name(name)
            .map_err(|e| corrupt(e.to_string()))
            .and_then(|f| {
                if f.compression() != zip::CompressionMethod::Stored {
                    return Ok(None);
                }
                let crc = f.crc32();
                f.data_start()
                    .map(|offset| Some((offset, crc)))
                    .ok_or_else(|| corrupt("no data offset after its local header".into()))
            })?;
        let Some((offset, crc)) = stored else {
            return Ok(None);
        };
        let len = std::fs::metadata(&self.path)
            .map_err(|source| PersistError::Io {
                path: self.path.clone(),
                action: "cannot read its size",
                source,
            })?
            .len();
        if offset.checked_add(size).is_none_or(|end| end > len) {
            return Err(corrupt(format!(
                "{size} bytes at offset {offset} run past the end of the {len}-byte file"
            )));
        }
        Ok(Some((offset, crc)))
    }

    /// Read and parse a JSON entry.
    pub fn read_json(&mut self, name: &str) -> Result<serde_json::Value, PersistError> {
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
