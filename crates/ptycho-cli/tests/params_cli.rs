//! `ptycho params` and the CLI conventions, run through the real binary.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{Value, json};

fn ptycho(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ptycho"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("the ptycho binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `ptycho params --json <args>` parsed, asserting success.
fn params_json(args: &[&str]) -> serde_json::Map<String, Value> {
    let mut full = vec!["params", "--json"];
    full.extend_from_slice(args);
    let o = ptycho(&full);
    assert!(o.status.success(), "ptycho {full:?} failed: {}", stderr(&o));
    match serde_json::from_slice(&o.stdout) {
        Ok(Value::Object(m)) => m,
        other => panic!("not a JSON object: {other:?}\n{}", stdout(&o)),
    }
}

/// The error output of a failing run: exactly one line `error: ...`, exit code 2.
fn one_error_line(o: &Output) -> String {
    assert_eq!(o.status.code(), Some(2), "stderr: {}", stderr(o));
    let err = stderr(o);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "expected one stderr line, got: {err}");
    assert!(lines[0].starts_with("error: "), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    lines[0].to_string()
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

#[test]
fn defaults_are_the_reference_dataclass_values() {
    let m = params_json(&[]);
    let expected = [
        ("N", json!(64)),
        ("gridsize", json!(1)),
        ("n_filters_scale", json!(2)),
        ("object.big", json!(true)),
        ("probe.big", json!(true)),
        ("probe.mask", json!(false)),
        ("pad_object", json!(true)),
        ("probe_scale", json!(4.0)),
        ("amp_activation", json!("sigmoid")),
        ("model_type", json!("pinn")),
        ("batch_size", json!(16)),
        ("nepochs", json!(50)),
        ("nll_weight", json!(1.0)),
        ("mae_weight", json!(0.0)),
        ("nphotons", json!(1e9)),
        ("n_groups", json!(512)),
        ("neighbor_count", json!(4)),
        ("intensity_scale.trainable", json!(true)),
        ("positions.provided", json!(true)),
        ("probe.trainable", json!(false)),
        ("offset", json!(4)),
        ("max_position_jitter", json!(10)),
        ("default_probe_scale", json!(0.7)),
        ("bigN", json!(64)),
        ("padded_size", json!(74)),
        ("h5_path", json!("wts.h5")),
        ("output_prefix", json!("training_outputs")),
    ];
    for (k, v) in expected {
        assert_eq!(m.get(k), Some(&v), "key {k}");
    }
    for absent in [
        "n_subsample",
        "train_data_file_path",
        "intensity_scale",
        "probe",
    ] {
        assert!(!m.contains_key(absent), "{absent} must not be written");
    }
}

#[test]
fn json_keys_are_sorted() {
    let o = ptycho(&["params", "--json"]);
    let text = stdout(&o);
    let keys: Vec<&str> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix('"'))
        .filter_map(|l| l.split('"').next())
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    assert!(keys.len() > 40, "{keys:?}");
}

#[test]
fn gridsize_2_gives_big_n_68() {
    let m = params_json(&["--gridsize", "2"]);
    assert_eq!(m["bigN"], json!(68));
    assert_eq!(m["padded_size"], json!(78));
    assert_eq!(m["gridsize"], json!(2));
}

#[test]
fn n_128_alias_gives_138() {
    let m = params_json(&["--N", "128"]);
    assert_eq!(
        (m["N"].clone(), m["padded_size"].clone()),
        (json!(128), json!(138))
    );
    let m = params_json(&["--n", "128", "--gridsize", "2"]);
    assert_eq!(m["padded_size"], json!(142));
}

#[test]
fn underscore_aliases_work() {
    let m = params_json(&[
        "--n_groups",
        "7",
        "--batch_size",
        "32",
        "--object_big",
        "false",
    ]);
    assert_eq!(m["n_groups"], json!(7));
    assert_eq!(m["batch_size"], json!(32));
    assert_eq!(m["object.big"], json!(false));
    let m = params_json(&["--n-groups", "9", "--probe-big=false"]);
    assert_eq!(m["n_groups"], json!(9));
    assert_eq!(m["probe.big"], json!(false));
}

#[test]
fn text_output_is_key_equals_value() {
    let o = ptycho(&["params", "--gridsize", "2"]);
    assert!(o.status.success());
    let text = stdout(&o);
    assert!(text.lines().any(|l| l == "bigN = 68"), "{text}");
    assert!(
        text.lines().any(|l| l == "amp_activation = \"sigmoid\""),
        "{text}"
    );
    assert!(text.lines().all(|l| l.contains(" = ")));
}

#[test]
fn config_file_then_flags() {
    let dir = tempfile::tempdir().unwrap();
    let toml = write(
        dir.path(),
        "run.toml",
        "nepochs = 7\nn_groups = 64\n[model]\ngridsize = 2\nN = 128\n",
    );
    let m = params_json(&["--config", &toml]);
    assert_eq!(
        (m["nepochs"].clone(), m["bigN"].clone()),
        (json!(7), json!(132))
    );
    // flags override the file, the rest of the file stays
    let m = params_json(&["--config", &toml, "--gridsize", "1"]);
    assert_eq!(
        (m["nepochs"].clone(), m["bigN"].clone()),
        (json!(7), json!(128))
    );
    let js = write(
        dir.path(),
        "run.json",
        r#"{"batch_size": 4, "model": {"probe_mask": true}}"#,
    );
    let m = params_json(&["-c", &js]);
    assert_eq!(m["batch_size"], json!(4));
    assert_eq!(m["probe.mask"], json!(true));
}

#[test]
fn unknown_key_in_file_names_key_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "bad.toml", "nepochs = 3\nlearning_rat = 0.1\n");
    let line = one_error_line(&ptycho(&["params", "--config", &path]));
    assert!(line.contains("`learning_rat`"), "{line}");
    assert!(line.contains(&path), "{line}");
    let path = write(dir.path(), "bad.json", r#"{"model": {"gridsise": 2}}"#);
    let line = one_error_line(&ptycho(&["params", "--config", &path]));
    assert!(
        line.contains("`model.gridsise`") && line.contains(&path),
        "{line}"
    );
}

