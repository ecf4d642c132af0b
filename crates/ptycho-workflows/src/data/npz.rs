//! Reading and writing NPZ archives of the reference schema (spec §2.1).
//!
//! The file is opened once, through the workspace's bounded zip reader
//! ([`ptycho_persist::SafeZip`] with [`ZipLimits::DATA`]). Every entry's NPY header is parsed and
//! checked against the zip entry before any array is read, so a hostile header cannot make the
//! reader allocate more than the archive can hold; arrays are parsed by `ndarray_npy`.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use ndarray::{Array1, ArrayD};
use ndarray_npy::npy::header::Header;
use ndarray_npy::{NpzWriter, ReadNpyExt, ReadableElement};
use num_complex::{Complex32, Complex64};
use ptycho_config::DiffractionUnits;
use ptycho_persist::{PersistError, SafeZip, ZipLimits};

use super::RawData;
use crate::error::{Result, WorkflowError};

/// Element kinds the data contract accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    F32,
    F64,
    C64,
    C128,
    Int(u8),
    Other,
}

/// The parsed NPY header of one archive entry.
#[derive(Debug, Clone)]
pub(crate) struct EntryInfo {
    /// Name of the zip entry (`{key}.npy`).
    pub name: String,
    pub descr: String,
    pub kind: Kind,
    pub shape: Vec<usize>,
    /// Bytes of the NPY preamble and header: the data start there.
    pub header_bytes: u64,
    /// Whether the data are in Fortran (column-major) order.
    pub fortran: bool,
}

fn kind_of(descr: &str) -> Kind {
    let body = descr.trim_start_matches(['<', '>', '=', '|']);
    match body {
        "f4" => Kind::F32,
        "f8" => Kind::F64,
        "c8" => Kind::C64,
        "c16" => Kind::C128,
        "i1" | "u1" => Kind::Int(1),
        "i2" | "u2" => Kind::Int(2),
        "i4" | "u4" => Kind::Int(4),
        "i8" | "u8" => Kind::Int(8),
        _ => Kind::Other,
    }
}

fn item_size(kind: Kind) -> Option<u64> {
    match kind {
        Kind::F32 => Some(4),
        Kind::F64 | Kind::C64 => Some(8),
        Kind::C128 => Some(16),
        Kind::Int(b) => Some(b as u64),
        Kind::Other => None,
    }
}

/// Largest accepted NPY header (bytes); numpy writes a few hundred.
const MAX_NPY_HEADER_BYTES: usize = 1 << 20;

/// Read the NPY preamble from a reader; returns (descr, shape, header bytes, Fortran order).
///
/// The header dictionary is parsed by `ndarray_npy`'s own parser, the one that later reads the
/// array, so the shape checked here is the shape that will be allocated (a hand-rolled parser
/// could be fooled by a repeated `'shape'` key or a `'shape'` inside a string). The header length
/// is bounded before that parser allocates its buffer.
pub(crate) fn read_npy_header<R: Read>(
    r: &mut R,
) -> std::result::Result<(String, Vec<usize>, u64, bool), String> {
    let mut pre = vec![0u8; 8];
    r.read_exact(&mut pre)
        .map_err(|e| format!("cannot read NPY magic: {e}"))?;
    if &pre[..6] != b"\x93NUMPY" {
        return Err("not an NPY array (bad magic)".into());
    }
    let hlen = match pre[6] {
        1 => {
            let mut b = [0u8; 2];
            r.read_exact(&mut b)
                .map_err(|e| format!("truncated NPY header: {e}"))?;
            pre.extend_from_slice(&b);
            u16::from_le_bytes(b) as usize
        }
        2 | 3 => {
            let mut b = [0u8; 4];
            r.read_exact(&mut b)
                .map_err(|e| format!("truncated NPY header: {e}"))?;
            pre.extend_from_slice(&b);
            u32::from_le_bytes(b) as usize
        }
        v => return Err(format!("unsupported NPY version {v}")),
    };
    if hlen > MAX_NPY_HEADER_BYTES {
        return Err(format!("NPY header length {hlen} is implausible"));
    }
    let pre_len = pre.len() as u64;
    let mut chained = std::io::Cursor::new(pre).chain(r.take(hlen as u64));
    let header = Header::from_reader(&mut chained).map_err(|e| {
        let msg = e.to_string();
        format!(
            "unparsable NPY header: {}",
            msg.split_whitespace().collect::<Vec<_>>().join(" ")
        )
    })?;
    // A plain dtype string (`'<f4'`); anything else (a structured dtype list) is described by its
    // Debug form, which maps to `Kind::Other`. (Not `Display`: it fails, and `to_string` would
    // panic, on non-ASCII text.)
    let descr = match header.type_descriptor.as_string() {
        Some(s) => s.clone(),
        None => format!("{:?}", header.type_descriptor),
    };
    Ok((
        descr,
        header.shape,
        pre_len + hlen as u64,
        header.layout.is_fortran(),
    ))
}

