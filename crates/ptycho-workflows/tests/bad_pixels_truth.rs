//! The NPZ key `bad_pixels` (Ptychodus' training export: an `(N, N)` bool mask; integer 0/1
//! accepted) and the real-space ground truth of the training loss (each group's first patch
//! centred on the group centre).

use std::path::Path;

use ndarray::{Array1, Array2, Array3};
use ndarray_npy::NpzWriter;
use num_complex::Complex32;
use ptycho_config::{ModelConfig, Params, TrainingConfig};
use ptycho_workflows::model_inputs::{OffsetSource, RealspaceTruth};
use ptycho_workflows::{RawData, WorkflowError, group};

const N: usize = 64;

fn base_raw(m: usize) -> RawData {
    let xs = Array1::from_shape_fn(m, |i| 60.0 + (i as f64 * 7.3) % 17.0);
    let ys = Array1::from_shape_fn(m, |i| 58.0 + (i as f64 * 3.1) % 19.0);
    let diff = Array3::from_shape_fn((m, N, N), |(k, r, c)| 1.0 + ((k + r * 3 + c) % 7) as f32);
    let probe = Array2::from_elem((N, N), Complex32::new(1.0, 0.0));
    RawData::from_coords_without_pc(xs, ys, diff, probe, None).unwrap()
}

/// An NPZ with the contract keys of `raw` plus `bad_pixels` written by `add`.
fn npz_with(path: &Path, raw: &RawData, add: impl FnOnce(&mut NpzWriter<std::fs::File>)) {
    let mut w = NpzWriter::new(std::fs::File::create(path).unwrap());
    w.add_array("xcoords", &raw.xcoords).unwrap();
    w.add_array("ycoords", &raw.ycoords).unwrap();
    w.add_array("diff3d", &raw.diff3d).unwrap();
    w.add_array("probeGuess", &raw.probe_guess).unwrap();
    add(&mut w);
    w.finish().unwrap();
}

fn bad_array_key(e: &WorkflowError) -> String {
    match e {
        WorkflowError::BadArray { key, .. } => key.clone(),
        other => panic!("expected BadArray, got {other:?}"),
    }
}

#[test]
fn bad_pixels_load_as_bool_or_integer_and_zero_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let raw = base_raw(12);
    let mut mask = Array2::from_elem((N, N), false);
    mask[[3, 4]] = true;
    mask[[N / 2, N / 2]] = true;

    // bool, as Ptychodus writes it.
    let p = dir.path().join("bool.npz");
    npz_with(&p, &raw, |w| w.add_array("bad_pixels", &mask).unwrap());
    let got = RawData::from_npz(&p).unwrap();
    assert_eq!(got.bad_pixels.as_ref(), Some(&mask));
    for k in 0..12 {
        assert_eq!(got.diff3d[[k, 3, 4]], 0.0);
        assert_eq!(got.diff3d[[k, N / 2, N / 2]], 0.0);
        assert_eq!(got.diff3d[[k, 3, 5]], raw.diff3d[[k, 3, 5]]);
    }

    // uint8 0/1.
    let p = dir.path().join("u8.npz");
    npz_with(&p, &raw, |w| {
        w.add_array("bad_pixels", &mask.mapv(|b| b as u8)).unwrap()
    });
    assert_eq!(
        RawData::from_npz(&p).unwrap().bad_pixels.as_ref(),
        Some(&mask)
    );

    // Written back by write_npz and read again.
    let p2 = dir.path().join("round.npz");
    got.write_npz(&p2).unwrap();
    let back = RawData::from_npz(&p2).unwrap();
    assert_eq!(back.bad_pixels, got.bad_pixels);
    assert_eq!(back.diff3d, got.diff3d);

    // Wrong shape, values other than 0/1, a float mask, every pixel bad: one error naming the key.
    for (name, write) in [
        (
            "shape",
            Box::new(|w: &mut NpzWriter<std::fs::File>| {
                w.add_array("bad_pixels", &Array2::from_elem((N, N - 1), false))
                    .unwrap()
            }) as Box<dyn FnOnce(&mut NpzWriter<std::fs::File>)>,
        ),
        (
            "value",
            Box::new(|w: &mut NpzWriter<std::fs::File>| {
                w.add_array("bad_pixels", &Array2::from_elem((N, N), 2i32))
                    .unwrap()
            }),
        ),
        (
            "float",
            Box::new(|w: &mut NpzWriter<std::fs::File>| {
                w.add_array("bad_pixels", &Array2::from_elem((N, N), 0.0f32))
                    .unwrap()
            }),
        ),
        (
            "all",
            Box::new(|w: &mut NpzWriter<std::fs::File>| {
                w.add_array("bad_pixels", &Array2::from_elem((N, N), true))
                    .unwrap()
            }),
        ),
    ] {
        let p = dir.path().join(format!("{name}.npz"));
        npz_with(&p, &raw, write);
        let e = RawData::from_npz(&p).unwrap_err();
        assert_eq!(bad_array_key(&e), "bad_pixels", "{name}: {e}");
        let msg = e.to_string();
        assert_eq!(msg.lines().count(), 1, "{msg}");
    }
    let e = RawData::from_npz(dir.path().join("shape.npz")).unwrap_err();
    assert!(e.to_string().contains("expected (64, 64)"), "{e}");
}

#[test]
fn realspace_truth_is_the_first_patch_centred_on_the_group_centre() {
    // A linear object amplitude (bilinear interpolation is exact on it): the centred truth of a
    // group equals the object window around the group centre, away from the patch border.
    let (h, w) = (160, 160);
    let amp = |x: f64, y: f64| 1.0 + 0.01 * x + 0.02 * y;
    let obj = Array2::from_shape_fn((h, w), |(r, c)| {
        Complex32::new(amp(c as f64, r as f64) as f32, 0.0)
    });
    let mut raw = base_raw(40);
    raw.object_guess = Some(obj);
    let cfg = TrainingConfig {
        model: ModelConfig {
            gridsize: 2,
            ..Default::default()
        },
        n_groups: 8,
        ..Default::default()
    }
    .validate()
    .unwrap();
    let params = Params::from_training(&cfg);
    let grouped = group(&raw, &params, &cfg.grouping()).unwrap();
    let truth = RealspaceTruth::from_grouped(&grouped, OffsetSource::Start).unwrap();
    assert_eq!((truth.g, truth.n), (grouped.n_groups(), N));
    let mut moved = 0;
    for g in 0..truth.g {
        let (cx, cy) = (
            grouped.coords_start_offsets[[g, 0, 0, 0]],
            grouped.coords_start_offsets[[g, 0, 1, 0]],
        );
        let r0 = (
            grouped.coords_start_relative[[g, 0, 0, 0]],
            grouped.coords_start_relative[[g, 0, 1, 0]],
        );
        if r0.0.abs() > 0.5 || r0.1.abs() > 0.5 {
            moved += 1;
        }
        for i in 16..48 {
            for j in 16..48 {
                let want = amp(
                    cx - (N / 2) as f64 + j as f64,
                    cy - (N / 2) as f64 + i as f64,
                );
                let got = truth.amp[g * N * N + i * N + j] as f64;
                assert!(
                    (got - want).abs() < 1e-4,
                    "group {g} pixel ({i}, {j}): {got} vs {want}"
                );
            }
        }
    }
    assert!(moved > 0, "some first members sit off their group centre");
    // Without ground truth there is none.
    let mut plain = raw.clone();
    plain.object_guess = None;
    let grouped = group(&plain, &params, &cfg.grouping()).unwrap();
    assert!(RealspaceTruth::from_grouped(&grouped, OffsetSource::Start).is_none());
}
