//! Hostile-input corpus (issue #8): malformed NPZ datasets, config files and model archives.
//!
//! Every case is one table row: a builder that writes the bad file into a temp dir, and the
//! substring its error must contain. Each case is checked twice:
//!
//! 1. **Library** (always): `RawData::from_npz`, `load_config_file`, `load_model` /
//!    `inspect_archive` must return an error whose one-line message names the file and contains
//!    the expected substring.
//! 2. **CLI** (the real `ptycho` binary): exit ≠ 0, exactly one line on stderr naming the file
//!    and the problem, no panic or backtrace hint, and no file written (neither in the output
//!    directory nor in the working directory).
//!
//! CLI ROWS FOR COMMANDS WRITTEN ON OTHER BRANCHES (`infer`, `train`, `inspect`) are marked
//! `PENDING` below; such a row runs as soon as the binary has that subcommand (detected with
//! `ptycho <cmd> --help`) and is skipped with a message until then. If a pending row fails after
//! the merge because a flag is spelled differently, fix the row's arguments, not the check.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use ndarray::{Array, Array1, Array2, Array3, Dimension};
use ndarray_npy::{WritableElement, WriteNpyExt};
use num_complex::Complex32;
use ptycho_config::{ModelConfig, Params, TrainingConfig, load_config_file};
use ptycho_e2e::{check_one_line_failure, files_under, has_subcommand, ptycho_bin};
use ptycho_model::{DeviceKind, PtychoPinn};
use ptycho_persist::{SaveOptions, inspect_archive, load_model, save_model};
use ptycho_workflows::RawData;
use zip::CompressionMethod;
use zip::write::SimpleFileOptions;

/// Diffraction size of every generated dataset and of the fixture model.
const N: usize = 64;
/// Scan points of the generated bad datasets.
const M: usize = 3;

// ---------------------------------------------------------------------------------------------
// NPZ building blocks
// ---------------------------------------------------------------------------------------------

/// One `.npy` blob of an ndarray array.
fn npy<A: WritableElement, D: Dimension>(a: &Array<A, D>) -> Vec<u8> {
    let mut v = Vec::new();
    a.write_npy(&mut v).unwrap();
    v
}

/// A `.npy` blob with a handwritten header dictionary (version 1.0, padded as numpy does).
fn npy_raw(dict: &str, payload: &[u8]) -> Vec<u8> {
    let mut header = dict.to_string();
    while !(10 + header.len() + 1).is_multiple_of(64) {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(payload);
    out
}

fn npy_header(descr: &str, shape: &str, payload: &[u8]) -> Vec<u8> {
    npy_raw(
        &format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}"),
        payload,
    )
}

/// The entries of an NPZ under construction (name without `.npy` → blob, compressed or not).
struct Npz(Vec<(String, Vec<u8>, bool)>);

impl Npz {
    /// A valid dataset of `M` points of `N`×`N` amplitudes.
    fn base() -> Npz {
        let probe = Array2::from_shape_fn((N, N), |(r, c)| {
            let d2 = (r as f32 - 32.0).powi(2) + (c as f32 - 32.0).powi(2);
            Complex32::new((-d2 / 200.0).exp(), 0.0)
        });
        Npz(vec![
            (
                "xcoords".into(),
                npy(&Array1::from(vec![40.0f64, 50.0, 60.0])),
                true,
            ),
            (
                "ycoords".into(),
                npy(&Array1::from(vec![45.0f64, 55.0, 65.0])),
                true,
            ),
            ("diff3d".into(), npy(&Array3::<f32>::ones((M, N, N))), true),
            ("probeGuess".into(), npy(&probe), true),
        ])
    }

    fn set(mut self, key: &str, blob: Vec<u8>) -> Npz {
        self.0.retain(|(k, _, _)| k != key);
        self.0.push((key.into(), blob, true));
        self
    }

    /// Store `key` uncompressed (so a declared size can be compared with the entry).
    fn stored(mut self, key: &str) -> Npz {
        for e in &mut self.0 {
            if e.0 == key {
                e.2 = false;
            }
        }
        self
    }

    fn without(mut self, key: &str) -> Npz {
        self.0.retain(|(k, _, _)| k != key);
        self
    }

