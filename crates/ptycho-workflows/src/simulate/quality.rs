//! The objects and probes of the reconstruction quality suite (issue #19, `ptycho bench
//! --quality`), written once here: a **complex object** (amplitude in [0.5, 1] from the 'lines'
//! image, a smooth Gaussian-random-field phase in [−1, 1] rad) scanned with a **complex probe**
//! (the default disk probe times a quadratic phase chirp, 0.5 rad at r = 11 px), and the plain
//! 'lines' object with the default probe (real, zero phase), as [`super::simulate`] makes it.
//!
//! Units: amplitudes are dimensionless transmissions, phases radians, distances pixels.

use std::fmt;

use ndarray::Array2;
use num_complex::{Complex32, Complex64};
use ptycho_config::{SimulationConfig, Valid};
use ptycho_model::physics::{default_probe, gaussian_filter};
use rand::SeedableRng;
use rand::rngs::StdRng;

use super::lines::lines_object;
use super::objects::grf_object;
use super::{scan_object, simulate};
use crate::data::RawData;
use crate::error::Result;

/// Amplitude range of the complex object: the lines image mapped linearly onto it.
pub const AMPLITUDE_RANGE: (f64, f64) = (0.5, 1.0);
/// The complex object's phase spans `[−PHASE_AMPLITUDE_RAD, +PHASE_AMPLITUDE_RAD]`.
pub const PHASE_AMPLITUDE_RAD: f64 = 1.0;
/// σ (pixels) of the Gaussian smoothing applied to the GRF before it becomes the phase (the
/// GRF's k^−0.4 spectrum alone varies on the scale of a few pixels; this makes the phase
/// smooth on the scale of the stitching crop).
pub const PHASE_SMOOTHING_SIGMA_PX: f64 = 3.0;
/// Phase of the probe chirp at [`PROBE_CHIRP_RADIUS_PX`]: `φ(r) = 0.5 · (r / 11 px)²` rad.
pub const PROBE_CHIRP_RAD: f64 = 0.5;
/// Radius (pixels from the probe centre `((N − 1)/2, (N − 1)/2)`) at which the chirp reaches
/// [`PROBE_CHIRP_RAD`].
pub const PROBE_CHIRP_RADIUS_PX: f64 = 11.0;

/// An object of the quality suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QualityObject {
    /// [`complex_object`] scanned with [`chirped_probe`].
    Complex,
    /// The 'lines' object with the default probe ([`super::simulate`]).
    Lines,
}

impl QualityObject {
    /// Every kind, in report order.
    pub const ALL: [QualityObject; 2] = [QualityObject::Complex, QualityObject::Lines];

    /// The name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            QualityObject::Complex => "complex",
            QualityObject::Lines => "lines",
        }
    }
}

impl fmt::Display for QualityObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for QualityObject {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|o| o.name() == s)
            .ok_or_else(|| format!("unknown object `{s}` (complex, lines)"))
    }
}

/// `v` mapped linearly from its own [min, max] onto `[lo, hi]` (a constant image maps to the
/// middle).
fn rescale(v: &Array2<f64>, lo: f64, hi: f64) -> Array2<f64> {
    let (min, max) = v
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
            (a.min(x), b.max(x))
        });
    if max > min {
        v.mapv(|x| lo + (hi - lo) * (x - min) / (max - min))
    } else {
        v.mapv(|_| 0.5 * (lo + hi))
    }
}

/// The complex test object of side `size`: amplitude = the 'lines' image rescaled to
/// [`AMPLITUDE_RANGE`], phase = a GRF ([`grf_object`]) smoothed with σ =
/// [`PHASE_SMOOTHING_SIGMA_PX`] and rescaled to ±[`PHASE_AMPLITUDE_RAD`]; both drawn from `rng`
/// (lines first).
pub fn complex_object(size: usize, rng: &mut StdRng) -> Array2<Complex32> {
    let (lo, hi) = AMPLITUDE_RANGE;
    let amplitude = rescale(&lines_object(size, rng), lo, hi);
    let grf = grf_object(size, rng);
    let smooth = gaussian_filter(grf.view(), PHASE_SMOOTHING_SIGMA_PX);
    let phase = rescale(&smooth, -PHASE_AMPLITUDE_RAD, PHASE_AMPLITUDE_RAD);
    ndarray::Zip::from(&amplitude)
        .and(&phase)
        .map_collect(|&a, &p| {
            let z = Complex64::from_polar(a, p);
            Complex32::new(z.re as f32, z.im as f32)
        })
}

