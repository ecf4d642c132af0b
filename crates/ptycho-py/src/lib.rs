//! `ptycho_rs._native`: the compiled half of the Python package `ptycho_rs` (the typed, documented
//! API is the Python half, `python/ptycho_rs/__init__.py`; this module is its private engine).
//!
//! Every function takes and returns plain Python values: scans as dicts of numpy arrays under
//! the NPZ contract's key names ([`convert`]), settings as a JSON object text decoded by
//! `ptycho-config` (the same keys, aliases, defaults and unknown-key errors as a config file),
//! structured results as JSON text. Computation runs with the GIL released
//! ([`Python::detach`]); errors become Python exceptions ([`error`]).
//!
//! Crate boundary: this is a binding layer beside `ptycho-cli`; it composes `ptycho-workflows`
//! (train, infer, evaluate, simulate) and `ptycho-persist` (archives) and holds no algorithm.

mod convert;
mod error;

use std::ops::ControlFlow;
use std::path::PathBuf;

use ndarray::Array2;
use num_complex::Complex32;
use numpy::{IntoPyArray, PyArray2, PyReadonlyArray2};
use ptycho_config::file::parse_config;
use ptycho_config::{
    EvaluationConfig, FileFormat, InferenceConfig, SimulationConfig, TrainingConfig,
};
use ptycho_model::DeviceKind;
use ptycho_workflows::train::{EpochRecord, TrainOptions, train_observed};
use ptycho_workflows::{InferRuntime, Reconstruction};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::convert::{scan_from_dict, scan_to_dict};
use crate::error::py_err;

/// Decode a settings JSON object (from the Python keyword arguments) into `T`; `origin` names the
/// call in errors (e.g. "ptycho_rs.train settings").
fn settings<T: ptycho_config::file::ConfigFile>(json: &str, origin: &str) -> PyResult<T> {
    parse_config::<T>(json, FileFormat::Json, origin).map_err(py_err)
}

fn device(name: &str) -> PyResult<DeviceKind> {
    let kind: DeviceKind = name.parse().map_err(py_err)?;
    if !kind.is_compiled() {
        return Err(PyValueError::new_err(format!(
            "device `{kind}` needs ptycho_rs built with `--features {}`",
            kind.feature().unwrap_or("flex")
        )));
    }
    Ok(kind)
}

fn json_text<T: serde::Serialize>(value: &T) -> PyResult<String> {
    serde_json::to_string(value).map_err(py_err)
}

/// Simulate a scan (settings: `SimulationConfig` keys: a synthetic `object`, or `input_file` with
/// the user's objectGuess and probeGuess); returns the scan
/// dict (amplitudes, positions in object pixels, probe, ground truth).
#[pyfunction]
fn simulate<'py>(py: Python<'py>, settings_json: &str) -> PyResult<Bound<'py, PyDict>> {
    let cfg = settings::<SimulationConfig>(settings_json, "ptycho_rs.simulate settings")?
        .validate()
        .map_err(py_err)?;
    let raw = py
        .detach(|| ptycho_workflows::simulate(&cfg))
        .map_err(py_err)?;
    scan_to_dict(py, raw)
}