    fn bytes(&self) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for (name, blob, compressed) in &self.0 {
            let method = if *compressed {
                CompressionMethod::Deflated
            } else {
                CompressionMethod::Stored
            };
            w.start_file(
                format!("{name}.npy"),
                SimpleFileOptions::default().compression_method(method),
            )
            .unwrap();
            w.write_all(blob).unwrap();
        }
        w.finish().unwrap().into_inner()
    }
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn diff_with(at: usize, value: f32) -> Vec<u8> {
    let mut d = Array3::<f32>::ones((M, N, N));
    d.as_slice_mut().unwrap()[at] = value;
    npy(&d)
}

/// A dataset whose stored `diff3d` bytes were altered after writing (the CRC no longer matches).
fn corrupt_stored_diffraction() -> Vec<u8> {
    let mut bytes = Npz::base().stored("diff3d").bytes();
    let one = 1.0f32.to_le_bytes();
    let at = bytes
        .windows(4)
        .position(|w| w == one)
        .expect("stored diffraction data");
    bytes[at + 400..at + 404].copy_from_slice(&2.0f32.to_le_bytes());
    bytes
}

/// The NPZ corpus: (case name, file bytes, expected error substring).
fn npz_cases() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let valid = Npz::base().bytes();
    let mut v: Vec<(&'static str, Vec<u8>, &'static str)> = vec![
        (
            "not_a_zip",
            b"xcoords,ycoords\n1,2\n".to_vec(),
            "not a readable NPZ",
        ),
        ("empty_file", Vec::new(), "not a readable NPZ"),
        (
            "truncated_zip",
            valid[..valid.len() / 2].to_vec(),
            "not a readable NPZ",
        ),
    ];
    for (name, key) in [
        ("missing_xcoords", "xcoords"),
        ("missing_ycoords", "ycoords"),
        ("missing_diff3d", "diff3d"),
        ("missing_probeGuess", "probeGuess"),
    ] {
        let expect: &'static str = match key {
            "xcoords" => "`xcoords` is missing",
            "ycoords" => "`ycoords` is missing",
            "diff3d" => "`diff3d` is missing",
            _ => "`probeGuess` is missing",
        };
        v.push((name, Npz::base().without(key).bytes(), expect));
    }
    let huge = npy_header("<f4", "(100000, 4096, 4096)", &[0u8; 64]);
    v.extend([
        (
            "string_dtype_coords",
            Npz::base()
                .set("xcoords", npy_header("<U3", "(3,)", &[b'a'; 36]))
                .bytes(),
            "dtype <U3 is not float32/float64",
        ),
        (
            "pickled_object_diffraction",
            Npz::base()
                .set(
                    "diff3d",
                    npy_header("|O", "(3,)", b"\x80\x04\x95cos\nsystem\n."),
                )
                .bytes(),
            "dtype |O is not float32/float64",
        ),
        (
            "complex_diffraction",
            Npz::base()
                .set("diff3d", npy(&Array3::<Complex32>::zeros((M, N, N))))
                .bytes(),
            "is not float32/float64",
        ),
        (
            "coords_rank_2",
            Npz::base()
                .set("xcoords", npy(&Array2::<f64>::zeros((M, 2))))
                .bytes(),
            "expected rank 1",
        ),
        (
            "diffraction_rank_2",
            Npz::base()
                .set("diff3d", npy(&Array2::<f32>::ones((M, N))))
                .bytes(),
            "expected rank 3",
        ),
        (
            "ycoords_length_mismatch",
            Npz::base()
                .set("ycoords", npy(&Array1::from(vec![1.0f64, 2.0])))
                .bytes(),
            "key `ycoords` has 2 entries along its scan axis, expected 3",
        ),
        (
            "diffraction_length_mismatch",
            Npz::base()
                .set("diff3d", npy(&Array3::<f32>::ones((5, N, N))))
                .bytes(),
            "key `diff3d` has 5 entries along its scan axis, expected 3",
        ),
        (
            "non_square_patterns",
            Npz::base()
                .set("diff3d", npy(&Array3::<f32>::ones((M, N, N / 2))))
                .bytes(),
            "not square",
        ),
        (
            "probe_size_not_n",
            Npz::base()
                .set("probeGuess", npy(&Array2::<Complex32>::ones((32, 32))))
                .bytes(),
            "expected (64, 64) (the diffraction size N)",
        ),
        (
            "nan_in_diffraction",
            Npz::base().set("diff3d", diff_with(77, f32::NAN)).bytes(),
            "key `diff3d`: non-finite value (NaN or Inf) at flat index 77",
        ),
        (
            "inf_in_diffraction",
            Npz::base()
                .set("diff3d", diff_with(5, f32::INFINITY))
                .bytes(),
            "key `diff3d`: non-finite value",
        ),
        (
            "nan_in_coordinates",
            Npz::base()
                .set("ycoords", npy(&Array1::from(vec![1.0, f64::NAN, 2.0])))
                .bytes(),
            "key `ycoords`: non-finite value",
        ),
        (
            "inf_in_coordinates",
            Npz::base()
                .set(
                    "xcoords",
                    npy(&Array1::from(vec![1.0, 2.0, f64::NEG_INFINITY])),
                )
                .bytes(),
            "key `xcoords`: non-finite value",
        ),
        (
            "nan_in_probe",
            Npz::base()
                .set(
                    "probeGuess",
                    npy(&Array2::from_elem((N, N), Complex32::new(0.0, f32::NAN))),
                )
                .bytes(),
            "key `probeGuess`: non-finite value",
        ),
        (
            "negative_amplitudes",
            Npz::base().set("diff3d", diff_with(9, -0.5)).bytes(),
            "negative amplitude -0.5 at flat index 9",
        ),
        (
            "empty_coordinates",
            Npz::base()
                .set("xcoords", npy(&Array1::<f64>::zeros(0)))
                .set("ycoords", npy(&Array1::<f64>::zeros(0)))
                .set("diff3d", npy(&Array3::<f32>::zeros((0, N, N))))
                .bytes(),
            "key `xcoords`: empty array",
        ),
        (
            "empty_frames",
            Npz::base()
                .set("diff3d", npy(&Array3::<f32>::zeros((M, 0, 0))))
                .bytes(),
            "key `diff3d`: empty array",
        ),
        (
            "huge_declared_shape_stored",
            Npz::base().set("diff3d", huge.clone()).stored("diff3d").bytes(),
            "header declares shape [100000, 4096, 4096]",
        ),
        (
            "huge_declared_shape_deflated",
            Npz::base().set("diff3d", huge).bytes(),
            "header declares shape [100000, 4096, 4096]",
        ),
        (
            // A naive header parser sees the first `shape`; numpy and the array reader the last.
            "repeated_shape_key_in_header",
            Npz::base()
                .set(
                    "diff3d",
                    npy_raw(
                        "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 64, 64), 'shape': (1000000000,), }",
                        &f32_bytes(&vec![1.0; M * N * N]),
                    ),
                )
                .bytes(),
            "header declares shape [1000000000]",
        ),
        (
            "declared_shape_exceeds_entry",
            Npz::base()
                .set("xcoords", npy_header("<f8", "(3,)", &[0u8; 12]))
                .bytes(),
            "key `xcoords`: header declares shape [3]",
        ),
        ("corrupt_entry_data", corrupt_stored_diffraction(), "key `diff3d`: truncated or corrupt array data"),
        (
            "entry_is_not_npy",
            Npz::base()
                .set("probeGuess", b"PK\x03\x04 nested zip, not an array".to_vec())
                .bytes(),
            "not an NPY array (bad magic)",
        ),
        (
            "unparsable_npy_header",
            Npz::base()
                .set("ycoords", npy_raw("{'descr': '<f8', 'shape': (3,", &[0u8; 24]))
                .bytes(),
            "key `ycoords`",
        ),
    ]);
    v
}

