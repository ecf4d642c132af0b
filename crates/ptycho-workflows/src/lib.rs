//! ptycho-workflows

pub mod fsutil;
pub mod imaging;
