//! Our errors as Python exceptions: the message is the CLI's one line (the error and its causes
//! joined by ": "); the class says what kind of failure it was.
//!
//! - a file could not be read or written (an `std::io::Error` in the chain) → `OSError`
//!   (`FileExistsError` when an output would be replaced without `overwrite=True`);
//! - training diverged → `ArithmeticError`;
//! - training stopped by Ctrl-C or the progress callback → `KeyboardInterrupt`;
//! - anything else (bad settings, bad arrays, a foreign archive) → `ValueError`.

use std::error::Error;

use ptycho_workflows::WorkflowError;
use pyo3::PyErr;
use pyo3::exceptions::{
    PyArithmeticError, PyFileExistsError, PyKeyboardInterrupt, PyOSError, PyValueError,
};

/// The error and its causes on one line, whitespace folded (as `ptycho` prints it).
pub fn one_line(err: &dyn Error) -> String {
    let mut parts = vec![err.to_string()];
    let mut cause = err.source();
    while let Some(c) = cause {
        parts.push(c.to_string());
        cause = c.source();
    }
    parts
        .join(": ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether an `std::io::Error` is anywhere in the chain.
fn has_io_cause(err: &(dyn Error + 'static)) -> bool {
    let mut cur: Option<&(dyn Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if e.downcast_ref::<std::io::Error>().is_some() {
            return true;
        }
        cur = e.source();
    }
    false
}

/// Any of our library errors as a Python exception.
pub fn to_py(err: &(dyn Error + 'static)) -> PyErr {
    let msg = one_line(err);
    if let Some(w) = err.downcast_ref::<WorkflowError>() {
        match w {
            WorkflowError::AlreadyExists { .. } => return PyFileExistsError::new_err(msg),
            WorkflowError::Diverged { .. } => return PyArithmeticError::new_err(msg),
            WorkflowError::Interrupted { .. } => return PyKeyboardInterrupt::new_err(msg),
            _ => {}
        }
    }
    if has_io_cause(err) {
        PyOSError::new_err(msg)
    } else {
        PyValueError::new_err(msg)
    }
}

/// `map_err` helper: `.map_err(py_err)`.
pub fn py_err<E: Error + 'static>(err: E) -> PyErr {
    to_py(&err)
}
