//! The raw scan dataset (`RawData`) and its NPZ contract (spec §2.1, §2.2).

mod metadata;
mod npz;
mod stream;

use std::path::{Path, PathBuf};

use ndarray::{Array1, Array2, Array3, ArrayD, Axis, Ix1, Ix2, Ix3};
use num_complex::Complex32;
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::error::{Result, WorkflowError};
pub(crate) use metadata::UnicodeScalar;
pub use npz::DiffractionDecision;
pub(crate) use npz::Reader as NpzFile;
use npz::{Reader, to_rank};
use ptycho_config::DataOptions;
pub use stream::{PatternSource, ScanFile};

/// One scan dataset as stored in the reference NPZ files.
///
/// Coordinates are scan-centre positions in object pixels, `x` = column, `y` = row.
/// `diff3d` holds diffraction **amplitudes** (sqrt of counts), fftshifted, shape `(M, N, N)`.
#[derive(Debug, Clone, PartialEq)]
pub struct RawData {
    /// Scan-centre column positions, object pixels, `(M,)`.
    pub xcoords: Array1<f64>,
    /// Scan-centre row positions, object pixels, `(M,)`.
    pub ycoords: Array1<f64>,
    /// Nominal ("start") column positions, `(M,)`; equal to `xcoords` when absent from the file.
    pub xcoords_start: Array1<f64>,
    /// Nominal ("start") row positions, `(M,)`; equal to `ycoords` when absent from the file.
    pub ycoords_start: Array1<f64>,
    /// Diffraction amplitudes `(M, N, N)`, zero frequency at `(N/2, N/2)`.
    pub diff3d: Array3<f32>,
    /// Probe on the object pixel grid `(N, N)`.
    pub probe_guess: Array2<Complex32>,
    /// Full object `(H, W)`, if known.
    pub object_guess: Option<Array2<Complex32>>,
    /// Scan index `(M,)`, if present.
    pub scan_index: Option<Array1<i64>>,
    /// Precomputed ground-truth patches `(M, N, N)`, if present.
    pub y: Option<Array3<Complex32>>,
    /// Photons per pattern recorded by the simulator in the file's `_metadata`
    /// (`physics_parameters.nphotons`), if any; `ptycho train` uses it unless `--nphotons` is given.
    /// [`RawData::write_npz`] writes it back as `_metadata`.
    pub metadata_nphotons: Option<f64>,
    /// Detector pixels to ignore `(N, N)` (`true` = bad; NPZ key `bad_pixels`, as Ptychodus'
    /// training export writes it): they take no part in the training loss. [`RawData::from_npz`]
    /// sets `diff3d` to 0 there ([`RawData::zero_bad_pixels`]), so that neither the
    /// normalisation nor the network input depends on their values.
    pub bad_pixels: Option<Array2<bool>>,
}

const MEMORY: &str = "<in-memory RawData>";

impl RawData {
    /// Number of scan positions M.
    pub fn n_points(&self) -> usize {
        self.xcoords.len()
    }

    /// Diffraction pattern size N (pixels).
    pub fn n(&self) -> usize {
        self.diff3d.len_of(Axis(2))
    }

    /// Build from in-memory arrays with `*_start` = nominal, validating the contract.
    pub fn from_coords_without_pc(
        xcoords: Array1<f64>,
        ycoords: Array1<f64>,
        diff3d: Array3<f32>,
        probe_guess: Array2<Complex32>,
        object_guess: Option<Array2<Complex32>>,
    ) -> Result<Self> {
        let raw = RawData {
            xcoords_start: xcoords.clone(),
            ycoords_start: ycoords.clone(),
            xcoords,
            ycoords,
            diff3d,
            probe_guess,
            object_guess,
            scan_index: None,
            y: None,
            metadata_nphotons: None,
            bad_pixels: None,
        };
        raw.validate(Path::new(MEMORY))?;
        Ok(raw)
    }

