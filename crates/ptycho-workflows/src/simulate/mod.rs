//! Coordinate-based simulation of synthetic training data (spec §8.1–8.3).

pub mod lines;
pub mod objects;
pub mod quality;

use ndarray::{Array1, Array2, Array3, Axis};
use num_complex::{Complex32, Complex64};
use ptycho_config::{SimObject, SimulationConfig, Valid};
use ptycho_model::physics::{default_probe, far_field_amplitude};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, Poisson};
use rayon::prelude::*;

use crate::data::RawData;
use crate::error::{Result, WorkflowError};
use crate::patches::extract_patch;

fn serr(reason: impl Into<String>) -> WorkflowError {
    WorkflowError::Simulation {
        reason: reason.into(),
    }
}

/// Simulate a dataset (spec §8.1) on the configured synthetic object with the default probe, or
/// on the `objectGuess` and `probeGuess` of `input_file`: uniform scan positions in
/// `[buffer, W − buffer)`, object patches, illumination with the raw probe, far-field amplitudes
/// via [`far_field_amplitude`] at the dataset scale `s_sim = sqrt(nphotons / mean Σ|O·P|²)`,
/// optional Poisson noise on the counts, stored as `diff3d = X / s_sim` (amplitudes in
/// object×probe units). Returns the `RawData` with `objectGuess` and `probeGuess`.
pub fn simulate(cfg: &Valid<SimulationConfig>) -> Result<RawData> {
    let n = cfg.n;
    let mut rng = StdRng::seed_from_u64(cfg.seed);
    let (object_c, probe_guess) = match &cfg.input_file {
        Some(path) => {
            let (object, probe) = crate::data::object_and_probe(path)?;
            let (ph, pw) = probe.dim();
            if ph != n || pw != n {
                return Err(WorkflowError::BadArray {
                    path: path.clone(),
                    key: "probeGuess".into(),
                    reason: format!(
                        "probe is {ph}x{pw} but N = {n}: set N (--n) to the probe's width"
                    ),
                });
            }
            let (oh, ow) = object.dim();
            if oh < n || ow < n {
                return Err(WorkflowError::BadArray {
                    path: path.clone(),
                    key: "objectGuess".into(),
                    reason: format!("object is {oh}x{ow}, smaller than the probe (N = {n})"),
                });
            }
            (object, probe)
        }
        None => {
            let size = cfg.object_side();
            let object = match cfg.object {
                SimObject::Lines => lines::lines_object(size, &mut rng),
                SimObject::Grf => objects::grf_object(size, &mut rng),
                SimObject::Points => objects::points_object(size, &mut rng),
                SimObject::Diagonals => objects::diagonals_object(size, &mut rng),
            };
            let probe64 = default_probe(n, cfg.default_probe_scale);
            (
                object.mapv(|v| Complex32::new(v as f32, 0.0)),
                probe64.mapv(|z| Complex32::new(z.re as f32, z.im as f32)),
            )
        }
    };

    scan_object(object_c, probe_guess, cfg, &mut rng)
}

/// Scan `object` with `probe` (N×N, N = `cfg.n`) as [`simulate`] does: `cfg.n_images` uniform
/// positions in `[buffer, W − buffer)` drawn from `rng` (x first, then y), diffraction via
/// [`diffract_positions`] with `cfg.nphotons` and, when `cfg.noise`, Poisson noise seeded by
/// `cfg.seed`. The object and probe become `objectGuess` and `probeGuess`.
pub fn scan_object(
    object_c: Array2<Complex32>,
    probe_guess: Array2<Complex32>,
    cfg: &Valid<SimulationConfig>,
    rng: &mut StdRng,
) -> Result<RawData> {
    let n = cfg.n;
    if probe_guess.dim() != (n, n) {
        return Err(serr(format!(
            "probe is {:?}, not N×N with N = {n}",
            probe_guess.dim()
        )));
    }
    let (h, w) = object_c.dim();
    if h < n || w < n {
        return Err(serr(format!(
            "object is {h}x{w}, smaller than the probe (N = {n})"
        )));
    }
    let buffer = cfg.scan_margin(h, w);
    let xs: Array1<f64> = (0..cfg.n_images)
        .map(|_| rng.random_range(buffer..w as f64 - buffer))
        .collect();
    let ys: Array1<f64> = (0..cfg.n_images)
        .map(|_| rng.random_range(buffer..h as f64 - buffer))
        .collect();

    let diff3d = diffract_positions(
        &object_c,
        probe_guess.view(),
        &xs,
        &ys,
        cfg.nphotons,
        cfg.noise.then_some(cfg.seed),
    )?;
    let m = cfg.n_images;
    RawData::from_coords_without_pc(xs, ys, diff3d, probe_guess, Some(object_c)).map(|mut r| {
        r.scan_index = Some(Array1::zeros(m));
        r.metadata_nphotons = Some(cfg.nphotons);
        r
    })
}

/// [`simulate`] under its first name (the lines object was the only one).
pub fn simulate_lines(cfg: &Valid<SimulationConfig>) -> Result<RawData> {
    simulate(cfg)
}

/// Forward model of a scan (spec §8.1 steps 4–6) on given positions: returns
/// `diff3d = X / s_sim` `(M, N, N)` f32, with `X` noise-free amplitudes (`noise_seed = None`) or
/// `sqrt(Poisson(A²))` drawn with per-pattern RNGs derived from `noise_seed`.
pub fn diffract_positions(
    object: &Array2<Complex32>,
    probe: ndarray::ArrayView2<Complex32>,
    xs: &Array1<f64>,
    ys: &Array1<f64>,
    nphotons: f64,
    noise_seed: Option<u64>,
) -> Result<Array3<f32>> {
    let n = probe.nrows();
    let probe64 = probe.mapv(|z| Complex64::new(z.re as f64, z.im as f64));
    let m = xs.len();
    let exit: Vec<Array2<Complex64>> = (0..m)
        .into_par_iter()
        .map(|i| extract_patch(object.view(), xs[i], ys[i], n) * &probe64)
        .collect();
    let mean_energy = exit
        .iter()
        .map(|e| e.iter().map(|z| z.norm_sqr()).sum::<f64>())
        .sum::<f64>()
        / m as f64;
    if mean_energy.is_nan() || mean_energy <= 0.0 {
        return Err(serr("illuminated object has zero energy"));
    }
    let s_sim = (nphotons / mean_energy).sqrt();
    let amps: Vec<Result<Array2<f64>>> = exit
        .par_iter()
        .enumerate()
        .map(|(i, psi)| -> Result<Array2<f64>> {
            let a = far_field_amplitude((psi * s_sim).view())?;
            match noise_seed {
                None => Ok(a),
                Some(seed) => {
                    let mut rng = StdRng::seed_from_u64(
                        seed ^ (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15),
                    );
                    let mut out = Array2::<f64>::zeros(a.dim());
                    for (o, &v) in out.iter_mut().zip(a.iter()) {
                        let lam = v * v;
                        *o = if lam > 0.0 {
                            let p = Poisson::new(lam).map_err(|e| {
                                serr(format!("Poisson rate {lam} for pattern {i}: {e}"))
                            })?;
                            p.sample(&mut rng).sqrt()
                        } else {
                            0.0
                        };
                    }
                    Ok(out)
                }
            }
        })
        .collect();
    let mut diff3d = Array3::<f32>::zeros((m, n, n));
    for (i, a) in amps.into_iter().enumerate() {
        let a = a?;
        diff3d
            .index_axis_mut(Axis(0), i)
            .zip_mut_with(&a, |d, &v| *d = (v / s_sim) as f32);
    }
    Ok(diff3d)
}
