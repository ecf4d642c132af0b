//! `InferenceConfig` (spec §1.3, §11.3): the settings of reconstructing a test scan with a saved
//! model.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::data::{DataOptions, DiffractionUnits};
use crate::model::ModelConfig;

/// Default stitching crop M in pixels (the central M×M window of every predicted patch), also the
/// M an evaluation uses when neither its settings nor the reconstruction name one.
pub const DEFAULT_STITCH_CROP: usize = 20;

/// Default K of an inference: 7, as the reference's own evaluation (`scripts/compare_models.py`,
/// `neighbor_count=7`) and Ptychodus's PtychoPINN inference settings (`NumNearestNeighbors`) use;
/// the reference's `inference.py` used 4. An inference without an explicit K takes
/// `max(DEFAULT_NEIGHBOR_COUNT, gridsize²)` with the archive's gridsize (see
/// [`InferenceConfig::neighbor_count_for`]).
pub const DEFAULT_NEIGHBOR_COUNT: usize = 7;

/// Where the predicted object of a group is stitched (gridsize ≥ 2; at gridsize 1 a group is one
/// scan point and both are the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum StitchAt {
    /// Around every member's scan position: for each member, the M×M window of the group's
    /// object centred on that member is stitched there, so every scan point contributes a window
    /// (as at gridsize 1) and each point's neighbourhood averages the windows of all the groups
    /// it belongs to. Windows more than (N − M)/2 pixels from the group centre fall outside the
    /// group's object and are left out.
    #[default]
    Members,
    /// The central M×M window of each group's object at the group centre (the mean of its
    /// members' positions), as the reference does: the outermost scan points are never a centre,
    /// so the edge of the scan is covered less.
    Centres,
}

word_enum!(StitchAt, "stitch_at", {
    Members => "members",
    Centres => "centres",
});

/// Everything an inference run needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InferenceConfig {
    /// Architecture; replaced by the archive's snapshot when a model is loaded (spec §9.3).
    pub model: ModelConfig,
    /// Directory holding `wts.h5.zip`, or the archive itself (required by the reference).
    pub model_path: Option<PathBuf>,
    /// Test NPZ (required by the reference). Legacy key `test_data_file_path`.
    pub test_data_file: Option<PathBuf>,
    /// Groups to form (None = one per scan point, covering the scan; no 512 default; see
    /// [`InferenceConfig::group_count`]). `n_images` is the deprecated alias.
    #[serde(alias = "n_images")]
    pub n_groups: Option<usize>,
    /// Scan points to subsample before grouping (None = all).
    pub n_subsample: Option<usize>,
    /// Seed of that subsampling.
    pub subsample_seed: Option<u64>,
    /// K of the nearest-neighbour grouping; K ≥ C when given. None = `max(7, C)` with the
    /// archive's C = gridsize², so that a model of any gridsize reconstructs without settings
    /// (the reference's `inference.py` fixed K = 4, which cannot group a gridsize-3 model; its
    /// `compare_models.py` and Ptychodus use 7).
    pub neighbor_count: Option<usize>,
    /// The reference's debug flag (kept in the legacy view; no effect here).
    pub debug: bool,
    /// Output directory. Legacy key `output_prefix`.
    pub output_dir: PathBuf,
    /// Allow more groups than scan points (gridsize > 1 only).
    pub enable_oversampling: bool,
    /// Neighbour pool size for oversampling; ≥ C when given.
    pub neighbor_pool_size: Option<usize>,
    /// Seed of the test-set grouping (the reference reseeds with 45).
    pub seed: u64,
    /// Stitching crop size M in pixels (central M×M of each patch): even, 2 ≤ M ≤ 256; M ≤ N of
    /// the archive is checked when the archive is loaded.
    pub stitch_crop: usize,
    /// Where a group's object is stitched at gridsize ≥ 2 (members or centres).
    pub stitch_at: StitchAt,
    /// Groups per forward pass, ≥ 1.
    pub batch_size: usize,
    /// Units of the test file's `diff3d` (amplitude, counts or auto).
    pub diffraction_units: DiffractionUnits,
    /// Negate the x coordinates of the test file at load (reference `load_data`).
    pub flip_x: bool,
    /// Negate the y coordinates at load.
    pub flip_y: bool,
    /// Swap x and y at load (after the flips).
    pub swap_xy: bool,
    /// Multiply the coordinates by this factor at load (after flips and swap); finite, > 0.
    pub coord_scale: f64,
    /// Metrics against `objectGuess` also after sub-pixel registration
    /// ([`crate::EvaluationConfig::register`]).
    #[serde(alias = "registration")]
    pub register: bool,
}