    /// Check the invariants of §2.2 (lengths, square frames, probe size, finiteness, amplitudes ≥ 0).
    pub fn validate(&self, path: &Path) -> Result<()> {
        let m = self.xcoords.len();
        let (len, h, w) = self.diff3d.dim();
        if m > 0 && len != m {
            return Err(WorkflowError::LengthMismatch {
                path: path.to_path_buf(),
                key: "diff3d".into(),
                got: len,
                expected: m,
            });
        }
        if h == 0 || w == 0 {
            return Err(bad(path, "diff3d", "empty diffraction frames"));
        }
        if h != w {
            return Err(bad(
                path,
                "diff3d",
                format!("diffraction patterns are not square: {h}x{w}"),
            ));
        }
        self.header().validate(path)?;
        if let Some(y) = &self.y
            && y.dim() != (m, h, h)
        {
            return Err(bad(
                path,
                "Y",
                format!("shape {:?}, expected ({m}, {h}, {h})", y.shape()),
            ));
        }
        finite(path, "diff3d", self.diff3d.iter().map(|&v| v as f64))?;
        // Amplitudes are square roots of counts; a negative value means the file holds something
        // else (intensities after background subtraction, a phase, garbage).
        if let Some((index, v)) = self.diff3d.iter().enumerate().find(|(_, v)| **v < 0.0) {
            return Err(negative_amplitude(path, v, index));
        }
        Ok(())
    }

    /// Read an NPZ of the reference schema (spec §2.1). Accepts float32/float64 and
    /// complex64/complex128, compressed or stored; `diff3d` or `diffraction`; the legacy
    /// `(N, N, M)` layout; a trailing singleton channel. `_metadata` (the simulator's JSON
    /// string, pickled or unicode) is read only for its `nphotons`; other unknown keys are
    /// skipped with a warning.
    ///
    /// `diff3d` may also be an integer array; its units are decided as [`ptycho_config::DiffractionUnits::Auto`]
    /// says (see [`RawData::load`] to choose them and to learn what was decided).
    pub fn from_npz(path: impl AsRef<Path>) -> Result<Self> {
        Self::load(path, &DataOptions::default()).map(|(raw, _)| raw)
    }

    /// [`RawData::from_npz`] with the units of `diff3d` and the coordinate transforms of
    /// `options`; returns what was decided on the way (units, probe modes), for the caller to
    /// print. A `probeGuess` stack `(modes, N, N)` (Ptychodus's export) gives its mode 0.
    pub fn load(path: impl AsRef<Path>, options: &DataOptions) -> Result<(Self, LoadReport)> {
        let path = path.as_ref();
        let mut r = Reader::open(path)?;
        warn_unknown_keys(&r);
        let coords = read_coords(&mut r)?;
        let m = coords[0].len();
        let dkey = diffraction_key(&r)?;
        let (d, units) = r.diffraction(dkey, options.diffraction_units)?;
        let diff3d = diffraction_layout(path, dkey, d, m)?;
        let n = diff3d.len_of(Axis(1));
        let (header, probe_modes) = read_header(&mut r, coords, n, options)?;
        let y = read_y(&mut r, m, n)?;
        let mut raw = RawData::from_header(header, diff3d, y);
        raw.validate(r.path())?;
        raw.zero_bad_pixels();
        let report = LoadReport {
            path: path.to_path_buf(),
            units,
            probe_modes,
            coordinates: options.transforms_coordinates().then_some(*options),
        };
        Ok((raw, report))
    }

    /// A dataset from its header, its diffraction amplitudes `(M, N, N)` and (optionally) its
    /// ground-truth patches; not validated.
    pub fn from_header(
        header: ScanHeader,
        diff3d: Array3<f32>,
        y: Option<Array3<Complex32>>,
    ) -> Self {
        let ScanHeader {
            n: _,
            xcoords,
            ycoords,
            xcoords_start,
            ycoords_start,
            probe_guess,
            object_guess,
            scan_index,
            metadata_nphotons,
            bad_pixels,
        } = header;
        RawData {
            xcoords,
            ycoords,
            xcoords_start,
            ycoords_start,
            diff3d,
            probe_guess,
            object_guess,
            scan_index,
            y,
            metadata_nphotons,
            bad_pixels,
        }
    }

    /// Everything but the diffraction patterns and the ground-truth patches (a copy).
    pub fn header(&self) -> ScanHeader {
        ScanHeader {
            n: self.n(),
            xcoords: self.xcoords.clone(),
            ycoords: self.ycoords.clone(),
            xcoords_start: self.xcoords_start.clone(),
            ycoords_start: self.ycoords_start.clone(),
            probe_guess: self.probe_guess.clone(),
            object_guess: self.object_guess.clone(),
            scan_index: self.scan_index.clone(),
            metadata_nphotons: self.metadata_nphotons,
            bad_pixels: self.bad_pixels.clone(),
        }
    }