/// Read a scan NPZ (the reference data contract) into a scan dict.
#[pyfunction]
fn load_npz(py: Python<'_>, path: PathBuf) -> PyResult<Bound<'_, PyDict>> {
    let raw = py
        .detach(|| ptycho_workflows::RawData::from_npz(&path))
        .map_err(py_err)?;
    scan_to_dict(py, raw)
}

/// Write a scan dict as an NPZ (atomically; validated first).
#[pyfunction]
fn save_npz(py: Python<'_>, scan: &Bound<'_, PyDict>, path: PathBuf) -> PyResult<()> {
    let raw = scan_from_dict(scan)?;
    py.detach(|| raw.write_npz(&path)).map_err(py_err)
}

/// Train on a scan dict with the given settings (`TrainingConfig` keys; `output_dir` is set from
/// the argument). `progress(record_json)` is called after every epoch with the GIL held; if it
/// raises or returns `False` the run stops there (checkpoint kept). Returns the run report as
/// JSON text.
#[pyfunction]
#[pyo3(signature = (scan, settings_json, output_dir, device_name="cpu", overwrite=false, quiet=true, progress=None))]
fn train(
    py: Python<'_>,
    scan: &Bound<'_, PyDict>,
    settings_json: &str,
    output_dir: PathBuf,
    device_name: &str,
    overwrite: bool,
    quiet: bool,
    progress: Option<Py<PyAny>>,
) -> PyResult<String> {
    let raw = scan_from_dict(scan)?;
    let mut cfg = settings::<TrainingConfig>(settings_json, "ptycho_rs.train settings")?;
    cfg.output_dir = output_dir;
    let cfg = cfg.validate().map_err(py_err)?;
    let opts = TrainOptions {
        device: device(device_name)?,
        quiet,
        overwrite,
        resume: false,
    };
    // A Python exception raised by the callback (or a pending Ctrl-C) is kept and re-raised once
    // the GIL-free training has returned.
    let mut pending: Option<PyErr> = None;
    let result = py.detach(|| {
        let mut on_epoch = |record: &EpochRecord| -> ControlFlow<()> {
            Python::attach(|py| {
                if let Err(e) = py.check_signals() {
                    pending = Some(e);
                    return ControlFlow::Break(());
                }
                let Some(cb) = &progress else {
                    return ControlFlow::Continue(());
                };
                let text = match serde_json::to_string(record) {
                    Ok(t) => t,
                    Err(e) => {
                        pending = Some(py_err(e));
                        return ControlFlow::Break(());
                    }
                };
                match cb.call1(py, (text,)) {
                    Ok(ret) => match ret.extract::<bool>(py) {
                        Ok(false) => ControlFlow::Break(()),
                        _ => ControlFlow::Continue(()),
                    },
                    Err(e) => {
                        pending = Some(e);
                        ControlFlow::Break(())
                    }
                }
            })
        };
        train_observed(&cfg, &raw, &opts, &mut on_epoch)
    });
    if let Some(e) = pending {
        return Err(e);
    }
    let report = result.map_err(py_err)?;
    let value = serde_json::json!({
        "output_dir": report.output_dir,
        "archive": report.archive_path,
        "history": report.history,
        "final_loss": report.final_loss,
        "final_val_loss": report.final_val_loss,
        "epochs_run": report.epochs_run,
        "stopped_early": report.stopped_early,
        "train_seconds": report.train_seconds,
        "total_seconds": report.total_seconds,
        "n_groups": report.n_groups,
        "n_train": report.n_train,
        "n_val": report.n_val,
        "N": report.params.n(),
        "gridsize": report.params.gridsize(),
        "intensity_scale": report.params.intensity_scale(),
    });
    json_text(&value)
}

/// Load the model archive at `path` (a `wts.h5.zip` or a directory holding one) the way
/// inference does (params restored first, then the network it holds — PINN or supervised — built
/// and its weights loaded), and
/// return its summary (what `ptycho inspect --json` prints) as JSON text.
#[pyfunction]
fn load_model(py: Python<'_>, path: PathBuf) -> PyResult<String> {
    let device = DeviceKind::Flex.to_device().map_err(py_err)?;
    let info = py
        .detach(|| {
            let archive = ptycho_persist::resolve_archive_path(&path);
            ptycho_persist::load_any_model(&archive, &device)?;
            ptycho_persist::inspect_archive(&archive)
        })
        .map_err(py_err)?;
    json_text(&info)
}

/// What [`reconstruct`] returns: object, origin `(x, y)`, stitch crop, report JSON.
type Reconstructed<'py> = (Bound<'py, PyArray2<Complex32>>, (f64, f64), usize, String);

/// Reconstruct a scan dict with the model archive at `archive` (settings: `InferenceConfig`
/// keys). Returns `(object complex64 (H, W), origin [x, y] in object pixels, stitch_crop,
/// report JSON)`. Loads the archive for this call; [`LoadedModel`] keeps it loaded.
#[pyfunction]
#[pyo3(signature = (archive, scan, settings_json, device_name="cpu"))]
fn reconstruct<'py>(
    py: Python<'py>,
    archive: PathBuf,
    scan: &Bound<'py, PyDict>,
    settings_json: &str,
    device_name: &str,
) -> PyResult<Reconstructed<'py>> {
    LoadedModel::new(py, archive, device_name)?.reconstruct(py, scan, settings_json)
}

