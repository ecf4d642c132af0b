//! The PtychoPINN network, physics and losses in Burn (device-agnostic; the backend is a run-time
//! [`burn::tensor::Device`], see [`DeviceKind`]).
//!
//! Layout at this crate's boundary: Burn is **channels-first**. Diffraction inputs `s·X`
//! (amplitudes) are `(B, C, N, N)`, offsets `(B, C, 2)` with the last axis `[x, y]` =
//! `[column, row]` in pixels, the trimmed object `(B, 1, N, N)`. Complex fields are
//! [`ComplexTensor`]s (separate real and imaginary tensors). The reference (and the NPZ files)
//! are channels-last `(B, N, N, C)` with positions `(B, 1, 2, C)`; ptycho-workflows converts.
//!
//! Modules, each using only those before it: `complex`, `ops` (Burn ops, DFT matrices) →
//! `physics` (array-level) → `reassembly` → `conv` (the 3×3 convolution, a backend extension) → `network` → `loss` → `train` → `supervised`; `error` is below all
//! of them, `device` uses only `error`.
//!
//! - [`PtychoPinn::autoencoder`] (training view) → [`AutoencoderOutput`]
//! - [`PtychoPinn::diffraction_to_obj`] (inference view) → [`ComplexTensor`]
//! - [`loss()`], [`TrainStep`], [`DeviceKind`], [`ConvKernel`].
//! - [`SupervisedNet`] and [`SupervisedStep`]: the supervised baseline (spec §5.4).

pub mod complex;
pub mod conv;
pub mod device;
pub mod error;
pub mod loss;
pub mod network;
pub mod ops;
pub mod physics;
pub mod reassembly;
pub mod supervised;
pub mod train;

pub use complex::ComplexTensor;
pub use conv::ConvKernel;
pub use device::DeviceKind;
pub use error::ModelError;
pub use loss::{LossTerms, LossWeights, PixelMask, loss, loss_with, poisson_nll, supervised_loss};
pub use network::{AutoencoderOutput, Hyper, PtychoPinn};
pub use reassembly::Offsets;
pub use supervised::{SupervisedNet, SupervisedStep};
pub use train::{LossValues, TrainStep};
