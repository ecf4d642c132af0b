//! Grouping and dataset assembly against grouping_gs1.npz / grouping_gs2.npz, plus the
//! behaviour and errors of the group sampler.

use std::fs::File;
use std::time::Instant;

use ndarray::{Array2, Array4, ArrayD, Axis, s};
use ndarray_npy::NpzReader;
use num_complex::Complex32;
use ptycho_config::{GroupingConfig, ModelConfig, Params, TrainingConfig, Valid};
use ptycho_workflows::grouping::{group_indices, group_with_indices_using};
use ptycho_workflows::patches::extract_patch;
use ptycho_workflows::{PatchConvention, RawData, WorkflowError, group};

mod common;
use common::golden;

fn params(gridsize: usize) -> Params {
    let cfg = TrainingConfig {
        model: ModelConfig {
            gridsize,
            ..Default::default()
        },
        ..Default::default()
    }
    .validate()
    .unwrap();
    Params::from_training(&cfg)
}

/// The settings, validated.
fn valid(c: GroupingConfig) -> Valid<GroupingConfig> {
    c.validate().unwrap()
}

/// max |a − b| / max |b|.
fn rel_err(a: impl Iterator<Item = f64>, b: impl Iterator<Item = f64> + Clone) -> f64 {
    let scale = b.clone().map(f64::abs).fold(0.0, f64::max).max(1e-300);
    a.zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max) / scale
}

fn check_golden(file: &str, gridsize: usize) {
    let raw = RawData::from_npz(golden("sim_lines_train.npz")).unwrap();
    let mut npz = NpzReader::new(File::open(golden(file)).unwrap()).unwrap();
    let idx: Array2<i64> = npz.by_name("nn_indices").unwrap();
    let idx = idx.mapv(|v| v as usize);
    let p = params(gridsize);
    let t = Instant::now();
    let gd = group_with_indices_using(&raw, &p, &idx, PatchConvention::ReferenceMirrored).unwrap();
    eprintln!(
        "{file}: assembled {} groups in {:?}",
        idx.nrows(),
        t.elapsed()
    );

    let d: Array4<f32> = npz.by_name("diffraction").unwrap();
    assert_eq!(gd.diffraction, d, "{file} diffraction");
    let x: Array4<f32> = npz.by_name("X_full").unwrap();
    let e = rel_err(
        gd.x_full.iter().map(|&v| v as f64),
        x.iter().map(|&v| v as f64),
    );
    eprintln!("{file}: X_full rel err {e:.2e}");
    assert!(e < 1e-6, "{file} X_full rel err {e}");
    let f: ArrayD<f32> = npz.by_name("X_full_norm_scalar").unwrap();
    let f = *f.iter().next().unwrap() as f64;
    assert!(
        (gd.norm_factor / f - 1.0).abs() < 1e-6,
        "{} vs {f}",
        gd.norm_factor
    );

    for (key, got) in [
        ("coords_nn", &gd.coords_nn),
        ("coords_offsets", &gd.coords_offsets),
        ("coords_relative", &gd.coords_relative),
        ("coords_start_offsets", &gd.coords_start_offsets),
        ("coords_start_relative", &gd.coords_start_relative),
    ] {
        let want: Array4<f64> = npz.by_name(key).unwrap();
        assert_eq!(got.shape(), want.shape(), "{file} {key}");
        let e = got
            .iter()
            .zip(want.iter())
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(e < 1e-9, "{file} {key} max abs err {e}");
    }

    let y: Array4<Complex32> = npz.by_name("Y").unwrap();
    let gy = gd.y.as_ref().unwrap();
    let e = rel_err(
        gy.iter().flat_map(|z| [z.re as f64, z.im as f64]),
        y.iter().flat_map(|z| [z.re as f64, z.im as f64]),
    );
    eprintln!("{file}: Y (reference-mirrored) rel err {e:.2e}");
    assert!(e < 1e-5, "{file} Y rel err {e}");

    // Physically placed patches: each member's patch centred on its own scan position.
    let phys = group_with_indices_using(&raw, &p, &idx, PatchConvention::Physical).unwrap();
    let py = phys.y.unwrap();
    let obj = raw.object_guess.as_ref().unwrap();
    for (g, c) in [(0, 0), (idx.nrows() - 1, gridsize * gridsize - 1)] {
        let i = idx[[g, c]];
        let want = extract_patch(obj.view(), raw.xcoords[i], raw.ycoords[i], 64);
        let e = rel_err(
            py.slice(s![g, .., .., c]).iter().map(|z| z.re as f64),
            want.iter().map(|z| z.re),
        );
        assert!(e < 1e-6, "physical patch ({g},{c}) rel err {e}");
    }
    if gridsize == 1 {
        assert_eq!(py, *gy);
    } else {
        assert_ne!(
            py, *gy,
            "mirrored and physical conventions must differ for gs > 1"
        );
    }
}

#[test]
fn gridsize1_matches_golden() {
    check_golden("grouping_gs1.npz", 1);
}

#[test]
fn gridsize2_matches_golden() {
    check_golden("grouping_gs2.npz", 2);
}

fn grid_raw(side: usize) -> RawData {
    let m = side * side;
    let xs = ndarray::Array1::from_shape_fn(m, |i| 40.0 + 3.0 * (i % side) as f64);
    let ys =
        ndarray::Array1::from_shape_fn(m, |i| 40.0 + 3.0 * (i / side) as f64 + 0.01 * i as f64);
    let d = ndarray::Array3::from_shape_fn((m, 64, 64), |(i, r, _)| (i + r) as f32);
    let probe = Array2::from_elem((64, 64), Complex32::new(1.0, 0.0));
    RawData::from_coords_without_pc(xs, ys, d, probe, None).unwrap()
}

