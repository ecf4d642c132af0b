//! Scans whose diffraction patterns stay on disk, read in pieces (issue: beamline-size scans in
//! bounded memory).
//!
//! A [`ScanFile`] holds the [`ScanHeader`] of an NPZ (coordinates, probe, object: small) and reads
//! the diffraction stack by rows when asked: in place with positioned reads when the NPZ entry is
//! stored (what `np.savez` and `ptycho simulate` write), from an anonymous temporary file when it
//! is compressed (decompressed once, in a bounded buffer). Opening it reads the stack once, in
//! blocks, for everything [`RawData::load`] checks and decides on the whole stack: finite
//! values, the units (`auto`), no negative counts or amplitudes; and it keeps each pattern's
//! energy `Σ a²` for the normalisation. The patterns read are those `RawData::load` would hold:
//! amplitudes (counts square-rooted as it does, per dtype), bad pixels set to 0.
//!
//! Layouts that cannot be read by rows (the legacy `(N, N, M)` stack, Fortran order) are loaded
//! whole, as before; [`ScanFile::streams`] says which happened.

use std::fs::File;
use std::path::{Path, PathBuf};

use ndarray::{Array3, Axis};
use ptycho_config::{DataOptions, DiffractionUnits};

use super::npz::{EntryInfo, IntegralEvidence, Kind, Reader, StoredCrc, decision};
use super::{
    LoadReport, RawData, ScanHeader, bad, diffraction_key, negative_amplitude, read_coords,
    read_header, warn_unknown_keys,
};
use crate::error::{Result, WorkflowError};

/// Diffraction amplitudes by scan row: what inference reads, from memory or from disk.
pub trait PatternSource: Sync {
    /// Pattern size N.
    fn pattern_size(&self) -> usize;
    /// Number of patterns M.
    fn n_patterns(&self) -> usize;
    /// Amplitudes of `rows` (each `< M`, any order, repeats allowed) into `out`,
    /// `(rows.len(), N, N)` row-major.
    fn read_patterns(&self, rows: &[usize], out: &mut [f32]) -> Result<()>;
    /// `Σ_{h,w} a²` of every pattern, accumulated in f64.
    fn pattern_energies(&self) -> Result<Vec<f64>>;
}

fn energy(pattern: impl IntoIterator<Item = f32>) -> f64 {
    pattern
        .into_iter()
        .map(|v| f64::from(v) * f64::from(v))
        .sum()
}

impl PatternSource for RawData {
    fn pattern_size(&self) -> usize {
        self.n()
    }

    fn n_patterns(&self) -> usize {
        self.diff3d.len_of(Axis(0))
    }

    fn read_patterns(&self, rows: &[usize], out: &mut [f32]) -> Result<()> {
        copy_rows(&self.diff3d, rows, out)
    }

    fn pattern_energies(&self) -> Result<Vec<f64>> {
        Ok(self
            .diff3d
            .outer_iter()
            .map(|p| energy(p.iter().copied()))
            .collect())
    }
}

fn copy_rows(stack: &Array3<f32>, rows: &[usize], out: &mut [f32]) -> Result<()> {
    let (m, n, _) = stack.dim();
    let nn = n * n;
    check_rows(rows, m, nn, out.len())?;
    for (dst, &r) in out.chunks_exact_mut(nn).zip(rows) {
        for (d, s) in dst.iter_mut().zip(stack.index_axis(Axis(0), r).iter()) {
            *d = *s;
        }
    }
    Ok(())
}

fn check_rows(rows: &[usize], m: usize, nn: usize, out: usize) -> Result<()> {
    if out != rows.len() * nn {
        return Err(WorkflowError::Grouping {
            reason: format!(
                "pattern buffer holds {out} values, {} rows need {}",
                rows.len(),
                rows.len() * nn
            ),
        });
    }
    if let Some(&r) = rows.iter().find(|&&r| r >= m) {
        return Err(WorkflowError::Grouping {
            reason: format!("index {r} out of range for a dataset of {m} scan points"),
        });
    }
    Ok(())
}