/// Keys of the data contract that this reader interprets.
pub(crate) const CONTRACT_KEYS: [&str; 10] = [
    "xcoords",
    "ycoords",
    "xcoords_start",
    "ycoords_start",
    "diff3d",
    "diffraction",
    "probeGuess",
    "objectGuess",
    "scan_index",
    "Y",
];

/// The error of opening `path` with the bounded zip reader, in this crate's terms.
fn open_error(path: &Path, e: PersistError) -> WorkflowError {
    match e {
        PersistError::Io { action, source, .. } => WorkflowError::Io {
            path: path.to_path_buf(),
            action,
            source,
        },
        PersistError::NotZip { source, .. } => WorkflowError::NotNpz {
            path: path.to_path_buf(),
            source,
        },
        // Limits and unsafe names: the message names the file and the entry.
        other => WorkflowError::Persist(other),
    }
}

/// What went wrong reading an entry, without the file and entry names (the caller's error names
/// them).
fn entry_detail(e: PersistError) -> String {
    match e {
        PersistError::CorruptEntry { detail, .. } => detail,
        PersistError::MissingEntry { .. } => "missing from the archive".into(),
        other => other.to_string(),
    }
}

/// Scan all entries: name (without `.npy`) → parsed header, with the declared size bounded by
/// the zip entry. A contract key with an unreadable header is an error; any other entry with
/// an unreadable header is skipped with a warning.
fn scan_entries(zip: &mut SafeZip) -> Result<BTreeMap<String, EntryInfo>> {
    let path = zip.path().to_path_buf();
    let listed: Vec<(String, u64)> = zip
        .entries()
        .iter()
        .map(|e| (e.name.clone(), e.size))
        .collect();
    let mut out = BTreeMap::new();
    for (name, size) in listed {
        let key = name.strip_suffix(".npy").unwrap_or(&name).to_string();
        let header = zip
            .reader(&name)
            .map_err(entry_detail)
            .and_then(|mut r| read_npy_header(&mut r));
        let (descr, shape, hbytes, fortran) = match header {
            Ok(h) => h,
            Err(reason) if CONTRACT_KEYS.contains(&key.as_str()) => {
                return Err(WorkflowError::Truncated { path, key, reason });
            }
            Err(reason) => {
                tracing::warn!(file = %path.display(), key = %key, "skipping unreadable entry: {reason}");
                continue;
            }
        };
        let kind = kind_of(&descr);
        if let Some(isz) = item_size(kind) {
            let count: u128 = shape.iter().map(|&d| d as u128).product();
            let needed = count * isz as u128 + hbytes as u128;
            if needed > size as u128 && !CONTRACT_KEYS.contains(&key.as_str()) {
                tracing::warn!(file = %path.display(), key = %key, "skipping entry whose header declares more data than it holds");
                continue;
            }
            if needed > size as u128 {
                return Err(WorkflowError::DeclaredSizeTooLarge {
                    path,
                    key,
                    shape,
                    needed,
                    available: size,
                });
            }
        }
        out.insert(
            key,
            EntryInfo {
                name,
                descr,
                kind,
                shape,
                header_bytes: hbytes,
                fortran,
            },
        );
    }
    Ok(out)
}