// ---------------------------------------------------------------------------------------------
// Fixtures: a valid dataset and a valid model archive (built only when a case needs them)
// ---------------------------------------------------------------------------------------------

fn training_params(n_filters_scale: usize) -> Params {
    let cfg = TrainingConfig {
        model: ModelConfig {
            n: N,
            n_filters_scale,
            ..Default::default()
        },
        ..Default::default()
    };
    Params::from_training(&cfg.validate().unwrap())
}

/// Write a valid archive of a (random) PtychoPinn with `n_filters_scale`.
fn write_valid_archive(path: &Path, n_filters_scale: usize) {
    let device = DeviceKind::Flex.to_device().unwrap();
    let params = training_params(n_filters_scale);
    let model = PtychoPinn::new(&params, &device).unwrap();
    save_model(path, &model, &params, &SaveOptions::default()).unwrap();
}

fn write_valid_npz(path: &Path) {
    let m = 16;
    let xs = Array1::from_iter((0..m).map(|i| 40.0 + 3.0 * (i % 4) as f64));
    let ys = Array1::from_iter((0..m).map(|i| 40.0 + 3.0 * (i / 4) as f64));
    let probe = Array2::from_shape_fn((N, N), |(r, c)| {
        let d2 = (r as f32 - 32.0).powi(2) + (c as f32 - 32.0).powi(2);
        Complex32::new((-d2 / 200.0).exp(), 0.0)
    });
    let object = Array2::from_elem((128, 128), Complex32::new(1.0, 0.0));
    RawData::from_coords_without_pc(xs, ys, Array3::<f32>::ones((m, N, N)), probe, Some(object))
        .unwrap()
        .write_npz(path)
        .unwrap();
}