/// A scan read from an NPZ whose diffraction patterns are read by rows when needed; see the
/// module documentation.
#[derive(Debug)]
pub struct ScanFile {
    header: ScanHeader,
    patterns: Patterns,
}

#[derive(Debug)]
enum Patterns {
    Disk(DiskPatterns),
    Memory(Array3<f32>),
}

impl ScanFile {
    /// Open the NPZ at `path` with the units and coordinate transforms of `options` (as
    /// [`RawData::load`]); returns what was decided on the way. Reads the diffraction stack once
    /// (in blocks) to check and decide on it, and keeps only the header and one number per
    /// pattern. Ground-truth patches `Y` are not read.
    pub fn open(path: impl AsRef<Path>, options: &DataOptions) -> Result<(Self, LoadReport)> {
        let path = path.as_ref();
        let mut r = Reader::open(path)?;
        let dkey = diffraction_key(&r)?;
        let info = r.entry_info(dkey)?;
        let Some(elem) = Elem::of(&info) else {
            // Not readable by rows: the whole stack, as RawData holds it.
            drop(r);
            let (raw, report) = RawData::load(path, options)?;
            return Ok((ScanFile::from(raw), report));
        };
        warn_unknown_keys(&r);
        let coords = read_coords(&mut r)?;
        let m = coords[0].len();
        let shape = &info.shape;
        if shape[0] != m {
            return Err(WorkflowError::LengthMismatch {
                path: path.to_path_buf(),
                key: dkey.into(),
                got: shape[0],
                expected: m,
            });
        }
        let n = shape[1];
        let (header, probe_modes) = read_header(&mut r, coords, n, options)?;
        header.validate(path)?;
        let (file, offset, crc) = r.entry_data_file(dkey)?;
        let (disk, counts_reason) = DiskPatterns::scan(
            DiskLayout {
                path: path.to_path_buf(),
                key: dkey,
                file,
                offset,
                elem,
                n,
                m,
            },
            &info,
            options.diffraction_units,
            header.bad_pixels.as_ref(),
            crc,
        )?;
        let report = LoadReport {
            path: path.to_path_buf(),
            units: decision(dkey, &info, options.diffraction_units, counts_reason),
            probe_modes,
            coordinates: options.transforms_coordinates().then_some(*options),
        };
        Ok((
            ScanFile {
                header,
                patterns: Patterns::Disk(disk),
            },
            report,
        ))
    }

    /// Everything but the patterns.
    pub fn header(&self) -> &ScanHeader {
        &self.header
    }

    /// Whether the patterns are read from disk by rows (false: they are held in memory).
    pub fn streams(&self) -> bool {
        matches!(self.patterns, Patterns::Disk(_))
    }

    /// Every pattern read into memory: the [`RawData`] that [`RawData::load`] gives for the
    /// same file and options, except that ground-truth patches `Y` are not kept.
    pub fn to_raw(&self) -> Result<RawData> {
        let (m, n) = (self.n_patterns(), self.pattern_size());
        let mut diff3d = Array3::<f32>::zeros((m, n, n));
        let rows: Vec<usize> = (0..m).collect();
        self.read_patterns(
            &rows,
            diff3d
                .as_slice_mut()
                .expect("a freshly allocated array is contiguous"),
        )?;
        Ok(RawData::from_header(self.header.clone(), diff3d, None))
    }
}

impl From<RawData> for ScanFile {
    /// A scan held in memory (its ground-truth patches `Y` are dropped).
    fn from(raw: RawData) -> Self {
        let header = raw.header();
        ScanFile {
            header,
            patterns: Patterns::Memory(raw.diff3d),
        }
    }
}

impl PatternSource for ScanFile {
    fn pattern_size(&self) -> usize {
        self.header.n
    }

    fn n_patterns(&self) -> usize {
        self.header.n_points()
    }

    fn read_patterns(&self, rows: &[usize], out: &mut [f32]) -> Result<()> {
        match &self.patterns {
            Patterns::Disk(d) => d.read(rows, out),
            Patterns::Memory(a) => copy_rows(a, rows, out),
        }
    }

