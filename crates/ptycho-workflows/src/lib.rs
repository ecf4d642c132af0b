//! ptycho-workflows: the NPZ data contract, grouping, normalisation, ground-truth patches,
//! simulation, stitching and evaluation metrics (training and inference compose them), and the
//! Ptychodus NPZ product writer ([`product`]).
//!
//! Settings come from `ptycho-config` as `&Valid<…>` (training, inference, simulation,
//! evaluation, grouping); what is checked here depends on the data or a loaded archive.
//!
//! Arrays here follow the reference layout (channels-last `(G, N, N, C)`, coordinates `[x, y]` =
//! `[column, row]` in object pixels); conversion to the model's channels-first tensors happens at
//! the model boundary.

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
pub mod product;
pub mod reconstruction;
pub mod simulate;
pub mod stitch;
pub mod train;

pub use data::{LoadReport, PatternSource, RawData, ScanFile, ScanHeader};
pub use error::WorkflowError;
pub use evaluate::{Evaluation, GroundTruth, evaluate, evaluate_files, evaluate_with_images};
pub use grouping::{GroupedData, group, group_with_indices};
pub use infer::{InferResult, InferRuntime, InferenceModel, infer};
pub use patches::PatchConvention;
pub use product::{ProductMetadata, write_ptychodus_product};
pub use reconstruction::Reconstruction;
pub use simulate::{simulate, simulate_lines};
