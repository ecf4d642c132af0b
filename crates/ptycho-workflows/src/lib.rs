//! ptycho-workflows: the NPZ data contract, grouping, normalisation, ground-truth patches and
//! simulation (training, inference, stitching and metrics live in sibling modules).

pub mod data;
pub mod error;
pub mod grouping;
pub mod normalize;
pub mod patches;
pub mod simulate;

pub use data::RawData;
pub use error::WorkflowError;
pub use grouping::{GroupedData, GroupingOptions, group, group_with_indices};
pub use patches::PatchConvention;
pub use simulate::{SimObject, SimulationOptions, simulate_lines};