/// All entries of a zip file, in order.
fn read_entries(path: &Path) -> Vec<(String, Vec<u8>)> {
    let mut z = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
    (0..z.len())
        .map(|i| {
            let mut f = z.by_index(i).unwrap();
            let mut b = Vec::new();
            f.read_to_end(&mut b).unwrap();
            (f.name().unwrap().into_owned(), b)
        })
        .collect()
}

fn zip_bytes(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let o = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
    for (name, bytes) in entries {
        w.start_file(name.as_str(), o).unwrap();
        w.write_all(bytes).unwrap();
    }
    w.finish().unwrap().into_inner()
}

// ---------------------------------------------------------------------------------------------
// Running one case
// ---------------------------------------------------------------------------------------------

/// Arguments of a CLI row for (bad input, output directory).
type ArgsFn = Box<dyn Fn(&Path, &Path) -> Vec<OsString>>;

/// A CLI row: the subcommand (for the presence check) and the arguments for a bad input path
/// and an output directory.
struct CliRow {
    subcommand: &'static str,
    /// `true` for commands written on other branches (see the module doc).
    pending: bool,
    args: ArgsFn,
}

fn os(parts: &[&dyn AsRef<std::ffi::OsStr>]) -> Vec<OsString> {
    parts.iter().map(|p| p.as_ref().to_os_string()).collect()
}

/// Run every available CLI row on `bad`; returns the problems found.
fn run_cli_rows(
    rows: &[CliRow],
    available: &[bool],
    case: &str,
    bad: &Path,
    expect: &str,
) -> Vec<String> {
    let mut problems = Vec::new();
    for (row, &on) in rows.iter().zip(available) {
        if !on {
            continue;
        }
        let work = tempfile::tempdir().unwrap();
        let out_dir = work.path().join("out");
        let args = (row.args)(bad, &out_dir);
        let output = Command::new(ptycho_bin())
            .args(&args)
            .current_dir(work.path())
            .env_remove("RUST_LOG")
            .env_remove("RUST_BACKTRACE")
            .output()
            .unwrap();
        let shown = format!("{case}: ptycho {}", args_display(&args));
        for p in check_one_line_failure(&output, bad, expect) {
            problems.push(format!("{shown}: {p}"));
        }
        let left = files_under(work.path());
        if !left.is_empty() {
            problems.push(format!("{shown}: left files behind: {left:?}"));
        }
    }
    problems
}

