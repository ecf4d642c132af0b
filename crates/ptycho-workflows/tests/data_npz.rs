//! NPZ contract: loading the reference datasets, round trips, and every malformed-input error.

use std::io::Write;
use std::path::Path;

use ndarray::{Array1, Array2, Array3, Array4};
use ndarray_npy::NpzWriter;
use num_complex::{Complex32, Complex64};
use ptycho_workflows::{RawData, WorkflowError};
use serde_json::Value;

mod common;
use common::golden;

fn stat(v: &Value, split: &str, key: &str, what: &str) -> f64 {
    v[split]["stats"][key][what].as_f64().unwrap()
}

fn check_stats(name: &str, vals: &[f64], v: &Value, split: &str, key: &str) {
    let min = vals.iter().cloned().fold(f64::INFINITY, f64::min);
    let max = vals.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let mean_abs = vals.iter().map(|x| x.abs()).sum::<f64>() / vals.len() as f64;
    for (what, got) in [("min", min), ("max", max), ("mean_abs", mean_abs)] {
        let want = stat(v, split, key, what);
        let tol = 1e-6 * want.abs().max(1e-3);
        assert!(
            (got - want).abs() <= tol,
            "{name} {key} {what}: got {got}, want {want}"
        );
    }
}

#[test]
fn reference_datasets_load_with_documented_stats() {
    let meta: Value =
        serde_json::from_str(&std::fs::read_to_string(golden("sim_lines_datasets.json")).unwrap())
            .unwrap();
    for (split, file, m) in [
        ("train", "sim_lines_train.npz", 1024),
        ("test", "sim_lines_test.npz", 512),
    ] {
        let raw = RawData::from_npz(golden(file)).unwrap();
        assert_eq!(raw.n_points(), m);
        assert_eq!(raw.n(), 64);
        assert_eq!(raw.diff3d.dim(), (m, 64, 64));
        assert_eq!(raw.object_guess.as_ref().unwrap().dim(), (224, 224));
        assert_eq!(raw.scan_index.as_ref().unwrap().len(), m);
        check_stats(
            file,
            raw.xcoords.as_slice().unwrap(),
            &meta,
            split,
            "xcoords",
        );
        check_stats(
            file,
            raw.ycoords.as_slice().unwrap(),
            &meta,
            split,
            "ycoords",
        );
        check_stats(
            file,
            raw.xcoords_start.as_slice().unwrap(),
            &meta,
            split,
            "xcoords_start",
        );
        check_stats(
            file,
            raw.ycoords_start.as_slice().unwrap(),
            &meta,
            split,
            "ycoords_start",
        );
        let d: Vec<f64> = raw.diff3d.iter().map(|&v| v as f64).collect();
        check_stats(file, &d, &meta, split, "diff3d");
        let p: Vec<f64> = raw.probe_guess.iter().map(|z| z.norm() as f64).collect();
        check_stats(file, &p, &meta, split, "probeGuess");
        let o: Vec<f64> = raw
            .object_guess
            .as_ref()
            .unwrap()
            .iter()
            .map(|z| z.norm() as f64)
            .collect();
        check_stats(file, &o, &meta, split, "objectGuess");
    }
}

fn small_raw(m: usize, n: usize) -> RawData {
    let xs = Array1::from_shape_fn(m, |i| 10.0 + i as f64);
    let ys = Array1::from_shape_fn(m, |i| 20.0 + 0.5 * i as f64);
    let d = Array3::from_shape_fn((m, n, n), |(i, r, c)| (i + r * c) as f32 * 0.25);
    let p = Array2::from_shape_fn((n, n), |(r, c)| Complex32::new(r as f32, -(c as f32)));
    let o = Array2::from_shape_fn((3 * n, 3 * n), |(r, c)| Complex32::new(1.0, (r + c) as f32));
    RawData::from_coords_without_pc(xs, ys, d, p, Some(o)).unwrap()
}

