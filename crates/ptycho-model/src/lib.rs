//! The PtychoPINN network, physics and losses in Burn (device-agnostic).
//!
//! Layout at this crate's boundary: Burn is channels-first. Patches are `(B, C, N, N)`,
//! positions `(B, C, 2)` with the last axis `[x, y]` = `[column, row]`.

pub mod physics;
