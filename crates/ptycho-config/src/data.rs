//! Settings of reading a scan file: the units of its diffraction data and the reference's
//! coordinate transforms (`load_data(flip_x, flip_y, swap_xy, coord_scale)`, spec §2.1).

use serde::{Deserialize, Serialize};

/// What the numbers of a file's `diff3d` are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DiffractionUnits {
    /// Amplitudes, √counts (the reference's contract, DATA-001): used as they are.
    Amplitude,
    /// Photon counts (intensities): square-rooted at load; a negative count is an error.
    Counts,
    /// Integer arrays are counts; float arrays are counts when every value is a non-negative
    /// integer and the largest is ≥ 10 (amplitudes √counts of measured data are almost never all
    /// integers), else amplitudes. The choice is reported when the file is read.
    #[default]
    Auto,
}

word_enum!(DiffractionUnits, "diffraction_units", {
    Amplitude => "amplitude",
    Counts => "counts",
    Auto => "auto",
});

/// How to read a scan file: its units and the transforms applied to its coordinates at load, in
/// the reference's order (negate x, negate y, swap x and y, then multiply by `coord_scale`; all
/// four coordinate arrays alike).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DataOptions {
    pub diffraction_units: DiffractionUnits,
    pub flip_x: bool,
    pub flip_y: bool,
    pub swap_xy: bool,
    pub coord_scale: f64,
}

impl Default for DataOptions {
    fn default() -> Self {
        Self {
            diffraction_units: DiffractionUnits::Auto,
            flip_x: false,
            flip_y: false,
            swap_xy: false,
            coord_scale: 1.0,
        }
    }
}

impl DataOptions {
    /// Only the units (coordinates as stored).
    pub fn units(diffraction_units: DiffractionUnits) -> Self {
        Self {
            diffraction_units,
            ..Self::default()
        }
    }

    /// Whether any coordinate transform is asked for.
    pub fn transforms_coordinates(&self) -> bool {
        self.flip_x || self.flip_y || self.swap_xy || self.coord_scale != 1.0
    }
}