#[test]
fn write_then_read_round_trips_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let mut raw = small_raw(5, 8);
    raw.xcoords_start[0] = 99.5;
    raw.scan_index = Some(Array1::from(vec![0, 1, 2, 3, 4]));
    let path = tmp.path().join("rt.npz");
    raw.write_npz(&path).unwrap();
    let back = RawData::from_npz(&path).unwrap();
    assert_eq!(back, raw);
    // No temporary files are left behind.
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1);
}

#[test]
fn subsample_is_sorted_seeded_and_consistent() {
    let raw = small_raw(20, 4);
    let a = raw.subsample(7, 3).unwrap();
    let b = raw.subsample(7, 3).unwrap();
    assert_eq!(a, b);
    assert_eq!(a.n_points(), 7);
    let xs = a.xcoords.to_vec();
    assert!(xs.windows(2).all(|w| w[0] < w[1]));
    for (i, &x) in xs.iter().enumerate() {
        let row = (x - 10.0) as usize;
        assert_eq!(a.ycoords[i], 20.0 + 0.5 * row as f64);
        assert_eq!(a.diff3d[[i, 1, 1]], (row + 1) as f32 * 0.25);
    }
    assert_eq!(raw.subsample(50, 1).unwrap(), raw);
    assert!(raw.subsample(0, 1).is_err());
}

/// Write arbitrary arrays into an NPZ with ndarray-npy.
fn write_npz(path: &Path, compressed: bool, f: impl FnOnce(&mut NpzWriter<std::fs::File>)) {
    let file = std::fs::File::create(path).unwrap();
    let mut w = if compressed {
        NpzWriter::new_compressed(file)
    } else {
        NpzWriter::new(file)
    };
    f(&mut w);
    w.finish().unwrap();
}

/// A deferred addition of arrays to an NPZ under construction.
type Extra = Box<dyn FnOnce(&mut NpzWriter<std::fs::File>)>;

struct Base {
    m: usize,
    n: usize,
}

impl Base {
    fn write(&self, path: &Path, skip: &[&str], extra: impl FnOnce(&mut NpzWriter<std::fs::File>)) {
        let (m, n) = (self.m, self.n);
        write_npz(path, true, |w| {
            if !skip.contains(&"xcoords") {
                w.add_array("xcoords", &Array1::from_elem(m, 30.0f64))
                    .unwrap();
            }
            if !skip.contains(&"ycoords") {
                w.add_array("ycoords", &Array1::from_elem(m, 30.0f64))
                    .unwrap();
            }
            if !skip.contains(&"diff3d") {
                w.add_array("diff3d", &Array3::<f32>::ones((m, n, n)))
                    .unwrap();
            }
            if !skip.contains(&"probeGuess") {
                w.add_array("probeGuess", &Array2::<Complex32>::zeros((n, n)))
                    .unwrap();
            }
            extra(w);
        });
    }
}

fn expect_err(path: &Path) -> WorkflowError {
    match RawData::from_npz(path) {
        Ok(_) => panic!("{} loaded but should fail", path.display()),
        Err(e) => {
            let msg = e.to_string();
            assert!(
                msg.contains(&path.display().to_string()),
                "error does not name the file: {msg}"
            );
            e
        }
    }
}

fn key_of(e: &WorkflowError) -> String {
    match e {
        WorkflowError::MissingKey { key, .. }
        | WorkflowError::BadArray { key, .. }
        | WorkflowError::NonFinite { key, .. }
        | WorkflowError::LengthMismatch { key, .. }
        | WorkflowError::Truncated { key, .. }
        | WorkflowError::DeclaredSizeTooLarge { key, .. } => key.clone(),
        other => panic!("unexpected error kind {other:?}"),
    }
}