#[test]
fn sampler_behaviour_and_errors() {
    let raw = grid_raw(10);
    let (p1, p2) = (params(1), params(2));
    // gs = 1: distinct seeds, reproducible with a seed.
    let o = GroupingConfig {
        n_groups: 30,
        seed: 7,
        ..Default::default()
    };
    let a = group(&raw, &p1, &valid(o.clone())).unwrap();
    let b = group(&raw, &p1, &valid(o.clone())).unwrap();
    assert_eq!(a.nn_indices, b.nn_indices);
    let mut seen: Vec<usize> = a.nn_indices.iter().copied().collect();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), 30);
    assert!(a.coords_relative.iter().all(|&v| v == 0.0));
    assert!(a.y.is_none());
    // All points in file order when n_groups ≥ n.
    let all = group(
        &raw,
        &p1,
        &valid(GroupingConfig {
            n_groups: 500,
            ..o.clone()
        }),
    )
    .unwrap();
    assert_eq!(
        all.nn_indices.column(0).to_vec(),
        (0..100).collect::<Vec<_>>()
    );
    // Sequential.
    let seq = group_indices(
        &raw,
        1,
        &valid(GroupingConfig {
            n_groups: 5,
            sequential_sampling: true,
            ..o.clone()
        }),
    )
    .unwrap();
    assert_eq!(seq.column(0).to_vec(), vec![0, 1, 2, 3, 4]);

    // gs = 2: 4 distinct members, all within the 4 nearest neighbours of some point.
    let g2 = group(
        &raw,
        &p2,
        &valid(GroupingConfig {
            n_groups: 40,
            ..o.clone()
        }),
    )
    .unwrap();
    assert_eq!(g2.nn_indices.dim(), (40, 4));
    for row in g2.nn_indices.axis_iter(Axis(0)) {
        let mut r = row.to_vec();
        r.sort_unstable();
        r.dedup();
        assert_eq!(r.len(), 4);
        // members are close together on the 3-px grid
        for &i in &r {
            for &j in &r {
                let dx = raw.xcoords[i] - raw.xcoords[j];
                let dy = raw.ycoords[i] - raw.ycoords[j];
                assert!((dx * dx + dy * dy).sqrt() < 9.0);
            }
        }
    }
    let c = &g2.coords_relative;
    for g in 0..40 {
        let sx: f64 = (0..4).map(|j| c[[g, 0, 0, j]]).sum();
        assert!(sx.abs() < 1e-9);
    }

    // Errors.
    let e = group(
        &raw,
        &p2,
        &valid(GroupingConfig {
            n_groups: 101,
            ..o.clone()
        }),
    )
    .unwrap_err();
    assert!(matches!(e, WorkflowError::Grouping { .. }) && e.to_string().contains("oversampling"));
    let e = group(
        &raw,
        &p2,
        &valid(GroupingConfig {
            n_groups: 10,
            neighbor_count: 3,
            ..o.clone()
        }),
    )
    .unwrap_err();
    assert!(e.to_string().contains("K = 3"), "{e}");
    let e = group(
        &raw,
        &p2,
        &valid(GroupingConfig {
            n_groups: 300,
            enable_oversampling: true,
            neighbor_pool_size: Some(3),
            ..o.clone()
        }),
    )
    .unwrap_err();
    assert!(e.to_string().contains("K = 3"), "{e}");
    let tiny = grid_raw(1);
    let e = group(
        &tiny,
        &p2,
        &valid(GroupingConfig {
            n_groups: 1,
            ..o.clone()
        }),
    )
    .unwrap_err();
    assert!(e.to_string().contains("fewer than"), "{e}");

    // Oversampling when enabled: more groups than points, each a valid 4-combination.
    let over = group_indices(
        &raw,
        4,
        &valid(GroupingConfig {
            n_groups: 300,
            enable_oversampling: true,
            neighbor_pool_size: Some(6),
            ..o.clone()
        }),
    )
    .unwrap();
    assert_eq!(over.dim(), (300, 4));
    for row in over.axis_iter(Axis(0)) {
        let mut r = row.to_vec();
        r.sort_unstable();
        r.dedup();
        assert_eq!(r.len(), 4);
    }
    // Bad index table.
    let bad = Array2::from_elem((2, 4), 1000usize);
    assert!(group_with_indices_using(&raw, &p2, &bad, PatchConvention::Physical).is_err());
    let bad = Array2::from_elem((2, 1), 0usize);
    assert!(group_with_indices_using(&raw, &p2, &bad, PatchConvention::Physical).is_err());
}

/// Not an assertion: prints the time to group the full 1024-pattern train file.
#[test]
fn timing_full_train_file() {
    let raw = RawData::from_npz(golden("sim_lines_train.npz")).unwrap();
    for gs in [1, 2] {
        let o = GroupingConfig {
            n_groups: 1024,
            seed: 1,
            ..Default::default()
        };
        let t = Instant::now();
        let g = group(&raw, &params(gs), &valid(o.clone())).unwrap();
        eprintln!(
            "timing: gs={gs}: {} groups (with ground-truth patches) in {:?}",
            g.n_groups(),
            t.elapsed()
        );
    }
}
