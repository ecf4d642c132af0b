//! ptycho-workflows