/// The extent and declared CRC-32 of a stored entry read in place: whoever reads it by position
/// checks the CRC once every byte went by (the zip reader checks it only when it streams the
/// entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StoredCrc {
    /// Byte offset of the entry's first byte (its NPY preamble) in the file.
    pub entry_start: u64,
    /// Bytes in the entry.
    pub entry_len: u64,
    pub crc: u32,
}

/// Typed reader over one NPZ file with error context.
pub(crate) struct Reader {
    path: PathBuf,
    zip: SafeZip,
    pub entries: BTreeMap<String, EntryInfo>,
}

impl Reader {
    pub fn open(path: &Path) -> Result<Self> {
        let mut zip =
            SafeZip::open_with(path, &ZipLimits::DATA).map_err(|e| open_error(path, e))?;
        let entries = scan_entries(&mut zip)?;
        Ok(Self {
            path: path.to_path_buf(),
            zip,
            entries,
        })
    }

    /// The bytes (NPY header included) of entry `key`, if the scan kept it; an error when the
    /// entry declares more than `max_bytes` or cannot be read.
    pub fn small_entry(&mut self, key: &str, max_bytes: u64) -> Option<Result<Vec<u8>, String>> {
        let name = self.entries.get(key)?.name.clone();
        let size = self.zip.entry(&name)?.size;
        if size > max_bytes {
            return Some(Err(format!("{size} bytes (more than {max_bytes})")));
        }
        Some(self.zip.read(&name).map_err(entry_detail))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn has(&self, key: &str) -> bool {
        self.entries.contains_key(key)
    }

    fn bad(&self, key: &str, reason: impl Into<String>) -> WorkflowError {
        WorkflowError::BadArray {
            path: self.path.clone(),
            key: key.to_string(),
            reason: reason.into(),
        }
    }

    /// Entry `key` as an array of `T`; the error is what went wrong, without file or key (a
    /// missing key, a mismatched dtype, truncated or corrupt data).
    pub fn read_raw<T: ReadableElement>(
        &mut self,
        key: &str,
    ) -> std::result::Result<ArrayD<T>, String> {
        let name = match self.entries.get(key) {
            Some(info) => info.name.clone(),
            None => return Err("missing".into()),
        };
        let reader = self.zip.reader(&name).map_err(entry_detail)?;
        ArrayD::<T>::read_npy(reader).map_err(|e| e.to_string())
    }

    fn read_dyn<T: ReadableElement>(&mut self, key: &str) -> Result<ArrayD<T>> {
        self.info(key)?;
        self.read_raw(key)
            .map_err(|reason| WorkflowError::Truncated {
                path: self.path.clone(),
                key: key.to_string(),
                reason,
            })
    }

    fn info(&self, key: &str) -> Result<EntryInfo> {
        self.entries
            .get(key)
            .cloned()
            .ok_or_else(|| WorkflowError::MissingKey {
                path: self.path.clone(),
                key: key.to_string(),
            })
    }

    /// A real array (float32 or float64 on disk) as f64.
    pub fn real_f64(&mut self, key: &str) -> Result<ArrayD<f64>> {
        let info = self.info(key)?;
        let a = match info.kind {
            Kind::F64 => self.read_dyn::<f64>(key)?,
            Kind::F32 => self.read_dyn::<f32>(key)?.mapv(f64::from),
            _ => {
                return Err(self.bad(key, format!("dtype {} is not float32/float64", info.descr)));
            }
        };
        self.check_finite(key, a.iter().map(|v| v.is_finite()))?;
        Ok(a)
    }

    /// A diffraction stack of any real dtype (float32/64, signed or unsigned 8–64-bit integers)
    /// as f32 amplitudes: counts are square-rooted; `units` says which the values are (auto:
    /// decided here, see [`DiffractionUnits::Auto`]). Returns the amplitudes and the decision.
    pub fn diffraction(
        &mut self,
        key: &str,
        units: DiffractionUnits,
    ) -> Result<(ArrayD<f32>, DiffractionDecision)> {
        let info = self.info(key)?;
        // Floats keep their own type until the decision (no widening of a large f32 stack).
        let (amps, counts, reason) = match info.kind {
            Kind::F32 => {
                let a = self.read_dyn::<f32>(key)?;
                self.check_finite(key, a.iter().map(|v| v.is_finite()))?;
                let (counts, reason) = decide(units, false, a.iter().map(|&v| f64::from(v)));
                self.check_counts(key, counts, a.iter().map(|&v| f64::from(v)))?;
                let a = if counts { a.mapv(|v| v.sqrt()) } else { a };
                (a, counts, reason)
            }
            Kind::F64 => {
                let a = self.read_dyn::<f64>(key)?;
                self.check_finite(key, a.iter().map(|v| v.is_finite()))?;
                let (counts, reason) = decide(units, false, a.iter().copied());
                self.check_counts(key, counts, a.iter().copied())?;
                let a = a.mapv(|v| (if counts { v.sqrt() } else { v }) as f32);
                (a, counts, reason)
            }
            Kind::Int(_) => {
                let a = self.int_f64(key, &info)?;
                let (counts, reason) = decide(units, true, a.iter().copied());
                self.check_counts(key, counts, a.iter().copied())?;
                let a = a.mapv(|v| (if counts { v.sqrt() } else { v }) as f32);
                (a, counts, reason)
            }
            _ => {
                return Err(self.bad(
                    key,
                    format!(
                        "dtype {} is not float32/float64 or an integer type",
                        info.descr
                    ),
                ));
            }
        };
        Ok((amps, decision(key, &info, units, (counts, reason))))
    }

    /// An integer array (any width, signed or unsigned) as f64.
    fn int_f64(&mut self, key: &str, info: &EntryInfo) -> Result<ArrayD<f64>> {
        Ok(match info.descr.trim_start_matches(['<', '>', '=', '|']) {
            "i8" => self.read_dyn::<i64>(key)?.mapv(|v| v as f64),
            "u8" => self.read_dyn::<u64>(key)?.mapv(|v| v as f64),
            "i4" => self.read_dyn::<i32>(key)?.mapv(f64::from),
            "u4" => self.read_dyn::<u32>(key)?.mapv(f64::from),
            "i2" => self.read_dyn::<i16>(key)?.mapv(f64::from),
            "u2" => self.read_dyn::<u16>(key)?.mapv(f64::from),
            "i1" => self.read_dyn::<i8>(key)?.mapv(f64::from),
            "u1" => self.read_dyn::<u8>(key)?.mapv(f64::from),
            other => return Err(self.bad(key, format!("dtype {other} is not an integer"))),
        })
    }

    /// Counts must be ≥ 0: the first negative one is an error naming the key.
    fn check_counts(
        &self,
        key: &str,
        counts: bool,
        mut values: impl Iterator<Item = f64>,
    ) -> Result<()> {
        if !counts {
            return Ok(());
        }
        if let Some((index, v)) = values.by_ref().enumerate().find(|(_, v)| *v < 0.0) {
            return Err(self.bad(
                key,
                format!("negative count {v} at flat index {index} (photon counts must be >= 0)"),
            ));
        }
        Ok(())
    }

    /// A complex array (complex64/complex128, or real float promoted) as Complex32.
    pub fn complex32(&mut self, key: &str) -> Result<ArrayD<Complex32>> {
        let info = self.info(key)?;
        let a = match info.kind {
            Kind::C64 => self.read_dyn::<Complex32>(key)?,
            Kind::C128 => self
                .read_dyn::<Complex64>(key)?
                .mapv(|z| Complex32::new(z.re as f32, z.im as f32)),
            Kind::F32 => self.read_dyn::<f32>(key)?.mapv(|v| Complex32::new(v, 0.0)),
            Kind::F64 => self
                .read_dyn::<f64>(key)?
                .mapv(|v| Complex32::new(v as f32, 0.0)),
            _ => {
                return Err(self.bad(
                    key,
                    format!("dtype {} is not complex64/complex128", info.descr),
                ));
            }
        };
        self.check_finite(key, a.iter().map(|z| z.re.is_finite() && z.im.is_finite()))?;
        Ok(a)
    }

    /// An integer array as i64.
    pub fn int_i64(&mut self, key: &str) -> Result<ArrayD<i64>> {
        let info = self.info(key)?;
        let a = match (
            info.kind,
            info.descr.trim_start_matches(['<', '>', '=', '|']),
        ) {
            (_, "i8") => self.read_dyn::<i64>(key)?,
            (_, "i4") => self.read_dyn::<i32>(key)?.mapv(i64::from),
            (_, "u8") => self.read_dyn::<u64>(key)?.mapv(|v| v as i64),
            (_, "u4") => self.read_dyn::<u32>(key)?.mapv(i64::from),
            (_, "i2") => self.read_dyn::<i16>(key)?.mapv(i64::from),
            (_, "u2") => self.read_dyn::<u16>(key)?.mapv(i64::from),
            (_, "i1") => self.read_dyn::<i8>(key)?.mapv(i64::from),
            (_, "u1") => self.read_dyn::<u8>(key)?.mapv(i64::from),
            (Kind::F64, _) | (Kind::F32, _) => self.real_f64(key)?.mapv(|v| v as i64),
            _ => return Err(self.bad(key, format!("dtype {} is not an integer", info.descr))),
        };
        Ok(a)
    }

    /// The parsed header of entry `key`.
    pub fn entry_info(&self, key: &str) -> Result<EntryInfo> {
        self.info(key)
    }

    /// A file holding the data of entry `key` (the bytes after its NPY header) from the
    /// returned offset on: the NPZ itself when the entry is stored, so that slices are read in
    /// place (with the CRC the reader must check), else an anonymous temporary file (in the system's temporary directory, gone when
    /// dropped) into which the entry is decompressed in a bounded buffer. Either way memory
    /// does not grow with the entry.
    pub fn entry_data_file(
        &mut self,
        key: &str,
    ) -> Result<(std::fs::File, u64, Option<StoredCrc>)> {
        let info = self.info(key)?;
        let truncated = |path: &Path, reason: String| WorkflowError::Truncated {
            path: path.to_path_buf(),
            key: key.to_string(),
            reason,
        };
        let io = |path: &Path, action: &'static str| {
            let path = path.to_path_buf();
            move |source| WorkflowError::Io {
                path,
                action,
                source,
            }
        };
        let stored = self
            .zip
            .stored_data_offset(&info.name)
            .map_err(|e| truncated(&self.path, entry_detail(e)))?;
        if let Some((offset, crc)) = stored {
            let file = std::fs::File::open(&self.path).map_err(io(&self.path, "opening"))?;
            let size = self.zip.entry(&info.name).map_or(0, |e| e.size);
            let check = StoredCrc {
                entry_start: offset,
                entry_len: size,
                crc,
            };
            return Ok((file, offset + info.header_bytes, Some(check)));
        }
        let mut tmp = tempfile::tempfile().map_err(io(
            &std::env::temp_dir(),
            "creating a temporary file to decompress into",
        ))?;
        let path = self.path.clone();
        let mut reader = self
            .zip
            .reader(&info.name)
            .map_err(|e| truncated(&path, entry_detail(e)))?;
        std::io::copy(
            &mut (&mut reader).take(info.header_bytes),
            &mut std::io::sink(),
        )
        .map_err(|e| truncated(&path, e.to_string()))?;
        // To the end, so that the zip reader checks the CRC; the declared size bounds it.
        let copied = std::io::copy(&mut reader, &mut tmp).map_err(|e| {
            if e.kind() == std::io::ErrorKind::StorageFull {
                WorkflowError::Io {
                    path: std::env::temp_dir(),
                    action: "decompressing the diffraction patterns into",
                    source: e,
                }
            } else {
                truncated(&path, e.to_string())
            }
        })?;
        let need = item_size(info.kind).unwrap_or(1)
            * info.shape.iter().map(|&d| d as u64).product::<u64>();
        if copied < need {
            return Err(truncated(
                &path,
                format!("holds {copied} bytes of data, its header declares {need}"),
            ));
        }
        Ok((tmp, 0, None))
    }