    /// Write the reference key set (xcoords, ycoords, xcoords_start, ycoords_start, diff3d f32,
    /// probeGuess c64, objectGuess c64 if present, scan_index i64), atomically. With
    /// `metadata_nphotons` set, also `_metadata`: the reference's JSON string
    /// (`physics_parameters.nphotons`, `N`) as a 0-d numpy unicode array, which `np.load` reads
    /// without pickle and the reference's `train.py` (and `ptycho train`) take nphotons from.
    pub fn write_npz(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        self.validate(path)?;
        npz::write_raw(self, path)
    }

    /// Keep `n_subsample` rows chosen uniformly without replacement, in ascending order
    /// (spec §2.1); `n_subsample >= M` returns a copy. Rows of every per-scan array are kept.
    pub fn subsample(&self, n_subsample: usize, seed: u64) -> Result<Self> {
        let m = self.n_points();
        check_subsample(n_subsample)?;
        if n_subsample >= m {
            return Ok(self.clone());
        }
        Ok(self.select(&subsample_rows(m, n_subsample, seed)))
    }

    /// The dataset restricted to the given rows (in the given order). Indices must be `< M`.
    pub fn select(&self, idx: &[usize]) -> Self {
        RawData {
            xcoords: self.xcoords.select(Axis(0), idx),
            ycoords: self.ycoords.select(Axis(0), idx),
            xcoords_start: self.xcoords_start.select(Axis(0), idx),
            ycoords_start: self.ycoords_start.select(Axis(0), idx),
            diff3d: self.diff3d.select(Axis(0), idx),
            probe_guess: self.probe_guess.clone(),
            object_guess: self.object_guess.clone(),
            scan_index: self.scan_index.as_ref().map(|s| s.select(Axis(0), idx)),
            y: self.y.as_ref().map(|y| y.select(Axis(0), idx)),
            metadata_nphotons: self.metadata_nphotons,
            bad_pixels: self.bad_pixels.clone(),
        }
    }

    /// Set `diff3d` to 0 at the bad pixels (no-op without a mask); returns how many pixels per
    /// pattern were zeroed. Call after [`RawData::validate`] (the mask's shape is checked there).
    pub fn zero_bad_pixels(&mut self) -> usize {
        let Some(bp) = &self.bad_pixels else {
            return 0;
        };
        let bad: Vec<(usize, usize)> = bp
            .indexed_iter()
            .filter(|(_, b)| **b)
            .map(|(ij, _)| ij)
            .collect();
        for mut frame in self.diff3d.outer_iter_mut() {
            for &ij in &bad {
                if let Some(v) = frame.get_mut(ij) {
                    *v = 0.0;
                }
            }
        }
        if !bad.is_empty() {
            tracing::info!(
                bad_pixels = bad.len(),
                "bad pixels set to 0 and left out of the loss"
            );
        }
        bad.len()
    }
}

/// Everything of a scan but its diffraction patterns and ground-truth patches: what grouping,
/// stitching, metrics and the Ptychodus product need. Small next to the patterns (coordinates,
/// probe, object), so a scan of any size can keep its header in memory while its patterns stay on
/// disk ([`ScanFile`]). Units as [`RawData`].
#[derive(Debug, Clone, PartialEq)]
pub struct ScanHeader {
    /// Diffraction pattern size N (pixels).
    pub n: usize,
    /// Scan-centre column positions, object pixels, `(M,)`.
    pub xcoords: Array1<f64>,
    /// Scan-centre row positions, object pixels, `(M,)`.
    pub ycoords: Array1<f64>,
    /// Nominal column positions, `(M,)`.
    pub xcoords_start: Array1<f64>,
    /// Nominal row positions, `(M,)`.
    pub ycoords_start: Array1<f64>,
    /// Probe on the object pixel grid `(N, N)`.
    pub probe_guess: Array2<Complex32>,
    /// Full object `(H, W)`, if known.
    pub object_guess: Option<Array2<Complex32>>,
    /// Scan index `(M,)`, if present.
    pub scan_index: Option<Array1<i64>>,
    /// Photons per pattern from the file's `_metadata`, if any.
    pub metadata_nphotons: Option<f64>,
    /// Detector pixels to ignore `(N, N)` (`true` = bad); the patterns read are 0 there.
    pub bad_pixels: Option<Array2<bool>>,
}

