//! ptycho-workflows

pub mod fsutil;
pub mod imaging;
pub mod metrics;
pub mod stitch;