    fn check_finite(&self, key: &str, mut it: impl Iterator<Item = bool>) -> Result<()> {
        if let Some(index) = it.position(|ok| !ok) {
            return Err(WorkflowError::NonFinite {
                path: self.path.clone(),
                key: key.to_string(),
                index,
            });
        }
        Ok(())
    }
}

/// How a diffraction stack's units were decided when it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiffractionDecision {
    /// The key it was read from (`diff3d` or `diffraction`).
    pub key: String,
    /// numpy's name of the stored dtype (`uint16`, `float32`, ...).
    pub dtype: String,
    /// Whether the stored dtype is an integer type.
    pub integer: bool,
    /// The units asked for.
    pub requested: DiffractionUnits,
    /// Whether the values were read as counts (and square-rooted).
    pub counts: bool,
    /// Why, in a few words.
    pub reason: &'static str,
}

impl std::fmt::Display for DiffractionDecision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = if self.counts {
            "photon counts, square-rooted to amplitudes"
        } else {
            "amplitudes (sqrt of counts), used as stored"
        };
        write!(
            f,
            "`{}` ({}) read as {what}: {}",
            self.key, self.dtype, self.reason
        )
    }
}

/// Largest value below which float data of non-negative integers is still read as amplitudes by
/// `auto` (small integer-valued test arrays; a measured scan whose brightest pixel has fewer
/// than 10 photons is not one to train on).
pub const AUTO_COUNTS_MIN_MAX: f64 = 10.0;