impl ScanHeader {
    /// Number of scan positions M.
    pub fn n_points(&self) -> usize {
        self.xcoords.len()
    }

    /// The header restricted to the given rows (in the given order). Indices must be `< M`.
    pub fn select(&self, idx: &[usize]) -> Self {
        ScanHeader {
            n: self.n,
            xcoords: self.xcoords.select(Axis(0), idx),
            ycoords: self.ycoords.select(Axis(0), idx),
            xcoords_start: self.xcoords_start.select(Axis(0), idx),
            ycoords_start: self.ycoords_start.select(Axis(0), idx),
            probe_guess: self.probe_guess.clone(),
            object_guess: self.object_guess.clone(),
            scan_index: self.scan_index.as_ref().map(|s| s.select(Axis(0), idx)),
            metadata_nphotons: self.metadata_nphotons,
            bad_pixels: self.bad_pixels.clone(),
        }
    }

    /// The invariants of §2.2 that do not involve the patterns: lengths, probe size `N×N`,
    /// a non-empty object, the bad-pixel mask, finite coordinates.
    pub fn validate(&self, path: &Path) -> Result<()> {
        let m = self.xcoords.len();
        if m == 0 {
            return Err(bad(path, "xcoords", "empty array"));
        }
        let n = self.n;
        for (key, len) in [
            ("ycoords", self.ycoords.len()),
            ("xcoords_start", self.xcoords_start.len()),
            ("ycoords_start", self.ycoords_start.len()),
        ] {
            check_len(path, key, len, m)?;
        }
        let (ph, pw) = self.probe_guess.dim();
        if ph != n || pw != n {
            return Err(bad(
                path,
                "probeGuess",
                format!("probe is {ph}x{pw}, expected {n}x{n} (the diffraction size N)"),
            ));
        }
        if let Some(o) = &self.object_guess
            && o.is_empty()
        {
            return Err(bad(path, "objectGuess", "empty array"));
        }
        if let Some(s) = &self.scan_index {
            check_len(path, "scan_index", s.len(), m)?;
        }
        if let Some(bp) = &self.bad_pixels {
            check_bad_pixels(path, bp, n)?;
        }
        finite(path, "xcoords", self.xcoords.iter().copied())?;
        finite(path, "ycoords", self.ycoords.iter().copied())?;
        finite(path, "xcoords_start", self.xcoords_start.iter().copied())?;
        finite(path, "ycoords_start", self.ycoords_start.iter().copied())?;
        Ok(())
    }
}

/// `n_subsample` rows of `m` chosen uniformly without replacement with `seed`, ascending (the
/// rows [`RawData::subsample`] keeps). Needs `n_subsample < m`.
pub fn subsample_rows(m: usize, n_subsample: usize, seed: u64) -> Vec<usize> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut idx = rand::seq::index::sample(&mut rng, m, n_subsample).into_vec();
    idx.sort_unstable();
    idx
}

/// `n_subsample` must be at least 1.
pub(crate) fn check_subsample(n_subsample: usize) -> Result<()> {
    if n_subsample == 0 {
        return Err(WorkflowError::InvalidOption {
            field: "n_subsample",
            value: "0".into(),
            reason: "must be at least 1".into(),
        });
    }
    Ok(())
}

/// The error of a negative diffraction amplitude at `index` (flat, over the whole stack).
fn negative_amplitude(path: &Path, v: impl std::fmt::Display, index: usize) -> WorkflowError {
    bad(
        path,
        "diff3d",
        format!(
            "negative amplitude {v} at flat index {index} (diffraction data must be amplitudes, sqrt of counts, >= 0)"
        ),
    )
}

/// Warn about NPZ keys the data contract does not use.
fn warn_unknown_keys(r: &Reader) {
    for (key, info) in &r.entries {
        if !npz::CONTRACT_KEYS.contains(&key.as_str())
            && !["ground_truth_patches", "_metadata", BAD_PIXELS].contains(&key.as_str())
        {
            tracing::warn!(file = %r.path().display(), key = %key, dtype = %info.descr, shape = ?info.shape, "skipping unknown NPZ key");
        }
    }
}

