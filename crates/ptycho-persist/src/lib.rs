//! ptycho-persist
