//! Resource limits (issue #8): memory is bounded by the data actually present, never by a shape
//! a file declares; asking for more groups than the data can give is a clear error.

use std::io::Write;
use std::time::{Duration, Instant};

use ndarray::{Array1, Array2, Array3};
use ndarray_npy::WriteNpyExt;
use num_complex::Complex32;
use ptycho_config::{GroupingConfig, ModelConfig, Params, TrainingConfig, Valid};
use ptycho_workflows::{RawData, group};
use zip::write::SimpleFileOptions;

fn npy<A: ndarray_npy::WritableElement, D: ndarray::Dimension>(
    a: &ndarray::Array<A, D>,
) -> Vec<u8> {
    let mut v = Vec::new();
    a.write_npy(&mut v).unwrap();
    v
}

/// Peak resident set size of this process in KiB (Linux), if known.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A tiny NPZ (a few kB) whose `diff3d` header declares shape (100000, 4096, 4096) float32
/// (6.7 TB) is refused from the header alone: fast, with an error naming file, key and shape,
/// and without the process growing.
#[test]
fn huge_declared_shape_is_refused_fast_without_allocating() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.npz");
    let n = 8;
    let mut header =
        "{'descr': '<f4', 'fortran_order': False, 'shape': (100000, 4096, 4096), }".to_string();
    while !(10 + header.len() + 1).is_multiple_of(64) {
        header.push(' ');
    }
    header.push('\n');
    let mut diff = b"\x93NUMPY\x01\x00".to_vec();
    diff.extend_from_slice(&(header.len() as u16).to_le_bytes());
    diff.extend_from_slice(header.as_bytes());
    diff.extend_from_slice(&[0u8; 256]);
    let entries: Vec<(&str, Vec<u8>)> = vec![
        ("xcoords", npy(&Array1::from(vec![1.0f64, 2.0]))),
        ("ycoords", npy(&Array1::from(vec![1.0f64, 2.0]))),
        ("diff3d", diff),
        ("probeGuess", npy(&Array2::<Complex32>::zeros((n, n)))),
    ];
    for method in [
        zip::CompressionMethod::Stored,
        zip::CompressionMethod::Deflated,
    ] {
        let mut w = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
        for (name, blob) in &entries {
            w.start_file(
                format!("{name}.npy"),
                SimpleFileOptions::default().compression_method(method),
            )
            .unwrap();
            w.write_all(blob).unwrap();
        }
        w.finish().unwrap();
        let size = std::fs::metadata(&path).unwrap().len();
        assert!(size < 4096, "the hostile file is tiny ({size} bytes)");

        let rss0 = peak_rss_kib();
        let t = Instant::now();
        let err = RawData::from_npz(&path).unwrap_err().to_string();
        let took = t.elapsed();
        let rss1 = peak_rss_kib();

        assert!(
            err.contains(&path.display().to_string())
                && err.contains("key `diff3d`")
                && err.contains("header declares shape [100000, 4096, 4096]"),
            "{method:?}: {err}"
        );
        assert!(
            took < Duration::from_secs(2),
            "{method:?}: refusal took {took:?}"
        );
        if let (Some(a), Some(b)) = (rss0, rss1) {
            assert!(
                b.saturating_sub(a) < 64 * 1024,
                "{method:?}: peak RSS grew by {} KiB while refusing",
                b - a
            );
        }
        eprintln!("{method:?}: refused in {took:?}: {err}");
    }
}

fn params(gridsize: usize) -> Params {
    let cfg = TrainingConfig {
        model: ModelConfig {
            n: 64,
            gridsize,
            ..Default::default()
        },
        ..Default::default()
    };
    Params::from_training(&cfg.validate().unwrap())
}

fn raw(m: usize) -> RawData {
    let side = (m as f64).sqrt().ceil() as usize;
    let xs = Array1::from_iter((0..m).map(|i| 40.0 + 4.0 * (i % side) as f64));
    let ys = Array1::from_iter((0..m).map(|i| 40.0 + 4.0 * (i / side) as f64));
    RawData::from_coords_without_pc(
        xs,
        ys,
        Array3::<f32>::ones((m, 64, 64)),
        Array2::from_elem((64, 64), Complex32::new(1.0, 0.0)),
        None,
    )
    .unwrap()
}

/// The settings, validated.
fn valid(c: GroupingConfig) -> Valid<GroupingConfig> {
    c.validate().unwrap()
}

/// More groups than scan points at gridsize 2 without oversampling: an error that says how many
/// were asked for, how many points there are, and what to do.
#[test]
fn more_groups_than_the_data_can_give_is_a_clear_error() {
    let data = raw(16);
    let opts = GroupingConfig {
        n_groups: 100,
        seed: 1,
        ..Default::default()
    };
    let err = group(&data, &params(2), &valid(opts.clone()))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("100 groups requested from 16 scan points")
            && err.contains("request at most 16 groups"),
        "{err}"
    );
    // Fewer points than one group needs.
    let err = group(&raw(3), &params(2), &valid(opts.clone()))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("3 scan points, fewer than the 4 members a group needs"),
        "{err}"
    );
    // Oversampling with a neighbour pool too small for C = 4 members.
    let over = GroupingConfig {
        enable_oversampling: true,
        neighbor_pool_size: Some(3),
        ..opts.clone()
    };
    let err = group(&data, &params(2), &valid(over.clone()))
        .unwrap_err()
        .to_string();
    assert!(err.contains("neighbour count K = 3"), "{err}");
    // Reference behaviour at gridsize 1: n_groups is capped at the number of points (spec §2.3,
    // `n_actual = min(nsamples, n)`), so the default n_groups = 512 works on small datasets.
    let g = group(&data, &params(1), &valid(opts.clone())).unwrap();
    assert_eq!(g.n_groups(), 16);
}