/// A model archive loaded once (params first, then the network: CONFIG-001) onto a device, to
/// reconstruct any number of scans without reading the archive again. Safe to share between
/// threads; each reconstruction releases the GIL.
#[pyclass(frozen, module = "ptycho_rs._native")]
struct LoadedModel {
    /// Boxed: the model holds 64-byte-aligned values (cache-line padded), and Python allocates
    /// objects with 16-byte alignment only, so it cannot sit inside the Python object itself.
    inner: Box<ptycho_workflows::InferenceModel>,
}

#[pymethods]
impl LoadedModel {
    #[new]
    #[pyo3(signature = (archive, device_name="cpu"))]
    fn new(py: Python<'_>, archive: PathBuf, device_name: &str) -> PyResult<Self> {
        let kind = device(device_name)?;
        let inner = py
            .detach(|| ptycho_workflows::InferenceModel::load(&archive, kind))
            .map_err(py_err)?;
        Ok(LoadedModel {
            inner: Box::new(inner),
        })
    }

    /// Reconstruct a scan dict (settings: `InferenceConfig` keys); returns what the module's
    /// `reconstruct` returns.
    fn reconstruct<'py>(
        &self,
        py: Python<'py>,
        scan: &Bound<'py, PyDict>,
        settings_json: &str,
    ) -> PyResult<Reconstructed<'py>> {
        let raw = scan_from_dict(scan)?;
        let cfg = settings::<InferenceConfig>(settings_json, "ptycho_rs.reconstruct settings")?
            .validate()
            .map_err(py_err)?;
        let run = InferRuntime {
            device: self.inner.device(),
            write_outputs: false,
            quiet: true,
            ..InferRuntime::default()
        };
        let res = py
            .detach(|| self.inner.reconstruct(&raw.header(), &raw, &cfg, &run))
            .map_err(py_err)?;
        let report = serde_json::json!({
            "archive": res.archive,
            "n_groups": res.n_groups,
            "n_patterns": res.n_patterns,
            "N": res.params.n(),
            "gridsize": res.params.gridsize(),
            "norm_factor": res.norm_factor,
            "predict_seconds": res.predict_seconds,
            "patterns_per_second": res.patterns_per_second,
            "scan_coverage": res.scan_coverage,
            "seconds": res.seconds,
            "evaluation": res.evaluation,
            "evaluation_error": res.evaluation_error,
        });
        let rec = res.reconstruction;
        let origin = (rec.origin[0], rec.origin[1]);
        let crop = rec.stitch_crop.unwrap_or(cfg.stitch_crop);
        Ok((
            rec.object.into_pyarray(py),
            origin,
            crop,
            json_text(&report)?,
        ))
    }
}

/// Metrics of a stitched object against the scan's `objectGuess` (settings: `EvaluationConfig`
/// keys). Returns the evaluation as JSON text (what `metrics.json` holds).
#[pyfunction]
#[pyo3(signature = (object, origin, stitch_crop, scan, settings_json))]
fn evaluate(
    py: Python<'_>,
    object: PyReadonlyArray2<'_, Complex32>,
    origin: (f64, f64),
    stitch_crop: Option<usize>,
    scan: &Bound<'_, PyDict>,
    settings_json: &str,
) -> PyResult<String> {
    let raw = scan_from_dict(scan)?;
    let cfg = settings::<EvaluationConfig>(settings_json, "ptycho_rs.evaluate settings")?
        .validate()
        .map_err(py_err)?;
    let object: Array2<Complex32> = object.as_array().to_owned();
    let rec = Reconstruction {
        object,
        origin: [origin.0, origin.1],
        stitch_crop,
    };
    let ev = py
        .detach(|| ptycho_workflows::evaluate(&rec, &raw, &cfg))
        .map_err(py_err)?;
    json_text(&ev)
}

/// The compiled module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(simulate, m)?)?;
    m.add_function(wrap_pyfunction!(load_npz, m)?)?;
    m.add_function(wrap_pyfunction!(save_npz, m)?)?;
    m.add_function(wrap_pyfunction!(train, m)?)?;
    m.add_function(wrap_pyfunction!(load_model, m)?)?;
    m.add_function(wrap_pyfunction!(reconstruct, m)?)?;
    m.add_class::<LoadedModel>()?;
    m.add_function(wrap_pyfunction!(evaluate, m)?)?;
    Ok(())
}
