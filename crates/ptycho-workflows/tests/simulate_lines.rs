//! Simulation: noise-free consistency with the forward model, photon budget with noise, and
//! the written file round trip.

use ndarray::{Axis, s};
use num_complex::Complex64;
use ptycho_config::SimulationConfig;
use ptycho_model::physics::far_field_amplitude;
use ptycho_workflows::patches::extract_patch;
use ptycho_workflows::{RawData, simulate_lines};

fn opts(noise: bool) -> SimulationConfig {
    SimulationConfig {
        n_images: 64,
        nphotons: 1e6,
        seed: 5,
        noise,
        ..Default::default()
    }
}

#[test]
fn noise_free_diffraction_is_the_forward_model_of_the_file() {
    let raw = simulate_lines(&opts(false).validate().unwrap()).unwrap();
    assert_eq!(raw.diff3d.dim(), (64, 64, 64));
    let obj = raw.object_guess.as_ref().unwrap();
    assert_eq!(obj.dim(), (224, 224));
    // Positions respect the buffer N/2.
    assert!(raw.xcoords.iter().all(|&x| (32.0..192.0).contains(&x)));
    assert!(raw.ycoords.iter().all(|&y| (32.0..192.0).contains(&y)));
    let probe = raw
        .probe_guess
        .mapv(|z| Complex64::new(z.re as f64, z.im as f64));
    let mut worst: f64 = 0.0;
    for i in [0, 17, 63] {
        let psi = extract_patch(obj.view(), raw.xcoords[i], raw.ycoords[i], 64) * &probe;
        let a = far_field_amplitude(psi.view()).unwrap();
        let d = raw.diff3d.index_axis(Axis(0), i);
        let scale = a.iter().cloned().fold(0.0, f64::max);
        let e = a
            .iter()
            .zip(d.iter())
            .map(|(x, &y)| (x - y as f64).abs())
            .fold(0.0, f64::max)
            / scale;
        worst = worst.max(e);
    }
    eprintln!("noise-free diff3d vs forward model rel err {worst:.2e}");
    assert!(worst < 1e-5, "rel err {worst}");
    // Deterministic in the seed.
    let again = simulate_lines(&opts(false).validate().unwrap()).unwrap();
    assert_eq!(again, raw);
}

#[test]
fn poisson_noise_carries_nphotons_per_pattern() {
    let o = opts(true).validate().unwrap();
    let raw = simulate_lines(&o).unwrap();
    let clean = simulate_lines(&opts(false).validate().unwrap()).unwrap();
    assert_eq!(raw.xcoords, clean.xcoords);
    // s_sim from the noise-free data: mean Σ diff3d² · s² = nphotons by construction.
    let energy = |r: &RawData| {
        r.diff3d
            .axis_iter(Axis(0))
            .map(|p| p.iter().map(|&v| (v as f64).powi(2)).sum::<f64>())
            .sum::<f64>()
            / r.n_points() as f64
    };
    let s2 = o.nphotons / energy(&clean);
    let photons = energy(&raw) * s2;
    eprintln!(
        "mean photons per pattern {photons:.1} (target {})",
        o.nphotons
    );
    assert!(
        (photons / o.nphotons - 1.0).abs() < 0.02,
        "photons {photons}"
    );
    // Counts are integers: (s·diff3d)² rounds to whole photons.
    let s = s2.sqrt();
    let p = raw.diff3d.slice(s![0, 30..34, 30..34]);
    for &v in p.iter() {
        let c = (s * v as f64).powi(2);
        assert!((c - c.round()).abs() < 1e-2 * c.max(1.0), "count {c}");
    }
    assert_ne!(raw.diff3d, clean.diff3d);
}

#[test]
fn simulated_file_round_trips() {
    let raw = simulate_lines(
        &SimulationConfig {
            n_images: 8,
            ..opts(true)
        }
        .validate()
        .unwrap(),
    )
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("sim.npz");
    raw.write_npz(&p).unwrap();
    assert_eq!(RawData::from_npz(&p).unwrap(), raw);
}