    fn pattern_energies(&self) -> Result<Vec<f64>> {
        match &self.patterns {
            Patterns::Disk(d) => Ok(d.energies.clone()),
            Patterns::Memory(a) => Ok(a.outer_iter().map(|p| energy(p.iter().copied())).collect()),
        }
    }
}

/// Element types a diffraction stack may have on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Elem {
    F32,
    F64,
    I8,
    U8,
    I16,
    U16,
    I32,
    U32,
    I64,
    U64,
}

/// Whether values are stored big-endian (`>`), else little-endian (`<`, `|`, `=` on the
/// little-endian hosts we build for).
type BigEndian = bool;

impl Elem {
    /// The element type of a stack that can be read by rows: `(M, N, N)` or `(M, N, N, 1)`, C
    /// order, non-empty square patterns, a real dtype. `None` otherwise.
    fn of(info: &EntryInfo) -> Option<(Elem, BigEndian)> {
        let s = &info.shape;
        let rows_layout = (s.len() == 3 || (s.len() == 4 && s[3] == 1)) && s[1] == s[2] && s[1] > 0;
        if info.fortran || !rows_layout || s[0] == 0 {
            return None;
        }
        let big = info.descr.starts_with('>');
        let elem = match info.descr.trim_start_matches(['<', '>', '=', '|']) {
            "f4" => Elem::F32,
            "f8" => Elem::F64,
            "i1" => Elem::I8,
            "u1" => Elem::U8,
            "i2" => Elem::I16,
            "u2" => Elem::U16,
            "i4" => Elem::I32,
            "u4" => Elem::U32,
            "i8" => Elem::I64,
            "u8" => Elem::U64,
            _ => return None,
        };
        debug_assert!(matches!(info.kind, Kind::F32 | Kind::F64 | Kind::Int(_)));
        Some((elem, big))
    }

    fn size(self) -> usize {
        match self {
            Elem::I8 | Elem::U8 => 1,
            Elem::I16 | Elem::U16 => 2,
            Elem::F32 | Elem::I32 | Elem::U32 => 4,
            Elem::F64 | Elem::I64 | Elem::U64 => 8,
        }
    }

    fn integer(self) -> bool {
        !matches!(self, Elem::F32 | Elem::F64)
    }
}

/// Call `f` with each whole `W`-byte element of `bytes`.
fn each<const W: usize>(bytes: &[u8], mut f: impl FnMut([u8; W])) {
    for b in bytes.chunks_exact(W) {
        f(b.try_into().expect("chunks_exact gives whole elements"));
    }
}

/// Decode `bytes` (whole elements) and call `f(value as f64, amplitude)` for each, where the
/// amplitude is what `RawData::load` stores for that dtype: f32 values as they are (or their
/// f32 square root as counts), f64 and integers square-rooted in f64 and rounded to f32.
fn decode((elem, big): (Elem, BigEndian), counts: bool, bytes: &[u8], mut f: impl FnMut(f64, f32)) {
    macro_rules! num {
        ($t:ty, $b:expr) => {
            if big {
                <$t>::from_be_bytes($b)
            } else {
                <$t>::from_le_bytes($b)
            }
        };
    }
    let mut wide = |v: f64| f(v, (if counts { v.sqrt() } else { v }) as f32);
    match elem {
        Elem::F32 => each::<4>(bytes, |b| {
            let v = num!(f32, b);
            f(f64::from(v), if counts { v.sqrt() } else { v })
        }),
        Elem::F64 => each::<8>(bytes, |b| wide(num!(f64, b))),
        Elem::I8 => each::<1>(bytes, |b| wide(f64::from(num!(i8, b)))),
        Elem::U8 => each::<1>(bytes, |b| wide(f64::from(num!(u8, b)))),
        Elem::I16 => each::<2>(bytes, |b| wide(f64::from(num!(i16, b)))),
        Elem::U16 => each::<2>(bytes, |b| wide(f64::from(num!(u16, b)))),
        Elem::I32 => each::<4>(bytes, |b| wide(f64::from(num!(i32, b)))),
        Elem::U32 => each::<4>(bytes, |b| wide(f64::from(num!(u32, b)))),
        Elem::I64 => each::<8>(bytes, |b| wide(num!(i64, b) as f64)),
        Elem::U64 => each::<8>(bytes, |b| wide(num!(u64, b) as f64)),
    }
}