fn args_display(args: &[OsString]) -> String {
    args.iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Which rows can run in this build; prints the skipped pending ones once.
fn availability(rows: &[CliRow]) -> Vec<bool> {
    rows.iter()
        .map(|r| {
            let on = has_subcommand(r.subcommand);
            if !on {
                assert!(
                    r.pending,
                    "`ptycho {}` is missing but its rows are not marked pending",
                    r.subcommand
                );
                eprintln!(
                    "skipping PENDING CLI rows `ptycho {} ...`: this build has no `{}` subcommand yet",
                    r.subcommand, r.subcommand
                );
            }
            on
        })
        .collect()
}

/// The library error must name the file, contain `expect` and be one line.
fn check_lib_error(
    case: &str,
    what: &str,
    path: &Path,
    msg: Option<String>,
    expect: &str,
) -> Vec<String> {
    let Some(msg) = msg else {
        return vec![format!("{case}: {what} accepted the file")];
    };
    let mut p = Vec::new();
    if !msg.contains(&path.display().to_string()) {
        p.push(format!(
            "{case}: {what}: message does not name the file: {msg}"
        ));
    }
    if !msg.contains(expect) {
        p.push(format!("{case}: {what}: message lacks {expect:?}: {msg}"));
    }
    if msg.contains('\n') {
        p.push(format!(
            "{case}: {what}: message spans several lines: {msg:?}"
        ));
    }
    p
}

fn report(kind: &str, cases: usize, problems: Vec<String>) {
    assert!(
        problems.is_empty(),
        "{} problem(s) in the {kind} corpus ({cases} cases):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// The corpora
// ---------------------------------------------------------------------------------------------

#[test]
fn npz_corpus_is_refused_with_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let rows = vec![
        // PENDING (infer branch): `ptycho infer --model M --test-data BAD --output-dir D`.
        CliRow {
            subcommand: "infer",
            pending: true,
            args: {
                let model = dir.path().join("model").join("wts.h5.zip");
                Box::new(move |bad, out| {
                    os(&[
                        &"infer",
                        &"--model",
                        &model,
                        &"--test-data",
                        &bad,
                        &"--output-dir",
                        &out,
                    ])
                })
            },
        },
        // PENDING (train branch): `ptycho train --train-data BAD --output-dir D`.
        CliRow {
            subcommand: "train",
            pending: true,
            args: Box::new(|bad, out| {
                os(&[
                    &"train",
                    &"--train-data",
                    &bad,
                    &"--output-dir",
                    &out,
                    &"--nepochs",
                    &"1",
                ])
            }),
        },
    ];
    let available = availability(&rows);
    if available[0] {
        let model_dir = dir.path().join("model");
        std::fs::create_dir(&model_dir).unwrap();
        write_valid_archive(&model_dir.join("wts.h5.zip"), 1);
    }
    let cases = npz_cases();
    assert!(cases.len() >= 25, "{} NPZ cases", cases.len());
    let mut problems = Vec::new();
    for (name, bytes, expect) in &cases {
        let path = dir.path().join(format!("{name}.npz"));
        std::fs::write(&path, bytes).unwrap();
        let msg = RawData::from_npz(&path).err().map(|e| e.to_string());
        problems.extend(check_lib_error(
            name,
            "RawData::from_npz",
            &path,
            msg,
            expect,
        ));
        problems.extend(run_cli_rows(&rows, &available, name, &path, expect));
    }
    report("NPZ", cases.len(), problems);
}

/// The config corpus: (file name, contents, expected error substring).
fn config_cases() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let mut big = b"# padding\n".repeat(200_000);
    big.extend_from_slice(b"nepochs = 2\n");
    vec![
        (
            "unknown_key.toml",
            b"nepochs = 3\nbatch_sise = 8\n".to_vec(),
            "unknown key `batch_sise` (did you mean `batch_size`?)",
        ),
        (
            "unknown_model_key.json",
            br#"{"model": {"N": 64, "colour": "red"}}"#.to_vec(),
            "unknown key `model.colour`",
        ),
        (
            "wrong_type.toml",
            b"nepochs = \"ten\"\n".to_vec(),
            "wrong value for key `nepochs`",
        ),
        (
            "negative_count.json",
            br#"{"n_groups": -5}"#.to_vec(),
            "wrong value for key `n_groups`",
        ),
        (
            "batch_size_not_power_of_two.toml",
            b"batch_size = 12\n".to_vec(),
            "invalid value for `batch_size`: 12",
        ),
        (
            "n_out_of_range.toml",
            b"[model]\nN = 100\n".to_vec(),
            "invalid value for `N`: 100",
        ),
        (
            "zero_epochs.json",
            br#"{"nepochs": 0}"#.to_vec(),
            "invalid value for `nepochs`: 0",
        ),
        (
            "nan_learning_rate.toml",
            b"learning_rate = nan\n".to_vec(),
            "wrong value for key `learning_rate`: NaN is not a finite number",
        ),
        (
            "toml_syntax.toml",
            b"nepochs = = 3\n".to_vec(),
            "TOML syntax error at line 1",
        ),
        (
            "json_syntax.json",
            b"{\"nepochs\": 3,}".to_vec(),
            "JSON syntax error at line 1",
        ),
        (
            "top_level_array.json",
            b"[1, 2, 3]".to_vec(),
            "expected an object of keys",
        ),
        (
            "ini_extension.ini",
            b"nepochs = 3\n".to_vec(),
            "unsupported config file type",
        ),
        (
            "unknown_model_key.yaml",
            b"nepochs: 3\nmodel:\n  gridsze: 2\n".to_vec(),
            "unknown key `model.gridsze` (did you mean `gridsize`?)",
        ),
        (
            "yaml_syntax.yml",
            b"nepochs: [3\n".to_vec(),
            "YAML syntax error at line",
        ),
        (
            "nan_probe_scale.yaml",
            b"probe_scale: .nan\n".to_vec(),
            "wrong value for key `probe_scale`: NaN is not a finite number",
        ),
        (
            "binary_garbage.toml",
            vec![0xff, 0xfe, 0x00, 0x80, 0x81, b'\n', 0xc3],
            "not UTF-8 text",
        ),
        ("oversized.toml", big, "larger than 1048576 bytes"),
    ]
}

#[test]
fn config_corpus_is_refused_with_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let rows = vec![
        CliRow {
            subcommand: "params",
            pending: false,
            args: Box::new(|bad, _| os(&[&"params", &"--config", &bad])),
        },
        // PENDING (train branch): the config is read before any data.
        CliRow {
            subcommand: "train",
            pending: true,
            args: Box::new(|bad, out| os(&[&"train", &"--config", &bad, &"--output-dir", &out])),
        },
    ];
    let available = availability(&rows);
    let cases = config_cases();
    let mut problems = Vec::new();
    for (name, bytes, expect) in &cases {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let msg = load_config_file(&path).err().map(|e| e.to_string());
        problems.extend(check_lib_error(
            name,
            "load_config_file",
            &path,
            msg,
            expect,
        ));
        problems.extend(run_cli_rows(&rows, &available, name, &path, expect));
    }
    // A config file that does not exist is reported the same way.
    let missing = dir.path().join("missing.toml");
    let msg = load_config_file(&missing).err().map(|e| e.to_string());
    problems.extend(check_lib_error(
        "missing.toml",
        "load_config_file",
        &missing,
        msg,
        "cannot read config file",
    ));
    problems.extend(run_cli_rows(
        &rows,
        &available,
        "missing.toml",
        &missing,
        "cannot read config file",
    ));
    report("config", cases.len() + 1, problems);
}

