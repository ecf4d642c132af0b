//! ptycho-workflows: the NPZ data contract, grouping, normalisation, ground-truth patches,
//! simulation, stitching and evaluation metrics (training and inference compose them).
//!
//! Arrays here follow the reference layout (channels-last `(G, N, N, C)`, coordinates `[x, y]` =
//! `[column, row]` in object pixels); conversion to the model's channels-first tensors happens at
//! the model boundary.

pub mod bench;
pub mod data;
pub mod error;
pub mod evaluate;
pub mod grouping;
pub mod imaging;
pub mod infer;
pub mod metrics;
pub mod model_inputs;
pub mod normalize;
pub mod patches;
mod procfs;
pub mod simulate;
pub mod stitch;
pub mod train;

pub use data::RawData;
pub use error::WorkflowError;
pub use evaluate::{EvaluateOptions, Evaluation, evaluate, evaluate_files};
pub use grouping::{GroupedData, GroupingOptions, group, group_with_indices};
pub use infer::{InferOptions, InferResult, Reconstruction, infer};
pub use patches::PatchConvention;
pub use simulate::{SimObject, SimulationOptions, simulate_lines};