#[test]
fn invalid_values_name_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "b.toml", "batch_size = 12\n");
    let line = one_error_line(&ptycho(&["params", "--config", &path]));
    assert!(
        line.contains("`batch_size`") && line.contains("12") && line.contains(&path),
        "{line}"
    );
    let line = one_error_line(&ptycho(&["params", "--batch-size", "12"]));
    assert_eq!(
        line,
        "error: invalid value for `batch_size`: 12 (must be a power of two: 1, 2, 4, 8, 16, ...)"
    );
    let line = one_error_line(&ptycho(&["params", "--gridsize", "3"]));
    assert!(
        line.contains("`neighbor_count`") && line.contains("9"),
        "{line}"
    );
    let path = write(dir.path(), "t.toml", "nepochs = \"many\"\n");
    let line = one_error_line(&ptycho(&["params", "--config", &path]));
    assert!(line.contains("`nepochs`") && line.contains(&path), "{line}");
    let line = one_error_line(&ptycho(&["params", "--config", "/nonexistent/x.toml"]));
    assert!(line.contains("/nonexistent/x.toml"), "{line}");
}

#[test]
fn usage_errors_are_one_line_and_exit_2() {
    let line = one_error_line(&ptycho(&["params", "--n-group", "1"]));
    assert!(
        line.contains("'--n-group'") && line.contains("--n-groups"),
        "{line}"
    );
    let line = one_error_line(&ptycho(&["params", "--object-big", "maybe"]));
    assert!(
        line.contains("--object-big") && line.contains("maybe"),
        "{line}"
    );
    let line = one_error_line(&ptycho(&["params", "--object-big"]));
    assert!(line.contains("--object-big"), "{line}");
    let line = one_error_line(&ptycho(&["params", "--gridsize", "two"]));
    assert!(
        line.contains("--gridsize") && line.contains("two"),
        "{line}"
    );
    let line = one_error_line(&ptycho(&["frobnicate"]));
    assert!(line.contains("frobnicate"), "{line}");
}

#[test]
fn help_and_version() {
    let o = ptycho(&["--version"]);
    assert!(o.status.success());
    assert_eq!(
        stdout(&o).trim(),
        format!("ptycho {}", env!("CARGO_PKG_VERSION"))
    );
    let o = ptycho(&["params", "--help"]);
    assert!(o.status.success());
    let help = stdout(&o);
    for needle in [
        "--n-groups",
        "n_groups",
        "--config",
        "--json",
        "Default: 512",
        "pixels",
    ] {
        assert!(help.contains(needle), "help lacks {needle}:\n{help}");
    }
}

#[test]
fn run_help_describes_the_main_job() {
    let o = ptycho(&["run", "--help"]);
    assert!(o.status.success());
    let help = stdout(&o);
    for needle in [
        "simulate",
        "--n-groups",
        "--nepochs",
        "--output-dir",
        "ptycho_run",
    ] {
        assert!(help.contains(needle), "run --help lacks {needle}:\n{help}");
    }
}

/// `ptycho infer --config FILE`: the same loader as training (unknown keys name file and key,
/// values are validated naming the field), and a flag overrides the file's value.
#[test]
fn infer_config_file_is_read_and_flags_override_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "bad.toml", "batch_sise = 8\n");
    let line = one_error_line(&ptycho(&["infer", "--config", &path]));
    assert!(
        line.contains(&path)
            && line.contains("unknown key `batch_sise` (did you mean `batch_size`?)"),
        "{line}"
    );
    let path = write(dir.path(), "odd.json", r#"{"stitch_crop": 21}"#);
    let line = one_error_line(&ptycho(&["infer", "--config", &path]));
    assert!(
        line.contains(&path) && line.contains("invalid value for `stitch_crop`: 21"),
        "{line}"
    );
    // The file names a missing model and a test file; --test-data overrides the file's test
    // file, so the error names the flag's file (the test data is read before the model).
    let missing_model = dir.path().join("no_model");
    let path = write(
        dir.path(),
        "infer.toml",
        &format!(
            "model_path = {:?}\ntest_data_file = {:?}\n",
            missing_model.display().to_string(),
            dir.path().join("from_file.npz").display().to_string()
        ),
    );
    let flag_data = dir.path().join("from_flag.npz");
    let line = one_error_line(&ptycho(&[
        "infer",
        "--config",
        &path,
        "--test-data",
        &flag_data.display().to_string(),
    ]));
    assert!(
        line.contains("from_flag.npz") && !line.contains("from_file.npz"),
        "{line}"
    );
    let line = one_error_line(&ptycho(&["infer", "--config", &path]));
    assert!(line.contains("from_file.npz"), "{line}");
    // Neither flag nor file names a model.
    let line = one_error_line(&ptycho(&["infer", "--test-data", "t.npz"]));
    assert!(line.contains("no model"), "{line}");
}