/// An archive case: name, entries edit (or raw bytes), expected substring, whether
/// `inspect_archive` (which reads no weights into a model) must refuse it too.
struct ArchiveCase {
    name: &'static str,
    bytes: Vec<u8>,
    expect: &'static str,
    inspect_refuses: bool,
}

fn edit(entries: &[(String, Vec<u8>)], f: impl FnOnce(&mut Vec<(String, Vec<u8>)>)) -> Vec<u8> {
    let mut e = entries.to_vec();
    f(&mut e);
    zip_bytes(&e)
}

fn set_entry(e: &mut [(String, Vec<u8>)], name: &str, bytes: Vec<u8>) {
    e.iter_mut().find(|(n, _)| n == name).unwrap().1 = bytes;
}

fn edit_json(e: &mut [(String, Vec<u8>)], name: &str, f: impl FnOnce(&mut serde_json::Value)) {
    let entry = e.iter_mut().find(|(n, _)| n == name).unwrap();
    let mut v: serde_json::Value = serde_json::from_slice(&entry.1).unwrap();
    f(&mut v);
    entry.1 = serde_json::to_vec(&v).unwrap();
}

/// Safetensors bytes with the header edited (data untouched).
fn edit_safetensors(
    bytes: &[u8],
    f: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>),
) -> Vec<u8> {
    let hlen = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&bytes[8..8 + hlen]).unwrap();
    f(&mut header);
    let mut text = serde_json::to_vec(&header).unwrap();
    while !text.len().is_multiple_of(8) {
        text.push(b' ');
    }
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&text);
    out.extend_from_slice(&bytes[8 + hlen..]);
    out
}

