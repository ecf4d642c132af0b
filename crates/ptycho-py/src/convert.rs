//! A scan as Python sees it (a dict of numpy arrays under the NPZ contract's key names) to and
//! from [`RawData`]. The Python layer (`ptycho_rs.Scan`) casts to the exact dtypes first, so a
//! wrong dtype here is a programming error reported as `TypeError` by numpy's extraction.

use std::path::Path;

use ndarray::{Array1, Array2, Array3};
use num_complex::Complex32;
use numpy::{IntoPyArray, PyReadonlyArray1, PyReadonlyArray2, PyReadonlyArray3};
use ptycho_workflows::RawData;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::error::py_err;

/// How a scan built from Python arrays is named in error messages.
pub const ORIGIN: &str = "<scan arrays>";

fn required<'py>(d: &Bound<'py, PyDict>, key: &str) -> PyResult<Bound<'py, PyAny>> {
    d.get_item(key)?
        .filter(|v| !v.is_none())
        .ok_or_else(|| PyValueError::new_err(format!("{ORIGIN}: required key `{key}` is missing")))
}

fn optional<'py>(d: &Bound<'py, PyDict>, key: &str) -> PyResult<Option<Bound<'py, PyAny>>> {
    Ok(d.get_item(key)?.filter(|v| !v.is_none()))
}

fn vec1(v: &Bound<'_, PyAny>) -> PyResult<Array1<f64>> {
    Ok(v.extract::<PyReadonlyArray1<'_, f64>>()?
        .as_array()
        .to_owned())
}

fn complex2(v: &Bound<'_, PyAny>) -> PyResult<Array2<Complex32>> {
    Ok(v.extract::<PyReadonlyArray2<'_, Complex32>>()?
        .as_array()
        .to_owned())
}

/// A validated [`RawData`] from the dict (keys as in the NPZ contract: `xcoords`, `ycoords`,
/// optional `xcoords_start`/`ycoords_start`, `diff3d` float32 amplitudes `(M, N, N)`, `probeGuess`
/// complex64 `(N, N)`, optional `objectGuess` complex64, optional `scan_index` int64, optional
/// `bad_pixels` bool `(N, N)` (masked pixels are zeroed and left out of the loss), optional
/// `nphotons` float (the simulator's photon count)).
pub fn scan_from_dict(d: &Bound<'_, PyDict>) -> PyResult<RawData> {
    let xcoords = vec1(&required(d, "xcoords")?)?;
    let ycoords = vec1(&required(d, "ycoords")?)?;
    let xcoords_start = match optional(d, "xcoords_start")? {
        Some(v) => vec1(&v)?,
        None => xcoords.clone(),
    };
    let ycoords_start = match optional(d, "ycoords_start")? {
        Some(v) => vec1(&v)?,
        None => ycoords.clone(),
    };
    let diff3d: Array3<f32> = required(d, "diff3d")?
        .extract::<PyReadonlyArray3<'_, f32>>()?
        .as_array()
        .to_owned();
    let probe_guess = complex2(&required(d, "probeGuess")?)?;
    let object_guess = optional(d, "objectGuess")?
        .map(|v| complex2(&v))
        .transpose()?;
    let scan_index = optional(d, "scan_index")?
        .map(|v| -> PyResult<Array1<i64>> {
            Ok(v.extract::<PyReadonlyArray1<'_, i64>>()?
                .as_array()
                .to_owned())
        })
        .transpose()?;
    let bad_pixels = optional(d, "bad_pixels")?
        .map(|v| -> PyResult<Array2<bool>> {
            Ok(v.extract::<PyReadonlyArray2<'_, bool>>()?
                .as_array()
                .to_owned())
        })
        .transpose()?;
    let metadata_nphotons = optional(d, "nphotons")?
        .map(|v| v.extract::<f64>())
        .transpose()?;
    let raw = RawData {
        xcoords,
        ycoords,
        xcoords_start,
        ycoords_start,
        diff3d,
        probe_guess,
        object_guess,
        scan_index,
        y: None,
        metadata_nphotons,
        bad_pixels,
    };
    let mut raw = raw;
    raw.validate(Path::new(ORIGIN)).map_err(py_err)?;
    // As when the scan is read from an NPZ: masked pixels are zeroed and take no part in the loss.
    raw.zero_bad_pixels();
    Ok(raw)
}

/// The dict form of a scan (arrays copied into numpy; the optional keys only when present).
pub fn scan_to_dict<'py>(py: Python<'py>, raw: RawData) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("xcoords", raw.xcoords.into_pyarray(py))?;
    d.set_item("ycoords", raw.ycoords.into_pyarray(py))?;
    d.set_item("xcoords_start", raw.xcoords_start.into_pyarray(py))?;
    d.set_item("ycoords_start", raw.ycoords_start.into_pyarray(py))?;
    d.set_item("diff3d", raw.diff3d.into_pyarray(py))?;
    d.set_item("probeGuess", raw.probe_guess.into_pyarray(py))?;
    if let Some(o) = raw.object_guess {
        d.set_item("objectGuess", o.into_pyarray(py))?;
    }
    if let Some(s) = raw.scan_index {
        d.set_item("scan_index", s.into_pyarray(py))?;
    }
    if let Some(b) = raw.bad_pixels {
        d.set_item("bad_pixels", b.into_pyarray(py))?;
    }
    if let Some(n) = raw.metadata_nphotons {
        d.set_item("nphotons", n)?;
    }
    Ok(d)
}