#[test]
fn accepts_f64_c128_uncompressed_diffraction_key_legacy_layout_and_channel() {
    let tmp = tempfile::tempdir().unwrap();
    let (m, n) = (3, 4);
    let p = tmp.path().join("variants.npz");
    write_npz(&p, false, |w| {
        w.add_array("xcoords", &Array1::from(vec![1.0f32, 2.0, 3.0]))
            .unwrap();
        w.add_array("ycoords", &Array1::from(vec![4.0f64, 5.0, 6.0]))
            .unwrap();
        // legacy (N, N, M) layout with value = scan index
        let d = Array3::from_shape_fn((n, n, m), |(_, _, k)| k as f64);
        w.add_array("diffraction", &d).unwrap();
        let probe = Array3::from_elem((n, n, 1), Complex64::new(0.5, 0.25));
        w.add_array("probeGuess", &probe).unwrap();
        w.add_array("objectGuess", &Array2::from_elem((9, 9), 2.0f32))
            .unwrap();
        w.add_array("scan_index", &Array1::from(vec![7i32, 8, 9]))
            .unwrap();
        w.add_array("some_unknown_key", &Array1::from(vec![1u8]))
            .unwrap();
        w.add_array("Y", &Array4::<Complex32>::zeros((m, n, n, 1)))
            .unwrap();
    });
    let raw = RawData::from_npz(&p).unwrap();
    assert_eq!(raw.diff3d.dim(), (m, n, n));
    assert_eq!(raw.diff3d[[2, 1, 3]], 2.0);
    assert_eq!(raw.diff3d[[0, 0, 0]], 0.0);
    assert_eq!(raw.xcoords_start, raw.xcoords);
    assert_eq!(raw.probe_guess[[1, 1]], Complex32::new(0.5, 0.25));
    assert_eq!(raw.object_guess.unwrap()[[0, 0]], Complex32::new(2.0, 0.0));
    assert_eq!(raw.scan_index.unwrap().to_vec(), vec![7, 8, 9]);
    assert_eq!(raw.y.unwrap().dim(), (m, n, n));
}

/// Build a zip entry holding a raw NPY blob (handcrafted header).
fn npy_blob(descr: &str, shape: &str, payload: &[u8]) -> Vec<u8> {
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(payload);
    out
}

fn append_entries(path: &Path, entries: &[(&str, Vec<u8>)]) {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut z = zip::ZipWriter::new_append(file).unwrap();
    for (name, bytes) in entries {
        z.start_file(
            format!("{name}.npy"),
            zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Stored),
        )
        .unwrap();
        z.write_all(bytes).unwrap();
    }
    z.finish().unwrap();
}

#[test]
fn pickled_metadata_and_unknown_keys_are_skipped() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("meta.npz");
    Base { m: 2, n: 4 }.write(&p, &[], |_| {});
    append_entries(
        &p,
        &[
            (
                "_metadata",
                npy_blob("|O", "()", b"\x80\x04\x95pickle-bytes."),
            ),
            ("garbage", b"not an npy at all".to_vec()),
            (
                "huge_unknown",
                npy_blob("<f8", "(100000000000,)", &[0u8; 16]),
            ),
        ],
    );
    let raw = RawData::from_npz(&p).unwrap();
    assert_eq!(raw.n_points(), 2);
    assert_eq!(
        raw.metadata_nphotons, None,
        "unreadable pickle must be ignored"
    );
}

/// Files written by numpy the way the reference simulator writes `_metadata` (see
/// `fixtures/make_metadata_fixture.py`): a pickled object array (older reference) and a unicode
/// array (current reference). Their nphotons is read, survives `select`, and is written back in
/// the unicode form; files without it give `None`.
#[test]
fn simulator_metadata_nphotons_is_read_from_numpy_files_and_written_back() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let tmp = tempfile::tempdir().unwrap();
    for name in [
        "metadata_nphotons_1e6.npz",
        "metadata_unicode_nphotons_1e6.npz",
    ] {
        let raw = RawData::from_npz(fixtures.join(name)).unwrap();
        assert_eq!((raw.n_points(), raw.n()), (4, 8), "{name}");
        assert_eq!(raw.metadata_nphotons, Some(1e6), "{name}");
        assert_eq!(raw.select(&[1, 2]).metadata_nphotons, Some(1e6), "{name}");

        let p = tmp.path().join(format!("rewritten-{name}"));
        raw.write_npz(&p).unwrap();
        let back = RawData::from_npz(&p).unwrap();
        assert_eq!(back.metadata_nphotons, Some(1e6), "{name}");
        assert_eq!(back.diff3d, raw.diff3d, "{name}");

        let mut plain = raw.clone();
        plain.metadata_nphotons = None;
        let p = tmp.path().join(format!("plain-{name}"));
        plain.write_npz(&p).unwrap();
        assert_eq!(RawData::from_npz(&p).unwrap().metadata_nphotons, None);
        let mut z = zip::ZipArchive::new(std::fs::File::open(&p).unwrap()).unwrap();
        let names: Vec<String> = (0..z.len())
            .map(|i| z.by_index(i).unwrap().name().unwrap().to_string())
            .collect();
        assert!(
            !names.iter().any(|n| n.starts_with("_metadata")),
            "{names:?}"
        );
    }
}