fn archive_cases(valid: &Path, other_weights: &[u8]) -> Vec<ArchiveCase> {
    let entries = read_entries(valid);
    let valid_bytes = std::fs::read(valid).unwrap();
    let weights = entries
        .iter()
        .find(|(n, _)| n == "autoencoder/model.safetensors")
        .unwrap()
        .1
        .clone();
    let case = |name, bytes, expect, inspect_refuses| ArchiveCase {
        name,
        bytes,
        expect,
        inspect_refuses,
    };
    let bomb = {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let o = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
        for (name, bytes) in &entries {
            w.start_file(name.as_str(), o).unwrap();
            w.write_all(bytes).unwrap();
        }
        w.start_file("padding.bin", o).unwrap();
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..32 {
            w.write_all(&zeros).unwrap();
        }
        w.finish().unwrap().into_inner()
    };
    vec![
        case(
            "not_a_zip",
            b"\x89HDF\r\n\x1a\n not a zip".to_vec(),
            "not a readable zip archive",
            true,
        ),
        case("empty_file", Vec::new(), "not a readable zip archive", true),
        case(
            "truncated",
            valid_bytes[..valid_bytes.len() * 2 / 3].to_vec(),
            "not a readable zip archive",
            true,
        ),
        case(
            "missing_manifest",
            edit(&entries, |e| e.retain(|(n, _)| n != "manifest.json")),
            "missing entry `manifest.json`",
            true,
        ),
        case(
            "missing_weights",
            edit(&entries, |e| {
                e.retain(|(n, _)| n != "diffraction_to_obj/model.safetensors")
            }),
            "missing entry `diffraction_to_obj/model.safetensors`",
            true,
        ),
        case(
            "missing_params",
            edit(&entries, |e| e.retain(|(n, _)| n != "params.json")),
            "missing entry `params.json`",
            true,
        ),
        case(
            "newer_format_version",
            edit(&entries, |e| {
                edit_json(e, "manifest.json", |v| v["format_version"] = 99.into())
            }),
            "format_version 99 is newer than this ptycho supports",
            true,
        ),
        case(
            "foreign_backend_in_manifest",
            edit(&entries, |e| {
                edit_json(e, "manifest.json", |v| v["backend"] = "tensorflow".into())
            }),
            "`backend` is \"tensorflow\"",
            true,
        ),
        case(
            "tensorflow_reference_archive",
            zip_bytes(&[
                (
                    "manifest.dill".into(),
                    b"\x80\x04\x95\x10\x00cbuiltins\neval\n.".to_vec(),
                ),
                ("autoencoder/model.keras".into(), b"PK keras".to_vec()),
                (
                    "autoencoder/custom_objects.dill".into(),
                    b"\x80\x04.".to_vec(),
                ),
                (
                    "diffraction_to_obj/model.keras".into(),
                    b"PK keras".to_vec(),
                ),
            ]),
            "written by PtychoPINN TensorFlow",
            true,
        ),
        case(
            "pytorch_reference_archive",
            zip_bytes(&[
                (
                    "manifest.dill".into(),
                    b"\x80\x04 version 2.0-pytorch .".to_vec(),
                ),
                (
                    "diffraction_to_obj/model.pth".into(),
                    b"\x80\x02torch".to_vec(),
                ),
            ]),
            "written by PtychoPINN PyTorch",
            true,
        ),
        case(
            "zip_slip_parent_dir",
            edit(&entries, |e| {
                e.push(("../../../tmp/ptycho-evil.sh".into(), b"rm -rf ~".to_vec()))
            }),
            "unsafe entry name",
            true,
        ),
        case(
            "zip_slip_absolute",
            edit(&entries, |e| {
                e.push(("/etc/cron.d/ptycho".into(), b"* * * * * x".to_vec()))
            }),
            "unsafe entry name",
            true,
        ),
        case("zip_bomb", bomb, "(zip bomb?)", true),
        case(
            "params_not_json",
            edit(&entries, |e| {
                set_entry(e, "params.json", b"{'N': 64,".to_vec())
            }),
            "entry `params.json`: invalid JSON",
            true,
        ),
        case(
            "params_out_of_range",
            edit(&entries, |e| {
                for name in [
                    "params.json",
                    "autoencoder/params.json",
                    "diffraction_to_obj/params.json",
                ] {
                    edit_json(e, name, |v| v["N"] = 100.into());
                }
            }),
            "invalid params snapshot",
            true,
        ),
        case(
            "weights_not_safetensors",
            edit(&entries, |e| {
                set_entry(
                    e,
                    "autoencoder/model.safetensors",
                    b"\x80\x02ctorch\n".to_vec(),
                )
            }),
            "entry `autoencoder/model.safetensors`: invalid safetensors weights",
            true,
        ),
        case(
            "weights_offsets_outside_data",
            edit(&entries, |e| {
                let w = edit_safetensors(&weights, |h| {
                    let (_, t) = h.iter_mut().find(|(k, _)| *k != "__metadata__").unwrap();
                    t["data_offsets"] = serde_json::json!([0, 1u64 << 40]);
                });
                set_entry(e, "autoencoder/model.safetensors", w);
            }),
            "invalid safetensors weights",
            true,
        ),
        case(
            "weights_shape_disagrees_with_data",
            edit(&entries, |e| {
                let w = edit_safetensors(&weights, |h| {
                    let (_, t) = h.iter_mut().find(|(k, _)| *k != "__metadata__").unwrap();
                    let shape = t["shape"].as_array().unwrap().clone();
                    let mut shape: Vec<u64> = shape.iter().map(|d| d.as_u64().unwrap()).collect();
                    shape[0] *= 2;
                    t["shape"] = serde_json::json!(shape);
                });
                set_entry(e, "autoencoder/model.safetensors", w);
            }),
            "entry `autoencoder/model.safetensors`: invalid safetensors weights",
            true,
        ),
        case(
            "weights_of_another_model",
            edit(&entries, |e| {
                set_entry(
                    e,
                    "diffraction_to_obj/model.safetensors",
                    other_weights.to_vec(),
                )
            }),
            "weights do not fit the model rebuilt from the archive's params",
            false,
        ),
    ]
}