/// `xcoords`, `ycoords` and the nominal positions (defaulting to them), as stored (before any
/// coordinate transform).
fn read_coords(r: &mut Reader) -> Result<[Array1<f64>; 4]> {
    let path = r.path().to_path_buf();
    let xcoords = read_1d(r, "xcoords")?;
    let m = xcoords.len();
    if m == 0 {
        return Err(bad(&path, "xcoords", "empty array"));
    }
    let ycoords = read_1d(r, "ycoords")?;
    check_len(&path, "ycoords", ycoords.len(), m)?;
    let mut start = |key: &str, default: &Array1<f64>| -> Result<Array1<f64>> {
        if !r.has(key) {
            return Ok(default.clone());
        }
        let a = read_1d(r, key)?;
        check_len(&path, key, a.len(), m)?;
        Ok(a)
    };
    let xcoords_start = start("xcoords_start", &xcoords)?;
    let ycoords_start = start("ycoords_start", &ycoords)?;
    Ok([xcoords, ycoords, xcoords_start, ycoords_start])
}

/// The key of the diffraction stack: `diff3d`, else `diffraction`.
fn diffraction_key(r: &Reader) -> Result<&'static str> {
    if r.has("diff3d") {
        Ok("diff3d")
    } else if r.has("diffraction") {
        Ok("diffraction")
    } else {
        Err(WorkflowError::MissingKey {
            path: r.path().to_path_buf(),
            key: "diff3d".into(),
        })
    }
}

/// The header of a scan of `m = coords[0].len()` positions and patterns of `n×n`: probe (mode 0
/// of a stack; also returns the number of modes), object, scan index, bad-pixel mask and the
/// `_metadata` photon count; the coordinates transformed as `options` say. Not validated.
fn read_header(
    r: &mut Reader,
    coords: [Array1<f64>; 4],
    n: usize,
    options: &DataOptions,
) -> Result<(ScanHeader, Option<usize>)> {
    let path = r.path().to_path_buf();
    let m = coords[0].len();
    let probe = squeeze_trailing(r.complex32("probeGuess")?);
    let (probe, probe_modes) = probe_mode_zero(probe, n);
    let probe_guess: Array2<Complex32> = to_rank::<_, Ix2>(&path, "probeGuess", probe)?;
    if probe_guess.dim() != (n, n) {
        return Err(bad(
            &path,
            "probeGuess",
            format!(
                "probe is {:?}, expected ({n}, {n}) (the diffraction size N)",
                probe_guess.shape()
            ),
        ));
    }
    let object_guess = if r.has("objectGuess") {
        let o = squeeze_trailing(r.complex32("objectGuess")?);
        let o: Array2<Complex32> = to_rank::<_, Ix2>(&path, "objectGuess", o)?;
        if o.is_empty() {
            return Err(bad(&path, "objectGuess", "empty array"));
        }
        Some(o)
    } else {
        None
    };
    let scan_index = if r.has("scan_index") {
        let s = r.int_i64("scan_index")?;
        let s: Array1<i64> = to_rank::<_, Ix1>(&path, "scan_index", s)?;
        check_len(&path, "scan_index", s.len(), m)?;
        Some(s)
    } else {
        None
    };
    let bad_pixels = read_bad_pixels(r, n)?;
    let [xcoords, ycoords, xcoords_start, ycoords_start] = transform_coordinates(coords, options);
    let header = ScanHeader {
        n,
        xcoords,
        ycoords,
        xcoords_start,
        ycoords_start,
        probe_guess,
        object_guess,
        scan_index,
        metadata_nphotons: metadata::metadata_nphotons(r),
        bad_pixels,
    };
    Ok((header, probe_modes))
}

/// The ground-truth patches `Y` `(M, N, N)` if the file has usable ones (a wrong shape is logged
/// and ignored; unreadable or non-finite data is an error).
fn read_y(r: &mut Reader, m: usize, n: usize) -> Result<Option<Array3<Complex32>>> {
    if !r.has("Y") {
        return Ok(None);
    }
    let path = r.path().to_path_buf();
    let y = squeeze_trailing(r.complex32("Y")?);
    Ok(match to_rank::<_, Ix3>(&path, "Y", y) {
        Ok(y) if y.dim() == (m, n, n) => Some(y),
        Ok(y) => {
            tracing::warn!(file = %path.display(), key = "Y", shape = ?y.shape(), "ignoring Y: shape is not (M, N, N)");
            None
        }
        Err(e) => {
            tracing::warn!(file = %path.display(), key = "Y", "ignoring Y: {e}");
            None
        }
    })
}