#[test]
fn hostile_declared_shape_is_rejected_before_allocation() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("hostile.npz");
    Base { m: 2, n: 4 }.write(&p, &["diff3d"], |_| {});
    append_entries(
        &p,
        &[(
            "diff3d",
            npy_blob("<f4", "(1000000, 100000, 100000)", &[0u8; 64]),
        )],
    );
    let e = expect_err(&p);
    assert!(
        matches!(e, WorkflowError::DeclaredSizeTooLarge { .. }),
        "{e}"
    );
    assert_eq!(key_of(&e), "diff3d");
}

#[test]
fn every_malformed_input_is_a_typed_error_naming_file_and_key() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let base = Base { m: 3, n: 4 };

    // Missing keys.
    for key in ["xcoords", "ycoords", "diff3d", "probeGuess"] {
        let p = d.join(format!("missing_{key}.npz"));
        base.write(&p, &[key], |_| {});
        let e = expect_err(&p);
        assert!(matches!(e, WorkflowError::MissingKey { .. }), "{e}");
        assert_eq!(key_of(&e), key);
    }

    // Mismatched lengths.
    let cases: Vec<(&str, Extra)> = vec![
        (
            "ycoords",
            Box::new(|w| {
                w.add_array("ycoords", &Array1::from_elem(2, 1.0f64))
                    .unwrap()
            }),
        ),
        (
            "xcoords_start",
            Box::new(|w| {
                w.add_array("xcoords_start", &Array1::from_elem(4, 1.0f64))
                    .unwrap()
            }),
        ),
        (
            "diff3d",
            Box::new(|w| {
                w.add_array("diff3d", &Array3::<f32>::ones((5, 4, 4)))
                    .unwrap()
            }),
        ),
        (
            "scan_index",
            Box::new(|w| w.add_array("scan_index", &Array1::<i64>::zeros(7)).unwrap()),
        ),
    ];
    for (key, add) in cases {
        let p = d.join(format!("len_{key}.npz"));
        let skip: Vec<&str> = if key == "ycoords" || key == "diff3d" {
            vec![key]
        } else {
            vec![]
        };
        base.write(&p, &skip, add);
        let e = expect_err(&p);
        assert!(
            matches!(e, WorkflowError::LengthMismatch { .. }),
            "{key}: {e}"
        );
        assert_eq!(key_of(&e), key);
    }

    // Non-square patterns.
    let p = d.join("nonsquare.npz");
    base.write(&p, &["diff3d"], |w| {
        w.add_array("diff3d", &Array3::<f32>::ones((3, 4, 5)))
            .unwrap()
    });
    let e = expect_err(&p);
    assert_eq!(key_of(&e), "diff3d");
    assert!(e.to_string().contains("square"), "{e}");

    // Probe size ≠ N.
    let p = d.join("probe.npz");
    base.write(&p, &["probeGuess"], |w| {
        w.add_array("probeGuess", &Array2::<Complex32>::zeros((8, 8)))
            .unwrap()
    });
    let e = expect_err(&p);
    assert!(matches!(e, WorkflowError::BadArray { .. }), "{e}");
    assert_eq!(key_of(&e), "probeGuess");

    // NaN / Inf values.
    let p = d.join("nan.npz");
    base.write(&p, &["diff3d"], |w| {
        let mut a = Array3::<f32>::ones((3, 4, 4));
        a[[1, 2, 3]] = f32::NAN;
        w.add_array("diff3d", &a).unwrap()
    });
    let e = expect_err(&p);
    assert!(
        matches!(e, WorkflowError::NonFinite { index: 27, .. }),
        "{e}"
    );
    assert_eq!(key_of(&e), "diff3d");
    let p = d.join("inf.npz");
    base.write(&p, &["xcoords"], |w| {
        w.add_array("xcoords", &Array1::from(vec![1.0, f64::INFINITY, 2.0]))
            .unwrap()
    });
    assert_eq!(key_of(&expect_err(&p)), "xcoords");
    let p = d.join("nan_probe.npz");
    base.write(&p, &["probeGuess"], |w| {
        let mut a = Array2::<Complex32>::zeros((4, 4));
        a[[0, 0]] = Complex32::new(0.0, f32::NAN);
        w.add_array("probeGuess", &a).unwrap()
    });
    assert_eq!(key_of(&expect_err(&p)), "probeGuess");

    // Wrong rank.
    let p = d.join("rank.npz");
    base.write(&p, &["xcoords"], |w| {
        w.add_array("xcoords", &Array2::<f64>::zeros((3, 2)))
            .unwrap()
    });
    let e = expect_err(&p);
    assert!(matches!(e, WorkflowError::BadArray { .. }), "{e}");
    assert_eq!(key_of(&e), "xcoords");
    let p = d.join("rank_diff.npz");
    base.write(&p, &["diff3d"], |w| {
        w.add_array("diff3d", &Array2::<f32>::zeros((3, 16)))
            .unwrap()
    });
    assert_eq!(key_of(&expect_err(&p)), "diff3d");

    // Wrong dtype for a real key (integers are counts since issue 16; booleans are nothing).
    let p = d.join("dtype.npz");
    base.write(&p, &["diff3d"], |w| {
        w.add_array("diff3d", &Array3::<bool>::from_elem((3, 4, 4), false))
            .unwrap()
    });
    let e = expect_err(&p);
    assert!(e.to_string().contains("float32"), "{e}");

    // Empty arrays.
    let p = d.join("empty.npz");
    Base { m: 0, n: 4 }.write(&p, &[], |_| {});
    let e = expect_err(&p);
    assert_eq!(key_of(&e), "xcoords");
    let p = d.join("empty_frames.npz");
    base.write(&p, &["diff3d", "probeGuess"], |w| {
        w.add_array("diff3d", &Array3::<f32>::zeros((3, 0, 0)))
            .unwrap();
        w.add_array("probeGuess", &Array2::<Complex32>::zeros((0, 0)))
            .unwrap();
    });
    assert_eq!(key_of(&expect_err(&p)), "diff3d");
    let p = d.join("empty_object.npz");
    base.write(&p, &[], |w| {
        w.add_array("objectGuess", &Array2::<Complex32>::zeros((0, 5)))
            .unwrap()
    });
    assert_eq!(key_of(&expect_err(&p)), "objectGuess");

    // Truncated data inside an entry (header claims 3·4·4 floats, payload is short).
    let p = d.join("short_entry.npz");
    base.write(&p, &["diff3d"], |_| {});
    append_entries(&p, &[("diff3d", npy_blob("<f4", "(3, 4, 4)", &[0u8; 20]))]);
    let e = expect_err(&p);
    assert_eq!(key_of(&e), "diff3d");

    // Truncated file and not a zip at all.
    let good = d.join("good.npz");
    base.write(&good, &[], |_| {});
    let bytes = std::fs::read(&good).unwrap();
    let p = d.join("truncated.npz");
    std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
    let e = expect_err(&p);
    assert!(matches!(e, WorkflowError::NotNpz { .. }), "{e}");
    let p = d.join("text.npz");
    std::fs::write(&p, b"this is not a zip file").unwrap();
    assert!(matches!(expect_err(&p), WorkflowError::NotNpz { .. }));
    let p = d.join("does_not_exist.npz");
    assert!(matches!(expect_err(&p), WorkflowError::Io { .. }));
}