/// Fill `buf` from `file` at `offset` (positioned read: `&File` is shared by threads).
fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
    }
    #[cfg(windows)]
    {
        let (mut buf, mut offset) = (buf, offset);
        while !buf.is_empty() {
            match std::os::windows::fs::FileExt::seek_read(file, buf, offset) {
                Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
                Ok(k) => {
                    buf = &mut buf[k..];
                    offset += k as u64;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// Patterns read per block when scanning or reading a run of consecutive rows: bounds the byte
/// buffer (256 patterns of 128×128 float64 = 32 MiB).
const BLOCK_PATTERNS: usize = 256;

struct DiskLayout {
    path: PathBuf,
    key: &'static str,
    file: File,
    /// Byte offset of pattern 0 in `file`.
    offset: u64,
    elem: (Elem, BigEndian),
    n: usize,
    m: usize,
}

struct DiskPatterns {
    layout: DiskLayout,
    counts: bool,
    /// Flat pixel indices (`row·N + col`) of the bad pixels, set to 0 in every pattern read.
    bad: Vec<usize>,
    energies: Vec<f64>,
}

impl std::fmt::Debug for DiskPatterns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskPatterns")
            .field("path", &self.layout.path)
            .field("key", &self.layout.key)
            .field("offset", &self.layout.offset)
            .field("elem", &self.layout.elem)
            .field("patterns", &self.layout.m)
            .field("n", &self.layout.n)
            .field("counts", &self.counts)
            .finish_non_exhaustive()
    }
}

impl DiskPatterns {
    /// Read the whole stack once in blocks: finite values, the units decision, no negative
    /// counts or amplitudes, each pattern's energy. Errors as [`RawData::load`] reports them.
    fn scan(
        layout: DiskLayout,
        info: &EntryInfo,
        units: DiffractionUnits,
        bad_pixels: Option<&ndarray::Array2<bool>>,
        crc: Option<StoredCrc>,
    ) -> Result<(Self, (bool, &'static str))> {
        let (n, m) = (layout.n, layout.m);
        let nn = n * n;
        let masked: Vec<usize> = bad_pixels
            .map(|bp| {
                bp.iter()
                    .enumerate()
                    .filter(|(_, b)| **b)
                    .map(|(k, _)| k)
                    .collect()
            })
            .unwrap_or_default();
        let is_bad = {
            let mut v = vec![false; nn];
            for &k in &masked {
                v[k] = true;
            }
            v
        };
        let integer = layout.elem.0.integer();
        let mut evidence = IntegralEvidence::default();
        // Energies of both readings (as stored; square-rooted), picked once decided.
        let mut e_stored = vec![0f64; m];
        let mut e_counts = vec![0f64; m];
        let mut first_negative: Option<(usize, f64)> = None;
        let mut non_finite: Option<usize> = None;
        let mut bytes = Vec::new();
        // A stored entry read in place: its CRC over the preamble, every pattern and any tail.
        let mut hasher = crc32fast::Hasher::new();
        if let Some(c) = crc {
            layout.read_range(c.entry_start, layout.offset - c.entry_start, &mut bytes)?;
            hasher.update(&bytes);
        }
        for start in (0..m).step_by(BLOCK_PATTERNS) {
            let count = BLOCK_PATTERNS.min(m - start);
            layout.read_bytes(start, count, &mut bytes)?;
            if crc.is_some() {
                hasher.update(&bytes);
            }
            let mut k = start * nn;
            let (mut es, mut ec) = (0f64, 0f64);
            decode(layout.elem, false, &bytes, |v, a| {
                if non_finite.is_none() && !v.is_finite() {
                    non_finite = Some(k);
                }
                if v < 0.0 && first_negative.is_none() {
                    first_negative = Some((k, v));
                }
                evidence.observe(v);
                let pixel = k % nn;
                if !is_bad[pixel] {
                    es += f64::from(a) * f64::from(a);
                    let c = if layout.elem.0 == Elem::F32 {
                        f64::from(a.sqrt())
                    } else {
                        f64::from(v.sqrt() as f32)
                    };
                    ec += c * c;
                }
                k += 1;
                if pixel == nn - 1 {
                    let p = k / nn - 1;
                    e_stored[p] = es;
                    e_counts[p] = ec;
                    (es, ec) = (0.0, 0.0);
                }
            });
            if let Some(index) = non_finite {
                return Err(WorkflowError::NonFinite {
                    path: layout.path.clone(),
                    key: layout.key.into(),
                    index,
                });
            }
        }
        if let Some(c) = crc {
            let end = layout.offset + (m * nn * layout.elem.0.size()) as u64;
            let tail = (c.entry_start + c.entry_len).saturating_sub(end);
            layout.read_range(end, tail, &mut bytes)?;
            hasher.update(&bytes);
            let got = hasher.finalize();
            if got != c.crc {
                return Err(WorkflowError::Truncated {
                    path: layout.path.clone(),
                    key: layout.key.into(),
                    reason: format!(
                        "CRC-32 {got:08x} of the stored entry, {:08x} declared",
                        c.crc
                    ),
                });
            }
        }
        let (counts, reason) = evidence.decide(units, integer);
        if let Some((index, v)) = first_negative {
            return Err(if counts {
                bad(
                    &layout.path,
                    layout.key,
                    format!(
                        "negative count {v} at flat index {index} (photon counts must be >= 0)"
                    ),
                )
            } else {
                negative_amplitude(&layout.path, v as f32, index)
            });
        }
        debug_assert_eq!(info.shape[0], m);
        let energies = if counts { e_counts } else { e_stored };
        Ok((
            DiskPatterns {
                layout,
                counts,
                bad: masked,
                energies,
            },
            (counts, reason),
        ))
    }

    fn read(&self, rows: &[usize], out: &mut [f32]) -> Result<()> {
        let (n, m) = (self.layout.n, self.layout.m);
        let nn = n * n;
        check_rows(rows, m, nn, out.len())?;
        let mut bytes = Vec::new();
        let mut k = 0;
        while k < rows.len() {
            // A run of consecutive rows is one read.
            let mut len = 1;
            while k + len < rows.len() && len < BLOCK_PATTERNS && rows[k + len] == rows[k] + len {
                len += 1;
            }
            self.layout.read_bytes(rows[k], len, &mut bytes)?;
            let dst = &mut out[k * nn..(k + len) * nn];
            let mut i = 0;
            decode(self.layout.elem, self.counts, &bytes, |_, a| {
                dst[i] = a;
                i += 1;
            });
            for p in dst.chunks_exact_mut(nn) {
                for &b in &self.bad {
                    p[b] = 0.0;
                }
            }
            k += len;
        }
        Ok(())
    }
}

impl DiskLayout {
    /// The bytes of patterns `start..start + count` into `buf` (resized).
    fn read_bytes(&self, start: usize, count: usize, buf: &mut Vec<u8>) -> Result<()> {
        let per = (self.n * self.n * self.elem.0.size()) as u64;
        buf.resize(count * per as usize, 0);
        read_exact_at(&self.file, buf, self.offset + start as u64 * per).map_err(|e| {
            WorkflowError::Truncated {
                path: self.path.clone(),
                key: self.key.into(),
                reason: format!("reading patterns {start}..{}: {e}", start + count),
            }
        })
    }

    /// `len` bytes of the file at `at` into `buf` (resized).
    fn read_range(&self, at: u64, len: u64, buf: &mut Vec<u8>) -> Result<()> {
        buf.resize(len as usize, 0);
        read_exact_at(&self.file, buf, at).map_err(|e| WorkflowError::Truncated {
            path: self.path.clone(),
            key: self.key.into(),
            reason: format!("reading {len} bytes at {at}: {e}"),
        })
    }
}