/// The complex test probe, `n × n`: the default probe ([`default_probe`] with
/// `default_probe_scale`) times `exp(i · 0.5 · (r / 11)²)`, r the distance in pixels from the
/// probe centre `((n − 1)/2, (n − 1)/2)`.
pub fn chirped_probe(n: usize, default_probe_scale: f64) -> Array2<Complex32> {
    let c = (n as f64 - 1.0) / 2.0;
    let k = PROBE_CHIRP_RAD / (PROBE_CHIRP_RADIUS_PX * PROBE_CHIRP_RADIUS_PX);
    let disk = default_probe(n, default_probe_scale);
    Array2::from_shape_fn((n, n), |(i, j)| {
        let r2 = (i as f64 - c).powi(2) + (j as f64 - c).powi(2);
        let z = disk[[i, j]] * Complex64::from_polar(1.0, k * r2);
        Complex32::new(z.re as f32, z.im as f32)
    })
}

/// A simulated scan of `object` with the settings `cfg` (positions, N, photons, noise, object
/// side, seed): [`QualityObject::Lines`] is [`super::simulate`] of the lines object with the
/// default probe; [`QualityObject::Complex`] draws [`complex_object`] of side
/// `cfg.object_side()` from `cfg.seed`, then the positions from the same stream, and scans it
/// with [`chirped_probe`].
pub fn simulate_quality(object: QualityObject, cfg: &Valid<SimulationConfig>) -> Result<RawData> {
    match object {
        QualityObject::Lines => simulate(cfg),
        QualityObject::Complex => {
            let mut rng = StdRng::seed_from_u64(cfg.seed);
            let obj = complex_object(cfg.object_side(), &mut rng);
            let probe = chirped_probe(cfg.n, cfg.default_probe_scale);
            scan_object(obj, probe, cfg, &mut rng)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complex_object_has_the_recipe_ranges() {
        let mut rng = StdRng::seed_from_u64(3);
        let o = complex_object(96, &mut rng);
        assert_eq!(o.dim(), (96, 96));
        let amp: Vec<f64> = o.iter().map(|z| f64::from(z.norm())).collect();
        let phase: Vec<f64> = o.iter().map(|z| f64::from(z.arg())).collect();
        let range = |v: &[f64]| {
            v.iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
                    (a.min(x), b.max(x))
                })
        };
        let ((a0, a1), (p0, p1)) = (range(&amp), range(&phase));
        assert!(
            (a0 - 0.5).abs() < 1e-6 && (a1 - 1.0).abs() < 1e-6,
            "{a0} {a1}"
        );
        assert!(
            (p0 + 1.0).abs() < 1e-6 && (p1 - 1.0).abs() < 1e-6,
            "{p0} {p1}"
        );
        // Smooth: neighbouring phases differ by far less than the range.
        let steps = o
            .rows()
            .into_iter()
            .flat_map(|r| {
                r.windows(2)
                    .into_iter()
                    .map(|w| f64::from((w[1] / w[0]).arg().abs()))
                    .collect::<Vec<_>>()
            })
            .fold(0.0, f64::max);
        assert!(steps < 0.3, "largest phase step {steps} rad");
        // Seeded.
        let again = complex_object(96, &mut StdRng::seed_from_u64(3));
        assert_eq!(o, again);
    }

    #[test]
    fn chirped_probe_is_the_default_disk_with_a_quadratic_phase() {
        let n = 64;
        let p = chirped_probe(n, 0.7);
        let disk = default_probe(n, 0.7);
        let c = (n as f64 - 1.0) / 2.0;
        for ((i, j), z) in p.indexed_iter() {
            let d = disk[[i, j]].re;
            assert!((f64::from(z.norm()) - d).abs() < 1e-6 * (1.0 + d));
            let r2 = (i as f64 - c).powi(2) + (j as f64 - c).powi(2);
            if d > 0.1 && r2 < 20.0 * 20.0 {
                let want = 0.5 * r2 / 121.0;
                let got = f64::from(z.arg()).rem_euclid(std::f64::consts::TAU);
                let want = want.rem_euclid(std::f64::consts::TAU);
                let diff = (got - want).abs();
                assert!(diff.min(std::f64::consts::TAU - diff) < 1e-5, "({i}, {j})");
            }
        }
    }

    #[test]
    fn quality_scans_carry_their_object_and_probe() {
        let cfg = SimulationConfig {
            n_images: 6,
            object_size: Some(96),
            noise: false,
            ..Default::default()
        }
        .validate()
        .unwrap();
        let c = simulate_quality(QualityObject::Complex, &cfg).unwrap();
        assert_eq!(c.n_points(), 6);
        let obj = c.object_guess.as_ref().unwrap();
        assert_eq!(obj.dim(), (96, 96));
        assert!(obj.iter().any(|z| z.im.abs() > 0.1), "complex object");
        assert!(
            c.probe_guess.iter().any(|z| z.im.abs() > 0.1),
            "complex probe"
        );
        let l = simulate_quality(QualityObject::Lines, &cfg).unwrap();
        let lines = l.object_guess.as_ref().unwrap();
        assert!(lines.iter().all(|z| z.im == 0.0), "lines: real");
        assert_eq!("lines".parse::<QualityObject>(), Ok(QualityObject::Lines));
        assert!("grf".parse::<QualityObject>().is_err());
    }
}