/// Whether values of a stack are counts, and why. Auto: integer dtypes are counts; float values
/// are counts when all are non-negative integers and the largest is ≥ [`AUTO_COUNTS_MIN_MAX`]
/// (amplitudes of measured data, √counts, are almost never all integers).
fn decide(
    units: DiffractionUnits,
    integer: bool,
    values: impl Iterator<Item = f64>,
) -> (bool, &'static str) {
    let mut evidence = IntegralEvidence::default();
    if units == DiffractionUnits::Auto && !integer {
        for v in values {
            if !evidence.observe(v) {
                break;
            }
        }
    }
    evidence.decide(units, integer)
}

/// What [`DiffractionUnits::Auto`] looks at in float data, gathered value by value (so that a
/// stack read in pieces is decided as the whole would be): whether every value so far is a
/// non-negative integer, and the largest.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct IntegralEvidence {
    integral: bool,
    max: f64,
}

impl Default for IntegralEvidence {
    fn default() -> Self {
        IntegralEvidence {
            integral: true,
            max: 0.0,
        }
    }
}

impl IntegralEvidence {
    /// Take one value; returns whether the values can still be counts.
    pub fn observe(&mut self, v: f64) -> bool {
        if self.integral {
            if v < 0.0 || v.fract() != 0.0 {
                self.integral = false;
            } else {
                self.max = self.max.max(v);
            }
        }
        self.integral
    }

