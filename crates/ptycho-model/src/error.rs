//! The one error type of `ptycho-model`.

use thiserror::Error;

/// Errors of model construction, device selection and the forward/loss functions.
#[derive(Debug, Error)]
pub enum ModelError {
    /// N is not one of the sizes the reference network supports.
    #[error("unsupported patch size N = {n}: the network supports N = 64, 128 or 256")]
    UnsupportedN { n: usize },
    /// `n_filters_scale` makes the head split impossible (32·nfs must exceed 4).
    #[error("n_filters_scale = {nfs} is too small: the decoder head needs 32·nfs > 4 channels")]
    FilterScale { nfs: usize },
    /// A tensor argument has the wrong shape.
    #[error("`{what}` has shape {got:?}, expected {expected}")]
    Shape {
        what: &'static str,
        got: Vec<usize>,
        expected: String,
    },
    /// A device string could not be parsed.
    #[error("unknown device `{device}`: expected cpu|flex, tch-cpu, cuda, cuda:N or ndarray")]
    UnknownDevice { device: String },
    /// The backend of a device kind was not compiled in.
    #[error("device `{device}` needs ptycho built with `--features {feature}`")]
    BackendNotCompiled {
        device: String,
        feature: &'static str,
    },
    /// The real-space MAE (`realspace_mae_weight` > 0) was asked for without ground truth.
    #[error(
        "realspace_mae_weight > 0 needs the ground-truth object patches of every batch, and none were given"
    )]
    MissingGroundTruth,
    /// A bad-pixel mask that leaves nothing to fit.
    #[error("bad-pixel mask: {reason}")]
    BadPixelMask { reason: String },
    /// A value that must be finite and positive is not.
    #[error("`{field}` must be finite and > 0, got {value}")]
    NonPositive { field: &'static str, value: f64 },
    /// A training step was asked for on a device without autodiff.
    #[error(
        "training needs an autodiff device (call `.autodiff()` on the device before building the model)"
    )]
    NotAutodiff,
    /// A training step's loss is NaN or infinite (the weights were not updated).
    #[error("the training loss is {value}")]
    NonFiniteLoss { value: f64 },
    /// The params carry a probe that is not N×N (or whose data do not fill it).
    #[error("the params' probe is {probe_n}×{probe_n} ({values} values) but the model's N = {n}")]
    ProbeSize {
        probe_n: usize,
        values: usize,
        n: usize,
    },
    /// Reading tensor data back from the device failed.
    #[error("reading `{what}` back from the device failed: {message}")]
    Readback { what: &'static str, message: String },
}