/// NPZ key of the bad-pixel mask.
const BAD_PIXELS: &str = "bad_pixels";

/// The mask must be `(N, N)` and leave at least one pixel.
fn check_bad_pixels(path: &Path, bp: &Array2<bool>, n: usize) -> Result<()> {
    if bp.dim() != (n, n) {
        return Err(bad(
            path,
            BAD_PIXELS,
            format!(
                "shape {:?}, expected ({n}, {n}) (the diffraction size N)",
                bp.shape()
            ),
        ));
    }
    if bp.iter().all(|b| *b) {
        return Err(bad(
            path,
            BAD_PIXELS,
            format!("all {} pixels are marked bad", n * n),
        ));
    }
    Ok(())
}

/// `bad_pixels` as numpy bool, or integers 0/1; absent → `None`.
fn read_bad_pixels(r: &mut Reader, n: usize) -> Result<Option<Array2<bool>>> {
    let Some(info) = r.entries.get(BAD_PIXELS).cloned() else {
        return Ok(None);
    };
    let path = r.path().to_path_buf();
    let a: ArrayD<bool> = if info.descr.trim_start_matches(['<', '>', '=', '|']) == "b1" {
        r.read_raw::<bool>(BAD_PIXELS)
            .map_err(|reason| bad(&path, BAD_PIXELS, reason))?
    } else if matches!(info.kind, npz::Kind::Int(_)) {
        let v = r.int_i64(BAD_PIXELS)?;
        if let Some(x) = v.iter().find(|x| **x != 0 && **x != 1) {
            return Err(bad(
                &path,
                BAD_PIXELS,
                format!("value {x}: an integer mask must hold only 0 and 1"),
            ));
        }
        v.mapv(|x| x == 1)
    } else {
        return Err(bad(
            &path,
            BAD_PIXELS,
            format!("dtype {} is not bool or integer", info.descr),
        ));
    };
    if a.shape() != [n, n] {
        return Err(bad(
            &path,
            BAD_PIXELS,
            format!(
                "shape {:?}, expected ({n}, {n}) (the diffraction size N)",
                a.shape()
            ),
        ));
    }
    Ok(Some(to_rank::<_, Ix2>(&path, BAD_PIXELS, a)?))
}

fn bad(path: &Path, key: &str, reason: impl Into<String>) -> WorkflowError {
    WorkflowError::BadArray {
        path: path.to_path_buf(),
        key: key.to_string(),
        reason: reason.into(),
    }
}

fn check_len(path: &Path, key: &str, got: usize, expected: usize) -> Result<()> {
    if got != expected {
        return Err(WorkflowError::LengthMismatch {
            path: PathBuf::from(path),
            key: key.into(),
            got,
            expected,
        });
    }
    Ok(())
}

fn finite(path: &Path, key: &str, it: impl Iterator<Item = f64>) -> Result<()> {
    for (index, v) in it.enumerate() {
        if !v.is_finite() {
            return Err(WorkflowError::NonFinite {
                path: path.to_path_buf(),
                key: key.into(),
                index,
            });
        }
    }
    Ok(())
}

fn read_1d(r: &mut Reader, key: &str) -> Result<Array1<f64>> {
    let path = r.path().to_path_buf();
    let a = r.real_f64(key)?;
    to_rank::<_, Ix1>(&path, key, a)
}

/// Drop a trailing axis of length 1 (only when rank > 2).
fn squeeze_trailing<T>(a: ArrayD<T>) -> ArrayD<T> {
    let nd = a.ndim();
    if nd > 2 && a.shape()[nd - 1] == 1 {
        a.index_axis_move(Axis(nd - 1), 0)
    } else {
        a
    }
}

