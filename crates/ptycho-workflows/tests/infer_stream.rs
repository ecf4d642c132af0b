//! Scans read a piece at a time: `ScanFile` reads exactly what `RawData::load` holds (stored and
//! compressed entries, float and integer dtypes, counts, bad pixels, the legacy layout), and a
//! reconstruction made piece by piece equals the one made at once.

use std::fs::File;
use std::path::{Path, PathBuf};

use ndarray::{Array1, Array2, Array3, Axis};
use ndarray_npy::NpzWriter;
use num_complex::Complex32;
use ptycho_config::{
    DataOptions, DiffractionUnits, InferenceConfig, ModelConfig, Params, SimulationConfig,
    TrainingConfig,
};
use ptycho_model::{DeviceKind, PtychoPinn};
use ptycho_persist::{SaveOptions, save_model};
use ptycho_workflows::infer::{InferRuntime, InferenceModel, infer};
use ptycho_workflows::{PatternSource, RawData, ScanFile, simulate_lines};

fn simulated(n_images: usize, seed: u64) -> RawData {
    simulate_lines(
        &SimulationConfig {
            n_images,
            n: 64,
            seed,
            ..Default::default()
        }
        .validate()
        .unwrap(),
    )
    .unwrap()
}

/// How `diff3d` is stored in a test file.
enum Stack<'a> {
    F32(&'a Array3<f32>),
    F64(&'a Array3<f64>),
    U16(&'a Array3<u16>),
}

/// Write the reference keys of `raw` with `diff3d` as `stack`, compressed or stored, with an
/// optional bad-pixel mask.
fn write(path: &Path, raw: &RawData, stack: Stack, compressed: bool, bad: Option<&Array2<bool>>) {
    let file = File::create(path).unwrap();
    let mut npz = if compressed {
        NpzWriter::new_compressed(file)
    } else {
        NpzWriter::new(file)
    };
    npz.add_array("xcoords", &raw.xcoords).unwrap();
    npz.add_array("ycoords", &raw.ycoords).unwrap();
    match stack {
        Stack::F32(a) => npz.add_array("diff3d", a).unwrap(),
        Stack::F64(a) => npz.add_array("diff3d", a).unwrap(),
        Stack::U16(a) => npz.add_array("diff3d", a).unwrap(),
    }
    npz.add_array("probeGuess", &raw.probe_guess).unwrap();
    if let Some(o) = &raw.object_guess {
        npz.add_array("objectGuess", o).unwrap();
    }
    if let Some(b) = bad {
        npz.add_array("bad_pixels", b).unwrap();
    }
    npz.finish().unwrap();
}

/// Open `path` both ways and check that the scan file reads what RawData::load holds.
fn same_as_load(path: &Path, options: &DataOptions, expect_streaming: bool) {
    let (raw, raw_report) = RawData::load(path, options).unwrap();
    let (scan, report) = ScanFile::open(path, options).unwrap();
    assert_eq!(scan.streams(), expect_streaming, "{}", path.display());
    assert_eq!(report.units, raw_report.units);
    assert_eq!(scan.header(), &raw.header());
    let all = scan.to_raw().unwrap();
    assert_eq!(all.diff3d, raw.diff3d, "{}", path.display());
    assert_eq!(
        scan.pattern_energies().unwrap(),
        raw.pattern_energies().unwrap()
    );
    // Any rows, any order, repeats: the rows of the loaded stack.
    let m = raw.n_points();
    let rows = [m - 1, 0, 1, 2, 2, m / 2, m / 2 + 1];
    let mut out = vec![0f32; rows.len() * 64 * 64];
    scan.read_patterns(&rows, &mut out).unwrap();
    let expected = raw.diff3d.select(Axis(0), &rows);
    assert_eq!(out, expected.iter().copied().collect::<Vec<_>>());
    let e = scan
        .read_patterns(&[m], &mut vec![0f32; 64 * 64])
        .unwrap_err();
    assert!(
        e.to_string().contains(&format!("index {m} out of range")),
        "{e}"
    );
}

#[test]
fn scan_files_read_what_rawdata_load_holds() {
    let tmp = tempfile::tempdir().unwrap();
    let raw = simulated(40, 3);
    let mut bad = Array2::from_elem((64, 64), false);
    bad[[0, 5]] = true;
    bad[[32, 33]] = true;
    let auto = DataOptions::default();

    // Amplitudes, stored: read in place; a bad-pixel mask zeroes its pixels.
    let p = tmp.path().join("stored_f32.npz");
    write(&p, &raw, Stack::F32(&raw.diff3d), false, Some(&bad));
    same_as_load(&p, &auto, true);
    let (scan, _) = ScanFile::open(&p, &auto).unwrap();
    let mut one = vec![1f32; 64 * 64];
    scan.read_patterns(&[7], &mut one).unwrap();
    assert_eq!((one[5], one[32 * 64 + 33]), (0.0, 0.0));
    assert_ne!(raw.diff3d[[7, 32, 32]], 0.0);

    // Integer counts, compressed (decompressed into a temporary file): square-rooted.
    let counts = raw.diff3d.mapv(|a| (a * a).round() as u16);
    let p = tmp.path().join("counts_u16.npz");
    write(&p, &raw, Stack::U16(&counts), true, None);
    same_as_load(&p, &auto, true);
    let (scan, report) = ScanFile::open(&p, &auto).unwrap();
    assert!(report.units.counts && report.units.integer);
    let mut one = vec![0f32; 64 * 64];
    scan.read_patterns(&[3], &mut one).unwrap();
    assert_eq!(one[32 * 64 + 32], f32::from(counts[[3, 32, 32]]).sqrt());

    // Integer-valued float64, auto: counts; and read as amplitudes when told so.
    let counts64 = counts.mapv(f64::from);
    let p = tmp.path().join("counts_f64.npz");
    write(&p, &raw, Stack::F64(&counts64), true, Some(&bad));
    same_as_load(&p, &auto, true);
    same_as_load(&p, &DataOptions::units(DiffractionUnits::Amplitude), true);

    // The legacy (N, N, M) layout is loaded whole.
    let legacy = raw
        .diff3d
        .view()
        .permuted_axes([1, 2, 0])
        .as_standard_layout()
        .to_owned();
    let p = tmp.path().join("legacy.npz");
    write(&p, &raw, Stack::F32(&legacy), false, None);
    same_as_load(&p, &auto, false);
}

#[test]
fn bad_values_fail_as_rawdata_load_fails() {
    let tmp = tempfile::tempdir().unwrap();
    let raw = simulated(12, 4);
    let auto = DataOptions::default();
    for (name, at, value) in [("negative", [5, 1, 2], -0.5), ("nan", [9, 0, 0], f32::NAN)] {
        let mut d = raw.diff3d.clone();
        d[at] = value;
        let p = tmp.path().join(format!("{name}.npz"));
        write(&p, &raw, Stack::F32(&d), false, None);
        let expected = RawData::load(&p, &auto).unwrap_err().to_string();
        let got = ScanFile::open(&p, &auto).unwrap_err().to_string();
        assert_eq!(got, expected, "{name}");
        assert!(got.contains(&p.display().to_string()), "{got}");
    }
    // Negative counts name the count.
    let mut c = raw.diff3d.mapv(|a| f64::from((a * a).round()));
    c[[2, 3, 4]] = -3.0;
    let p = tmp.path().join("negative_counts.npz");
    write(&p, &raw, Stack::F64(&c), true, None);
    let counts = DataOptions::units(DiffractionUnits::Counts);
    let expected = RawData::load(&p, &counts).unwrap_err().to_string();
    let got = ScanFile::open(&p, &counts).unwrap_err().to_string();
    assert_eq!(got, expected);
    assert!(got.contains("negative count -3"), "{got}");
}

/// A random-init PINN of `gridsize` saved under `dir`.
fn archive(dir: &Path, gridsize: usize) -> PathBuf {
    let cfg = TrainingConfig {
        model: ModelConfig {
            gridsize,
            ..Default::default()
        },
        ..Default::default()
    };
    let params = Params::from_training(&cfg.validate().unwrap());
    let device = DeviceKind::Flex.to_device().unwrap();
    let model = PtychoPinn::new(&params, &device).unwrap();
    std::fs::create_dir_all(dir).unwrap();
    save_model(
        &dir.join("wts.h5.zip"),
        &model,
        &params,
        &SaveOptions::default(),
    )
    .unwrap();
    dir.to_path_buf()
}

fn max_abs_diff(a: &Array2<Complex32>, b: &Array2<Complex32>) -> (f32, f32) {
    assert_eq!(a.dim(), b.dim());
    let worst = a
        .iter()
        .zip(b.iter())
        .map(|(x, y)| (x - y).norm())
        .fold(0f32, f32::max);
    let scale = a.iter().map(|x| x.norm()).fold(0f32, f32::max);
    (worst, scale)
}

/// Small pieces read from a compressed file give the reconstruction of the whole scan held in
/// memory and predicted at once, at gridsize 1 and 2 and with subsampling.
#[test]
fn pieces_from_disk_equal_the_whole_scan_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let raw = simulated(70, 5);
    let path = tmp.path().join("scan.npz");
    raw.write_npz(&path).unwrap();
    let (scan, _) = ScanFile::open(&path, &DataOptions::default()).unwrap();
    assert!(scan.streams());
    for (gridsize, subsample) in [(1, None), (2, None), (2, Some(50))] {
        let dir = tmp.path().join(format!("gs{gridsize}"));
        if !dir.exists() {
            archive(&dir, gridsize);
        }
        let cfg = InferenceConfig {
            n_subsample: subsample,
            // Gridsize 2 forms one group per point; 20 of them are enough pieces here.
            n_groups: (gridsize > 1).then_some(20),
            batch_size: 4,
            ..Default::default()
        }
        .validate()
        .unwrap();
        let whole = infer(&dir, &raw, &cfg, &InferRuntime::default()).unwrap();
        let model = InferenceModel::load(&dir, DeviceKind::Flex).unwrap();
        // 8 groups per piece: several pieces, the last one short.
        let run = InferRuntime {
            piece_bytes: 8 * gridsize * gridsize * 64 * 64 * 4,
            ..InferRuntime::default()
        };
        let pieces = model.reconstruct(scan.header(), &scan, &cfg, &run).unwrap();
        assert_eq!(pieces.n_groups, whole.n_groups);
        assert!(whole.n_groups > 8, "{}", whole.n_groups);
        assert_eq!(pieces.norm_factor, whole.norm_factor);
        assert_eq!(pieces.reconstruction.origin, whole.reconstruction.origin);
        let (worst, scale) =
            max_abs_diff(&pieces.reconstruction.object, &whole.reconstruction.object);
        println!(
            "gridsize {gridsize}, subsample {subsample:?}: max |Δ| = {worst:e} (max |z| = {scale})"
        );
        assert!(scale > 0.0 && worst <= 1e-6 * scale, "{worst} vs {scale}");
        let (a, b) = (
            pieces.evaluation.as_ref().unwrap(),
            whole.evaluation.as_ref().unwrap(),
        );
        assert!((a.metrics.amplitude.ssim - b.metrics.amplitude.ssim).abs() < 1e-6);
    }
    // A model of another N is refused before anything is read.
    let coords = Array1::linspace(30.0, 60.0, 4);
    let small = RawData::from_coords_without_pc(
        coords.clone(),
        coords,
        Array3::zeros((4, 32, 32)),
        Array2::from_elem((32, 32), Complex32::new(1.0, 0.0)),
        None,
    )
    .unwrap();
    let model = InferenceModel::load(&tmp.path().join("gs1"), DeviceKind::Flex).unwrap();
    let cfg = InferenceConfig::default().validate().unwrap();
    let e = model
        .reconstruct(&small.header(), &small, &cfg, &InferRuntime::default())
        .unwrap_err();
    assert!(e.to_string().contains("32"), "{e}");
}
