//! The immutable params value: the only way downstream code (grouping, model building, simulation)
//! learns N, gridsize and the physics constants. CONFIG-001 by construction: a `Params` can only be
//! made from a validated config or restored from an archive's snapshot, and every consumer takes one
//! as an argument. There is no global state.

use num_complex::Complex32;

use crate::model::ModelConfig;

/// Legacy-only keys with their reference defaults (spec §1.5).
pub const DEFAULT_OFFSET: usize = 4;
pub const DEFAULT_MAX_POSITION_JITTER: usize = 10;
pub const DEFAULT_PROBE_SCALE: f64 = 0.7;

/// The normalised probe attached to a params value at run time: N×N complex, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeField {
    pub n: usize,
    pub data: Vec<Complex32>,
}

/// Immutable, validated parameters. Build with [`Params::from_training`] / [`Params::from_inference`]
/// (after `validate()`), or [`Params::from_legacy`] when restoring an archive.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    pub(crate) model: ModelConfig,
    pub(crate) nphotons: f64,
    pub(crate) offset: usize,
    pub(crate) max_position_jitter: usize,
    pub(crate) default_probe_scale: f64,
    pub(crate) legacy: crate::legacy::LegacyMap,
    pub(crate) intensity_scale: Option<f64>,
    pub(crate) probe: Option<ProbeField>,
}

impl Params {
    pub fn model(&self) -> &ModelConfig {
        &self.model
    }
    /// Patch size N in pixels.
    pub fn n(&self) -> usize {
        self.model.n
    }
    pub fn gridsize(&self) -> usize {
        self.model.gridsize
    }
    /// Patches per group, C = gridsize².
    pub fn channels(&self) -> usize {
        self.model.channels()
    }
    pub fn nphotons(&self) -> f64 {
        self.nphotons
    }
    /// Legacy `offset` (pixels between grid neighbours), default 4.
    pub fn offset(&self) -> usize {
        self.offset
    }
    pub fn max_position_jitter(&self) -> usize {
        self.max_position_jitter
    }
    /// Width parameter of the simulator's default probe, default 0.7.
    pub fn default_probe_scale(&self) -> f64 {
        self.default_probe_scale
    }
    /// bigN = N + (gridsize − 1)·offset.
    pub fn big_n(&self) -> usize {
        self.model.n + (self.model.gridsize - 1) * self.offset
    }
    /// Side of the in-model canvas: P = bigN + max_position_jitter (74 for N=64 gs=1, 78 for gs=2).
    pub fn padded_size(&self) -> usize {
        self.big_n() + self.max_position_jitter
    }
    /// The physics intensity scale s = sqrt(nphotons)/(N/2) unless a runtime value was attached.
    pub fn intensity_scale(&self) -> f64 {
        self.intensity_scale
            .unwrap_or_else(|| self.nphotons.sqrt() / (self.model.n as f64 / 2.0))
    }
    /// The runtime probe, if one was attached.
    pub fn probe(&self) -> Option<&ProbeField> {
        self.probe.as_ref()
    }
    /// A copy with the runtime intensity scale attached (never changes the typed config).
    pub fn with_intensity_scale(mut self, s: f64) -> Self {
        self.intensity_scale = Some(s);
        self
    }
    /// A copy with the runtime (normalised) probe attached.
    pub fn with_probe(mut self, probe: ProbeField) -> Self {
        self.probe = Some(probe);
        self
    }
}