    /// The decision of [`decide`] for the values observed.
    pub fn decide(self, units: DiffractionUnits, integer: bool) -> (bool, &'static str) {
        match units {
            DiffractionUnits::Amplitude => (false, "as set (diffraction_units = amplitude)"),
            DiffractionUnits::Counts => (true, "as set (diffraction_units = counts)"),
            DiffractionUnits::Auto if integer => (true, "auto: an integer dtype holds counts"),
            DiffractionUnits::Auto if self.integral && self.max >= AUTO_COUNTS_MIN_MAX => (
                true,
                "auto: every value is a non-negative integer and the largest is >= 10",
            ),
            DiffractionUnits::Auto => (
                false,
                "auto: float values, not all non-negative integers with one >= 10 (set diffraction_units = counts if they are counts)",
            ),
        }
    }
}

/// The record of how entry `key` (stored as `info`) was read.
pub(crate) fn decision(
    key: &str,
    info: &EntryInfo,
    requested: DiffractionUnits,
    (counts, reason): (bool, &'static str),
) -> DiffractionDecision {
    DiffractionDecision {
        key: key.to_string(),
        dtype: dtype_name(&info.descr),
        integer: matches!(info.kind, Kind::Int(_)),
        requested,
        counts,
        reason,
    }
}

/// numpy's name of a dtype descriptor (`<u2` → `uint16`); the descriptor itself otherwise.
fn dtype_name(descr: &str) -> String {
    let body = descr.trim_start_matches(['<', '>', '=', '|']);
    let name = match body {
        "f4" => "float32",
        "f8" => "float64",
        "i1" => "int8",
        "u1" => "uint8",
        "i2" => "int16",
        "u2" => "uint16",
        "i4" => "int32",
        "u4" => "uint32",
        "i8" => "int64",
        "u8" => "uint64",
        _ => return descr.to_string(),
    };
    name.to_string()
}

fn write_err(path: &Path, key: &str, e: std::io::Error) -> WorkflowError {
    WorkflowError::Write {
        path: path.to_path_buf(),
        key: key.to_string(),
        source: Box::new(e),
    }
}

/// Write the reference key set atomically (temp file in the same directory, then rename).
pub(crate) fn write_raw(raw: &RawData, path: &Path) -> Result<()> {
    let mut key_at_fault = "<file>";
    ptycho_persist::write_atomic(path, |w| {
        let io = std::io::Error::other;
        let mut npz = NpzWriter::new_compressed(w);
        for (key, a) in [
            ("xcoords", &raw.xcoords),
            ("ycoords", &raw.ycoords),
            ("xcoords_start", &raw.xcoords_start),
            ("ycoords_start", &raw.ycoords_start),
        ] {
            key_at_fault = key;
            npz.add_array(key, a).map_err(io)?;
        }
        key_at_fault = "diff3d";
        npz.add_array("diff3d", &raw.diff3d).map_err(io)?;
        key_at_fault = "probeGuess";
        npz.add_array("probeGuess", &raw.probe_guess).map_err(io)?;
        if let Some(obj) = &raw.object_guess {
            key_at_fault = "objectGuess";
            npz.add_array("objectGuess", obj).map_err(io)?;
        }
        key_at_fault = "scan_index";
        let scan: Array1<i64> = raw
            .scan_index
            .clone()
            .unwrap_or_else(|| Array1::zeros(raw.n_points()));
        npz.add_array("scan_index", &scan).map_err(io)?;
        if let Some(nphotons) = raw.metadata_nphotons {
            key_at_fault = "_metadata";
            let json = super::metadata::metadata_json(nphotons, raw.n());
            npz.add_array("_metadata", &super::metadata::UnicodeScalar(json))
                .map_err(io)?;
        }
        if let Some(bp) = &raw.bad_pixels {
            key_at_fault = "bad_pixels";
            npz.add_array("bad_pixels", bp).map_err(io)?;
        }
        key_at_fault = "<finish>";
        npz.finish().map_err(io)?;
        Ok(())
    })
    .map_err(|e| write_err(path, key_at_fault, e))
}

/// Convert a dynamic array into a fixed rank, with a typed error.
pub(crate) fn to_rank<T: Clone, D: ndarray::Dimension>(
    path: &Path,
    key: &str,
    a: ArrayD<T>,
) -> Result<ndarray::Array<T, D>> {
    let shape = a.shape().to_vec();
    a.into_dimensionality::<D>()
        .map_err(|_| WorkflowError::BadArray {
            path: path.to_path_buf(),
            key: key.to_string(),
            reason: format!(
                "expected rank {}, got shape {shape:?}",
                D::NDIM.unwrap_or(0)
            ),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An NPY blob with a handwritten header dictionary (version 1.0, padded as numpy does).
    fn npy(dict: &str, payload: &[u8]) -> Vec<u8> {
        let mut header = dict.to_string();
        while !(10 + header.len() + 1).is_multiple_of(64) {
            header.push(' ');
        }
        header.push('\n');
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend_from_slice(&(header.len() as u16).to_le_bytes());
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn headers_parse_like_the_array_reader() {
        let read = |dict: &str| read_npy_header(&mut npy(dict, &[]).as_slice());
        let (d, s, h, f) =
            read("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }").unwrap();
        assert_eq!((d.as_str(), s, h, f), ("<f4", vec![3, 4], 128, false));
        let (_, _, _, f) =
            read("{'descr': '<f4', 'fortran_order': True, 'shape': (3, 4), }").unwrap();
        assert!(f);
        let (d, s, _, _) = read("{'descr': '<c8', 'fortran_order': False, 'shape': (), }").unwrap();
        assert_eq!((d.as_str(), s), ("<c8", vec![]));
        let (_, s, _, _) =
            read("{'descr': '<i8', 'fortran_order': False, 'shape': (7,), }").unwrap();
        assert_eq!(s, vec![7]);
        // A repeated key: the array reader uses the last one, and so must the size check.
        let (_, s, _, _) = read(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'shape': (1000000000,), }",
        )
        .unwrap();
        assert_eq!(s, vec![1_000_000_000]);
        // Structured dtypes are kept verbatim and are of no accepted kind.
        let (d, _, _, _) =
            read("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }").unwrap();
        assert_eq!(kind_of(&d), Kind::Other);
        assert!(read("{'descr': '<f4', 'shape': (1,), 'x': 1, }").is_err());
        assert!(read("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }").is_err());
        assert_eq!(kind_of("|O"), Kind::Other);
        assert_eq!(kind_of(">c16"), Kind::C128);
    }

    #[test]
    fn auto_units_read_integers_and_integral_floats_as_counts() {
        use DiffractionUnits::{Amplitude, Auto, Counts};
        // Integer dtypes are counts whatever their values.
        assert!(decide(Auto, true, [0.0, 1.0].into_iter()).0);
        // Floats: counts only when all are non-negative integers and one reaches 10.
        assert!(decide(Auto, false, [0.0, 3.0, 10.0].into_iter()).0);
        assert!(!decide(Auto, false, [0.0, 3.0, 9.0].into_iter()).0);
        assert!(!decide(Auto, false, [0.0, 30.5, 100.0].into_iter()).0);
        assert!(!decide(Auto, false, [-1.0, 30.0].into_iter()).0);
        // Explicit units win.
        assert!(!decide(Amplitude, true, [100.0].into_iter()).0);
        assert!(decide(Counts, false, [0.5].into_iter()).0);
        assert_eq!(dtype_name("<u2"), "uint16");
        assert_eq!(dtype_name("|u1"), "uint8");
        assert_eq!(dtype_name(">f8"), "float64");
        assert_eq!(dtype_name("<c8"), "<c8");
    }

    #[test]
    fn header_length_is_bounded_before_allocation() {
        let mut blob = b"\x93NUMPY\x02\x00".to_vec();
        blob.extend_from_slice(&u32::MAX.to_le_bytes());
        let e = read_npy_header(&mut blob.as_slice()).unwrap_err();
        assert!(e.contains("implausible"), "{e}");
        let e = read_npy_header(&mut &b"\x93NUMPY\x01"[..]).unwrap_err();
        assert!(e.contains("magic"), "{e}");
    }
}
