//! `SimulationConfig`: the settings of simulating a synthetic dataset (spec §8.1–8.3).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::legacy::DEFAULT_PROBE_SCALE;

/// Synthetic object kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SimObject {
    /// Random smoothed lines (spec §8.2): real amplitude, zero phase.
    #[default]
    Lines,
    /// Gaussian random field, power spectrum k^−0.4, normalised to [0, 1], resampled 2× and
    /// blurred σ = 1 (spec §8.4, the reference's `grf`).
    Grf,
    /// 10 % random unit impulses, `G₁ + 5·G₁₀` (the reference's `points`).
    Points,
    /// 40 vertical, 40 horizontal and 40 pairs of ±45° lines, `G₀.₇₅ + 5·G₇.₅` (the reference's
    /// `diagonals`).
    Diagonals,
}

word_enum!(SimObject, "object", {
    Lines => "lines",
    Grf => "grf",
    Points => "points",
    Diagonals => "diagonals",
});

/// Everything a simulation needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimulationConfig {
    /// Number of scan positions, i.e. diffraction patterns; ≥ 1.
    pub n_images: usize,
    /// Object generator.
    pub object: SimObject,
    /// Object side in pixels, ≥ N; None → int(3.5·N) (224 for N = 64).
    pub object_size: Option<usize>,
    /// Diffraction pattern (and probe) size N in pixels: even, ≥ 4 (`n` is accepted too).
    #[serde(rename = "N", alias = "n")]
    pub n: usize,
    /// Mean photons per diffraction pattern (counts), > 0.
    pub nphotons: f64,
    /// Seed of every random draw (object, scan positions, noise).
    pub seed: u64,
    /// Draw Poisson noise (false: noise-free amplitudes).
    pub noise: bool,
    /// Margin in pixels kept free at the object border, ≥ 0; None → N/2 (at most half the object
    /// side minus one pixel).
    pub buffer: Option<f64>,
    /// Width parameter of the default probe (dimensionless, > 0; the reference's 0.7).
    pub default_probe_scale: f64,
    /// NPZ holding the object (`objectGuess`) and probe (`probeGuess`) to simulate with instead
    /// of a synthetic object and the default probe (the reference's `simulate_and_save.py
    /// --input-file`); N must equal the probe's width.
    pub input_file: Option<PathBuf>,
}

impl Default for SimulationConfig {
    fn default() -> Self {
        Self {
            n_images: 512,
            object: SimObject::Lines,
            object_size: None,
            n: 64,
            nphotons: 1e9,
            seed: 42,
            noise: true,
            buffer: None,
            default_probe_scale: DEFAULT_PROBE_SCALE,
            input_file: None,
        }
    }
}

impl SimulationConfig {
    /// The object side in pixels: `object_size`, else int(3.5·N).
    pub fn object_side(&self) -> usize {
        self.object_size.unwrap_or((3.5 * self.n as f64) as usize)
    }

    /// The scan margin in pixels for an `h`×`w` object: `buffer` (else N/2), at most
    /// min(h, w)/2 − 1 so that positions can be drawn.
    pub fn scan_margin(&self, h: usize, w: usize) -> f64 {
        self.buffer
            .unwrap_or(self.n as f64 / 2.0)
            .min(h.min(w) as f64 / 2.0 - 1.0)
    }
}
