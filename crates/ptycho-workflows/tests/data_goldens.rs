//! Physics primitives and scales of the data layer against the reference goldens:
//! forward model, intensity scales, the bilinear translate, default probe, probe normalisation.

use std::fs::File;

use ndarray::{Array0, Array2, Array4, ArrayD, Axis, s};
use ndarray_npy::NpzReader;
use num_complex::{Complex32, Complex64};
use ptycho_model::physics::{default_probe, far_field_amplitude, normalize_probe, translate};
use ptycho_workflows::RawData;
use ptycho_workflows::normalize::{intensity_scale, normalization_factor, scale_nphotons};
use ptycho_workflows::patches::extract_patch;

mod common;
use common::golden;

fn open(name: &str) -> NpzReader<File> {
    NpzReader::new(File::open(golden(name)).unwrap()).unwrap()
}

fn scalar(npz: &mut NpzReader<File>, key: &str) -> f64 {
    let a: ArrayD<f64> = npz.by_name(key).unwrap();
    a.iter().next().copied().unwrap()
}

fn c64(z: &Complex32) -> Complex64 {
    Complex64::new(z.re as f64, z.im as f64)
}

/// max |a − b| / max |b|.
fn rel_err(a: impl Iterator<Item = f64>, b: impl Iterator<Item = f64> + Clone) -> f64 {
    let scale = b.clone().map(f64::abs).fold(0.0, f64::max);
    a.zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max) / scale
}

#[test]
fn far_field_amplitude_matches_forward_model_golden() {
    let mut npz = open("forward_model.npz");
    let obj: Array4<Complex32> = npz.by_name("object_patches").unwrap();
    for (probe_key, amp_key, exit_key) in [
        (
            "probe_default",
            "diffraction_amp_default",
            "exit_wave_default",
        ),
        (
            "probe_complex",
            "diffraction_amp_complex",
            "exit_wave_complex",
        ),
    ] {
        let probe: Array2<Complex32> = npz.by_name(probe_key).unwrap();
        let amp: Array4<f32> = npz.by_name(amp_key).unwrap();
        let exit: Array4<Complex32> = npz.by_name(exit_key).unwrap();
        let mut worst: f64 = 0.0;
        for b in 0..obj.len_of(Axis(0)) {
            let psi = Array2::from_shape_fn((64, 64), |(r, c)| {
                c64(&obj[[b, r, c, 0]]) * c64(&probe[[r, c]])
            });
            let e_ref = exit.slice(s![b, .., .., 0]);
            let e = rel_err(
                psi.iter().flat_map(|z| [z.re, z.im]),
                e_ref.iter().flat_map(|z| [z.re as f64, z.im as f64]),
            );
            assert!(e < 1e-6, "{exit_key}[{b}] rel err {e}");
            let a = far_field_amplitude(psi.view()).unwrap();
            let a_ref = amp.slice(s![b, .., .., 0]);
            let e = rel_err(a.iter().copied(), a_ref.iter().map(|&v| v as f64));
            worst = worst.max(e);
        }
        eprintln!("{amp_key}: max rel err {worst:.2e}");
        assert!(worst < 1e-5, "{amp_key}: rel err {worst}");
    }
}

#[test]
fn illumination_scale_and_probe_normalisation_match_golden() {
    let mut npz = open("forward_model.npz");
    let obj: Array4<Complex32> = npz.by_name("object_patches").unwrap();
    let probe: Array2<Complex32> = npz.by_name("probe_complex").unwrap();
    let s_ref = scalar(&mut npz, "illum_intensity_scale");
    let energies = (0..8).map(|b| {
        let mut e = 0.0;
        for r in 0..64 {
            for c in 0..64 {
                e += (obj[[b, r, c, 0]].norm() as f64 * probe[[r, c]].norm() as f64).powi(2);
            }
        }
        e
    });
    let s = scale_nphotons(energies, 1e9);
    assert!((s / s_ref - 1.0).abs() < 1e-6, "illum scale {s} vs {s_ref}");
    let illum_x: Array4<f32> = npz.by_name("illum_X").unwrap();
    let psi = Array2::from_shape_fn((64, 64), |(r, c)| {
        c64(&obj[[3, r, c, 0]]) * c64(&probe[[r, c]]) * s
    });
    let x = far_field_amplitude(psi.view()).unwrap().mapv(|v| v / s);
    let e = rel_err(
        x.iter().copied(),
        illum_x.slice(s![3, .., .., 0]).iter().map(|&v| v as f64),
    );
    assert!(e < 1e-5, "illum_X rel err {e}");

    let pn_ref: ArrayD<Complex32> = npz.by_name("probe_complex_model_normalized").unwrap();
    let pn = normalize_probe(probe.mapv(|z| c64(&z)).view(), 4.0);
    let e = rel_err(
        pn.iter().flat_map(|z| [z.re, z.im]),
        pn_ref.iter().flat_map(|z| [z.re as f64, z.im as f64]),
    );
    eprintln!("probe normalisation rel err {e:.2e}");
    assert!(e < 1e-6, "normalised probe rel err {e}");
}

