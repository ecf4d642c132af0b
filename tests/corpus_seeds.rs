//! Seed inputs of the fuzz targets (`fuzz/seeds/<target>/`): small valid files, committed so a
//! fuzzing run starts from inputs that reach deep into the readers. This test checks that each
//! committed seed is still accepted by its reader (a format change would silently make the
//! fuzzers shallow otherwise). `PTYCHO_WRITE_FUZZ_SEEDS=1` (re)writes them first.

use std::convert::Infallible;
use std::path::{Path, PathBuf};

use burn::nn::{Linear, LinearConfig};
use burn::tensor::Device;
use ndarray::{Array1, Array2, Array3};
use num_complex::Complex32;
use ptycho_config::{Params, TrainingConfig};
use ptycho_persist::{SaveOptions, load_archive, save_archive};
use ptycho_workflows::RawData;

fn seeds_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/seeds")
        .join(target)
}

/// The model the `archive` fuzz target builds from the restored params (keep in sync with
/// `fuzz/fuzz_targets/archive.rs`).
fn build(p: &Params) -> Result<Linear, Infallible> {
    Ok(LinearConfig::new(p.channels(), 2).init(&Device::flex()))
}

fn small_raw(m: usize, n: usize, with_object: bool) -> RawData {
    let xs = Array1::from_iter((0..m).map(|i| 10.0 + i as f64));
    let ys = Array1::from_iter((0..m).map(|i| 12.0 - 0.5 * i as f64));
    let diff = Array3::from_shape_fn((m, n, n), |(k, r, c)| (k + r * c) as f32 * 0.25);
    let probe = Array2::from_shape_fn((n, n), |(r, c)| {
        Complex32::new(1.0 / (1 + r + c) as f32, 0.1)
    });
    let object = with_object.then(|| Array2::from_elem((2 * n, 2 * n), Complex32::new(1.0, -0.5)));
    RawData::from_coords_without_pc(xs, ys, diff, probe, object).unwrap()
}

fn write_seeds() {
    let npz = seeds_dir("npz");
    std::fs::create_dir_all(&npz).unwrap();
    for (name, raw) in [
        ("small.npz", small_raw(3, 4, true)),
        ("no_object.npz", small_raw(2, 2, false)),
    ] {
        let p = npz.join(name);
        let _ = std::fs::remove_file(&p);
        raw.write_npz(&p).unwrap();
    }
    let archive = seeds_dir("archive");
    std::fs::create_dir_all(&archive).unwrap();
    let p = archive.join("linear.wts.h5.zip");
    let _ = std::fs::remove_file(&p);
    let params = Params::from_training(&TrainingConfig::default().validate().unwrap());
    save_archive(
        &p,
        &build(&params).unwrap(),
        &params,
        &SaveOptions::default(),
    )
    .unwrap();
}

#[test]
fn committed_fuzz_seeds_are_valid_inputs() {
    if std::env::var_os("PTYCHO_WRITE_FUZZ_SEEDS").is_some() {
        write_seeds();
    }
    let mut n = 0;
    for entry in std::fs::read_dir(seeds_dir("npz")).unwrap() {
        let p = entry.unwrap().path();
        let raw = RawData::from_npz(&p).unwrap_or_else(|e| panic!("seed {}: {e}", p.display()));
        assert!(raw.n_points() >= 2, "{}", p.display());
        n += 1;
    }
    for entry in std::fs::read_dir(seeds_dir("archive")).unwrap() {
        let p = entry.unwrap().path();
        let (loaded, params) =
            load_archive(&p, build).unwrap_or_else(|e| panic!("seed {}: {e}", p.display()));
        assert_eq!(loaded.manifest.models.len(), 2);
        assert_eq!(params.n(), 64);
        n += 1;
    }
    assert!(n >= 3, "{n} seeds");
}
