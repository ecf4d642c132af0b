//! ptycho-workflows

pub mod metrics;
pub mod stitch;