#[test]
fn default_probe_equals_reference_probe_guess() {
    let raw = RawData::from_npz(golden("sim_lines_test.npz")).unwrap();
    let p = default_probe(64, 0.7);
    let e = rel_err(
        p.iter().map(|z| z.re),
        raw.probe_guess.iter().map(|z| z.re as f64),
    );
    eprintln!("default probe rel err {e:.2e}");
    assert!(e < 1e-6, "default probe rel err {e}");
    assert!(raw.probe_guess.iter().all(|z| z.im == 0.0));
}

#[test]
fn intensity_scales_match_golden() {
    let mut npz = open("intensity_scale.npz");
    let nph = scalar(&mut npz, "nphotons");
    let n: Array0<i64> = npz.by_name("N").unwrap();
    let n = n.into_scalar() as usize;
    let s = intensity_scale(nph, n);
    let want = scalar(&mut npz, "train_pinn_intensity_scale");
    // The reference stores the float32-rounded value.
    assert!((s / want - 1.0).abs() < 1e-7, "{s} vs {want}");
    for (key, p) in [
        ("train_pinn_intensity_scale_nphotons_1e+04", 1e4),
        ("train_pinn_intensity_scale_nphotons_1e+06", 1e6),
        ("train_pinn_intensity_scale_nphotons_1e+09", 1e9),
    ] {
        let want = scalar(&mut npz, key);
        assert!((intensity_scale(p, n) / want - 1.0).abs() < 1e-7, "{key}");
    }

    let raw = RawData::from_npz(golden("sim_lines_train.npz")).unwrap();
    let d4 = raw.diff3d.clone().insert_axis(Axis(3));
    let f = normalization_factor(d4.view());
    let want = scalar(&mut npz, "X_full_norm_full_train");
    eprintln!(
        "X_full_norm_full_train rel err {:.2e}",
        (f / want - 1.0).abs()
    );
    assert!((f / want - 1.0).abs() < 1e-6, "{f} vs {want}");

    let energies: Vec<f64> = raw
        .diff3d
        .axis_iter(Axis(0))
        .map(|p| p.iter().map(|&v| (v as f64).powi(2)).sum())
        .collect();
    let sn = scale_nphotons(energies.iter().copied(), nph);
    let want = scalar(&mut npz, "scale_nphotons_of_diff3d_train");
    assert!((sn / want - 1.0).abs() < 1e-6, "{sn} vs {want}");

    // Simulation scale: from the ground-truth patches of the object at the scan positions.
    let obj = raw.object_guess.as_ref().unwrap();
    let probe_abs = raw.probe_guess.mapv(|z| z.norm() as f64);
    let sim_energies = (0..raw.n_points()).map(|i| {
        let p = extract_patch(obj.view(), raw.xcoords[i], raw.ycoords[i], 64);
        p.iter()
            .zip(probe_abs.iter())
            .map(|(z, a)| (z.norm() * a).powi(2))
            .sum::<f64>()
    });
    let s_sim = scale_nphotons(sim_energies, nph);
    let want = scalar(&mut npz, "simulation_intensity_scale_train");
    eprintln!(
        "simulation_intensity_scale_train rel err {:.2e}",
        (s_sim / want - 1.0).abs()
    );
    assert!((s_sim / want - 1.0).abs() < 1e-5, "{s_sim} vs {want}");

    let photons = energies.iter().sum::<f64>() / energies.len() as f64 * s_sim * s_sim;
    let want = scalar(&mut npz, "mean_photons_per_pattern_diff3d_scaled");
    assert!((photons / want - 1.0).abs() < 1e-4, "{photons} vs {want}");
}

#[test]
fn translate_primitive_matches_stitching_golden() {
    let mut npz = open("stitching.npz");
    let input: Array4<Complex32> = npz.by_name("translate_in").unwrap();
    let offs: Array2<f32> = npz.by_name("translate_offsets").unwrap();
    let out: Array4<Complex32> = npz.by_name("translate_out").unwrap();
    let mut worst: f64 = 0.0;
    for b in 0..input.len_of(Axis(0)) {
        let img = input.slice(s![b, .., .., 0]).mapv(|z| c64(&z));
        let t = translate(img.view(), offs[[b, 0]] as f64, offs[[b, 1]] as f64);
        let r = out.slice(s![b, .., .., 0]);
        let e = rel_err(
            t.iter().flat_map(|z| [z.re, z.im]),
            r.iter().flat_map(|z| [z.re as f64, z.im as f64]),
        );
        worst = worst.max(e);
    }
    eprintln!("translate rel err {worst:.2e}");
    assert!(worst < 1e-5, "translate rel err {worst}");
}