/// Bring a diffraction stack into `(M, N, N)`: squeeze a trailing singleton channel, accept the
/// legacy `(N, N, M)` layout by matching the scan axis to `len(xcoords)`.
fn diffraction_layout(path: &Path, key: &str, d: ArrayD<f32>, m: usize) -> Result<Array3<f32>> {
    let d = squeeze_trailing(d);
    if d.is_empty() {
        return Err(bad(
            path,
            key,
            format!("empty array of shape {:?}", d.shape()),
        ));
    }
    let d: Array3<f32> = to_rank::<_, Ix3>(path, key, d)?;
    let (a, b, c) = d.dim();
    let d = if a == m {
        d
    } else if c == m {
        tracing::info!(file = %path.display(), key, "legacy (N, N, M) diffraction layout transposed to (M, N, N)");
        d.permuted_axes([2, 0, 1]).as_standard_layout().to_owned()
    } else {
        return Err(WorkflowError::LengthMismatch {
            path: path.to_path_buf(),
            key: key.into(),
            got: a,
            expected: m,
        });
    };
    let (_, h, w) = d.dim();
    if h != w {
        return Err(bad(
            path,
            key,
            format!("diffraction patterns are not square: {h}x{w} (shape {a}x{b}x{c})"),
        ));
    }
    Ok(d)
}

/// The `objectGuess` and `probeGuess` of an NPZ (the input of `ptycho simulate --input-file`):
/// complex or real, a trailing singleton channel squeezed; a probe stack `(modes, N, N)` gives
/// its mode 0. Other keys are not read.
pub fn object_and_probe(path: &Path) -> Result<(Array2<Complex32>, Array2<Complex32>)> {
    let mut r = Reader::open(path)?;
    let o = squeeze_trailing(r.complex32("objectGuess")?);
    let object: Array2<Complex32> = to_rank::<_, Ix2>(path, "objectGuess", o)?;
    if object.is_empty() {
        return Err(bad(path, "objectGuess", "empty array"));
    }
    let p = squeeze_trailing(r.complex32("probeGuess")?);
    let n = p.shape().last().copied().unwrap_or(0);
    let (p, _) = probe_mode_zero(p, n);
    let probe: Array2<Complex32> = to_rank::<_, Ix2>(path, "probeGuess", p)?;
    let (ph, pw) = probe.dim();
    if ph != pw || ph == 0 {
        return Err(bad(
            path,
            "probeGuess",
            format!("probe is {ph}x{pw}, expected a non-empty square"),
        ));
    }
    Ok((object, probe))
}

/// What [`RawData::load`] decided while reading a file, for the caller to print.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadReport {
    /// The file read.
    pub path: PathBuf,
    /// The units of its diffraction stack.
    pub units: DiffractionDecision,
    /// The number of modes when `probeGuess` was a `(modes, N, N)` stack (mode 0 was used).
    pub probe_modes: Option<usize>,
    /// The coordinate transforms applied, if any.
    pub coordinates: Option<DataOptions>,
}

impl LoadReport {
    /// One line per decision: the units always, the probe mode and the coordinate transforms
    /// when they apply.
    pub fn lines(&self) -> Vec<String> {
        let file = self.path.display();
        let mut out = vec![format!("{file}: {}", self.units)];
        if let Some(k) = self.probe_modes {
            out.push(format!(
                "{file}: `probeGuess` is a stack of {k} probe mode{}; using mode 0",
                if k == 1 { "" } else { "s" }
            ));
        }
        if let Some(o) = &self.coordinates {
            out.push(format!(
                "{file}: coordinates transformed at load: flip_x {}, flip_y {}, swap_xy {}, coord_scale {}",
                o.flip_x, o.flip_y, o.swap_xy, o.coord_scale
            ));
        }
        out
    }
}

/// Mode 0 of a probe stack `(modes, N, N)` (Ptychodus writes its probe this way), with the mode
/// count; any other array is returned unchanged.
fn probe_mode_zero(probe: ArrayD<Complex32>, n: usize) -> (ArrayD<Complex32>, Option<usize>) {
    let shape = probe.shape().to_vec();
    if shape.len() == 3 && shape[0] >= 1 && shape[1] == n && shape[2] == n {
        (probe.index_axis_move(Axis(0), 0), Some(shape[0]))
    } else {
        (probe, None)
    }
}

