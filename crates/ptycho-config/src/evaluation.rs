//! `EvaluationConfig`: the settings of comparing a reconstruction with a ground-truth object
//! (spec §10).

use serde::{Deserialize, Serialize};

use crate::data::DiffractionUnits;
use crate::inference::DEFAULT_STITCH_CROP;

/// Everything an evaluation needs from the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct EvaluationConfig {
    /// Stitching crop M in pixels (the ground-truth crop margin is M/2): even, 2 ≤ M ≤ 256. None:
    /// the value stored in the reconstruction, else [`DEFAULT_STITCH_CROP`].
    pub stitch_crop: Option<usize>,
    /// Units of the ground-truth file's `diff3d` (amplitude, counts or auto); only how the file
    /// is read, the metrics use its objectGuess.
    pub diffraction_units: DiffractionUnits,
    /// Also compute the metrics after sub-pixel registration (spec §10.1 step 2): the shift of
    /// the reconstruction's amplitude onto the ground truth's by phase cross-correlation
    /// (upsample factor 50), applied by a Fourier phase ramp, then 2 border pixels dropped.
    /// Alias `registration`.
    #[serde(alias = "registration")]
    pub register: bool,
}

impl EvaluationConfig {
    /// The crop M to use for a reconstruction that stored `stored` (if any).
    pub fn stitch_crop_for(&self, stored: Option<usize>) -> usize {
        self.stitch_crop.or(stored).unwrap_or(DEFAULT_STITCH_CROP)
    }
}