impl Default for InferenceConfig {
    fn default() -> Self {
        Self {
            model: ModelConfig::default(),
            model_path: None,
            test_data_file: None,
            n_groups: None,
            n_subsample: None,
            subsample_seed: None,
            neighbor_count: None,
            debug: false,
            output_dir: PathBuf::from("inference_outputs"),
            enable_oversampling: false,
            neighbor_pool_size: None,
            seed: 45,
            stitch_crop: DEFAULT_STITCH_CROP,
            stitch_at: StitchAt::default(),
            batch_size: 32,
            diffraction_units: DiffractionUnits::Auto,
            flip_x: false,
            flip_y: false,
            swap_xy: false,
            coord_scale: 1.0,
            register: false,
        }
    }
}

impl InferenceConfig {
    /// How to read the test file.
    pub fn data_options(&self) -> DataOptions {
        DataOptions {
            diffraction_units: self.diffraction_units,
            flip_x: self.flip_x,
            flip_y: self.flip_y,
            swap_xy: self.swap_xy,
            coord_scale: self.coord_scale,
        }
    }

    /// Number of groups an inference forms from `total` scan points with a model of `gridsize`
    /// (the archive's): `n_groups` when given, else `total` — one group per scan point, seeded by
    /// it, so that the groups cover the scan at any gridsize (as the reference's own evaluation,
    /// `compare_models.py`, does; its `inference.py` formed only `total / gridsize²` groups at
    /// gridsize > 1, which leaves holes in the stitched canvas).
    /// At most `total` (each group needs a seed of its own), except at gridsize > 1 with
    /// oversampling enabled. Never 0.
    pub fn group_count(&self, total: usize, gridsize: usize) -> usize {
        let requested = self.n_groups.unwrap_or(total);
        let oversample = gridsize > 1 && self.enable_oversampling;
        let count = if oversample {
            requested
        } else {
            requested.min(total)
        };
        count.max(1)
    }

    /// K for a model of `gridsize` (the archive's): the configured K, else
    /// `max(DEFAULT_NEIGHBOR_COUNT, gridsize²)`. Whether a configured K is large enough is checked
    /// by `Valid<InferenceConfig>::grouping`.
    pub fn neighbor_count_for(&self, gridsize: usize) -> usize {
        self.neighbor_count
            .unwrap_or(DEFAULT_NEIGHBOR_COUNT.max(gridsize * gridsize))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_group_per_scan_point_at_any_gridsize() {
        let count = |n_groups: Option<usize>, total: usize, gridsize: usize| {
            InferenceConfig {
                n_groups,
                ..Default::default()
            }
            .group_count(total, gridsize)
        };
        assert_eq!(count(None, 100, 1), 100);
        assert_eq!(count(Some(30), 100, 1), 30);
        assert_eq!(count(Some(300), 100, 1), 100);
        // gridsize 2: no longer capped at total / 4 = 25 (issue #19).
        assert_eq!(count(None, 100, 2), 100);
        assert_eq!(count(Some(10), 100, 2), 10);
        assert_eq!(count(Some(80), 100, 2), 80);
        assert_eq!(count(Some(300), 100, 2), 100);
        assert_eq!(count(None, 3, 2), 3);
        assert_eq!(count(None, 0, 2), 1);
        // More groups than points only with oversampling, and only at gridsize > 1.
        let over = InferenceConfig {
            n_groups: Some(300),
            enable_oversampling: true,
            ..Default::default()
        };
        assert_eq!(over.group_count(100, 2), 300);
        assert_eq!(over.group_count(100, 1), 100);
    }

    #[test]
    fn default_k_covers_the_group_size() {
        let auto = InferenceConfig::default();
        assert_eq!(auto.neighbor_count, None);
        assert_eq!(
            [1, 2, 3, 4].map(|g| auto.neighbor_count_for(g)),
            [7, 7, 9, 16]
        );
        let k5 = InferenceConfig {
            neighbor_count: Some(5),
            ..Default::default()
        };
        assert_eq!([1, 3].map(|g| k5.neighbor_count_for(g)), [5, 5]);
    }
}