/// The reference's `load_data` transforms, in its order: negate x, negate y, swap x and y, scale.
/// The arrays are `[x, y, x_start, y_start]`.
fn transform_coordinates(c: [Array1<f64>; 4], o: &DataOptions) -> [Array1<f64>; 4] {
    let [mut x, mut y, mut xs, mut ys] = c;
    if o.flip_x {
        x.mapv_inplace(|v| -v);
        xs.mapv_inplace(|v| -v);
    }
    if o.flip_y {
        y.mapv_inplace(|v| -v);
        ys.mapv_inplace(|v| -v);
    }
    if o.swap_xy {
        std::mem::swap(&mut x, &mut y);
        std::mem::swap(&mut xs, &mut ys);
    }
    if o.coord_scale != 1.0 {
        for a in [&mut x, &mut y, &mut xs, &mut ys] {
            a.mapv_inplace(|v| v * o.coord_scale);
        }
    }
    [x, y, xs, ys]
}

/// The data files of a Ptychodus training folder (`train_data.npz`, `test_data.npz`): for a
/// directory `path`, its `train_data.npz` and, when present, its `test_data.npz`; for anything
/// else, `path` itself and no test file.
pub fn training_files(path: &Path) -> Result<(PathBuf, Option<PathBuf>)> {
    if !path.is_dir() {
        return Ok((path.to_path_buf(), None));
    }
    let train = path.join(TRAIN_FILE_NAME);
    if !train.is_file() {
        return Err(WorkflowError::NotTrainingFolder {
            path: path.to_path_buf(),
            missing: TRAIN_FILE_NAME,
        });
    }
    let test = path.join(TEST_FILE_NAME);
    Ok((train, test.is_file().then_some(test)))
}

/// The test file of a Ptychodus training folder (its `test_data.npz`), or `path` itself.
pub fn test_file(path: &Path) -> Result<PathBuf> {
    if !path.is_dir() {
        return Ok(path.to_path_buf());
    }
    let test = path.join(TEST_FILE_NAME);
    if !test.is_file() {
        return Err(WorkflowError::NotTrainingFolder {
            path: path.to_path_buf(),
            missing: TEST_FILE_NAME,
        });
    }
    Ok(test)
}

/// Name of the training file in a Ptychodus training folder.
pub const TRAIN_FILE_NAME: &str = "train_data.npz";
/// Name of the test file in a Ptychodus training folder.
pub const TEST_FILE_NAME: &str = "test_data.npz";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coordinate_transforms_follow_the_reference_order() {
        let c = || {
            [
                Array1::from(vec![1.0, 2.0]),
                Array1::from(vec![10.0, 20.0]),
                Array1::from(vec![1.5, 2.5]),
                Array1::from(vec![10.5, 20.5]),
            ]
        };
        let o = DataOptions {
            flip_x: true,
            swap_xy: true,
            coord_scale: 2.0,
            ..DataOptions::default()
        };
        // Negate x, then swap, then scale: x ← 2·y, y ← 2·(−x).
        let [x, y, xs, ys] = transform_coordinates(c(), &o);
        assert_eq!(x.to_vec(), vec![20.0, 40.0]);
        assert_eq!(y.to_vec(), vec![-2.0, -4.0]);
        assert_eq!(xs.to_vec(), vec![21.0, 41.0]);
        assert_eq!(ys.to_vec(), vec![-3.0, -5.0]);
        let o = DataOptions {
            flip_y: true,
            ..DataOptions::default()
        };
        let [x, y, _, ys] = transform_coordinates(c(), &o);
        assert_eq!(
            (x.to_vec(), y.to_vec()),
            (vec![1.0, 2.0], vec![-10.0, -20.0])
        );
        assert_eq!(ys.to_vec(), vec![-10.5, -20.5]);
        assert!(!DataOptions::default().transforms_coordinates());
    }

    #[test]
    fn probe_stacks_give_mode_zero() {
        let stack = ArrayD::from_shape_fn(vec![3, 4, 4], |i| Complex32::new(i[0] as f32, 0.0));
        let (p, modes) = probe_mode_zero(stack, 4);
        assert_eq!((p.shape(), modes), (&[4usize, 4][..], Some(3)));
        assert!(p.iter().all(|z| z.re == 0.0));
        // A plain (N, N) probe, or a stack of another size, is left alone.
        let plain = ArrayD::<Complex32>::zeros(vec![4, 4]);
        assert_eq!(probe_mode_zero(plain, 4).1, None);
        let other = ArrayD::<Complex32>::zeros(vec![2, 8, 8]);
        assert_eq!(probe_mode_zero(other, 4).0.shape(), &[2, 8, 8]);
    }
}