#[test]
fn archive_corpus_is_refused_with_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let valid = dir.path().join("valid.wts.h5.zip");
    write_valid_archive(&valid, 1);
    let other = dir.path().join("other.wts.h5.zip");
    write_valid_archive(&other, 2);
    let other_weights = read_entries(&other)
        .into_iter()
        .find(|(n, _)| n == "diffraction_to_obj/model.safetensors")
        .unwrap()
        .1;
    let test_data = dir.path().join("test.npz");
    write_valid_npz(&test_data);
    let rows = vec![
        // PENDING (inspect branch).
        CliRow {
            subcommand: "inspect",
            pending: true,
            args: Box::new(|bad, _| os(&[&"inspect", &bad])),
        },
        // PENDING (infer branch).
        CliRow {
            subcommand: "infer",
            pending: true,
            args: {
                let data = test_data.clone();
                Box::new(move |bad, out| {
                    os(&[
                        &"infer",
                        &"--model",
                        &bad,
                        &"--test-data",
                        &data,
                        &"--output-dir",
                        &out,
                    ])
                })
            },
        },
    ];
    let available = availability(&rows);
    let device = DeviceKind::Flex.to_device().unwrap();
    let cases = archive_cases(&valid, &other_weights);
    let mut problems = Vec::new();
    for c in &cases {
        let path = dir.path().join(format!("{}.wts.h5.zip", c.name));
        std::fs::write(&path, &c.bytes).unwrap();
        let msg = load_model(&path, &device).err().map(|e| e.to_string());
        problems.extend(check_lib_error(c.name, "load_model", &path, msg, c.expect));
        let inspected = inspect_archive(&path);
        if c.inspect_refuses {
            let msg = inspected.err().map(|e| e.to_string());
            problems.extend(check_lib_error(
                c.name,
                "inspect_archive",
                &path,
                msg,
                c.expect,
            ));
        }
        // `inspect` reads no weights into a model: rows that only a model load can refuse skip it.
        let mut avail = available.clone();
        avail[0] &= c.inspect_refuses;
        problems.extend(run_cli_rows(&rows, &avail, c.name, &path, c.expect));
    }
    // Nothing was extracted next to the archives (zip-slip): only what the test wrote is there.
    let mut expected: Vec<PathBuf> = cases
        .iter()
        .map(|c| dir.path().join(format!("{}.wts.h5.zip", c.name)))
        .chain([valid.clone(), other.clone(), test_data.clone()])
        .collect();
    expected.sort();
    assert_eq!(files_under(dir.path()), expected);
    report("archive", cases.len(), problems);
}
