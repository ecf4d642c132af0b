//! `ptycho bench --only stitch --json` runs and reports a well-formed JSON part; `--target`
//! adds a check.

use std::process::Command;

#[test]
fn bench_stitch_part_reports_json() {
    let out = Command::new(env!("CARGO_BIN_EXE_ptycho"))
        .args([
            "bench",
            "--only",
            "stitch",
            "--quick",
            "--json",
            "--target",
            "stitch_ms=100",
            "--target",
            "roofline=0.4",
        ])
        .output()
        .expect("run ptycho bench");
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(v["device"], "flex");
    assert_eq!(v["cores"].as_u64().map(|c| c >= 1), Some(true));
    assert_eq!(v["stitch"]["patches"], 512);
    assert_eq!(v["stitch"]["m"], 20);
    assert!(v["stitch"]["best_s"].as_f64().is_some_and(|t| t > 0.0));
    assert!(v["train"].is_null() && v["infer"].is_null());
    // Only the stitch target has a measurement in this part.
    let targets = v["targets"].as_array().expect("targets");
    assert_eq!(targets.len(), 1, "{targets:?}");
    assert_eq!(targets[0]["target"], "< 100");
    assert!(
        targets[0]["name"]
            .as_str()
            .is_some_and(|n| n.starts_with("stitch"))
    );
}

#[test]
fn bench_rejects_unknown_part() {
    let out = Command::new(env!("CARGO_BIN_EXE_ptycho"))
        .args(["bench", "--only", "everything"])
        .output()
        .expect("run ptycho bench");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn bench_device_list_names_the_bad_device() {
    let out = Command::new(env!("CARGO_BIN_EXE_ptycho"))
        .args(["bench", "--device", "flex,warp-drive", "--quick"])
        .output()
        .expect("run ptycho bench");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("warp-drive"), "{err}");
}

#[test]
fn bench_only_refuses_several_devices() {
    let out = Command::new(env!("CARGO_BIN_EXE_ptycho"))
        .args(["bench", "--device", "flex,ndarray", "--only", "stitch"])
        .output()
        .expect("run ptycho bench");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--only"), "{err}");
}

#[test]
fn bench_rejects_an_unknown_target() {
    let out = Command::new(env!("CARGO_BIN_EXE_ptycho"))
        .args(["bench", "--only", "stitch", "--target", "warp=9"])
        .output()
        .expect("run ptycho bench");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("warp") && err.contains("stitch_ms"), "{err}");
}

/// `--quality`'s options are refused before anything runs when they cannot work: its sub-options
/// without `--quality`, the throughput options with it, several devices, an unknown object or
/// gridsize.
#[test]
fn bench_quality_refuses_bad_options_up_front() {
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_ptycho"))
            .arg("bench")
            .args(args)
            .output()
            .expect("run ptycho bench");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    for args in [
        &["--long"][..],
        &["--seeds", "1"],
        &["--untrained"],
        &["--quality", "--only", "stitch"],
        &["--quality", "--quick"],
        &["--quality", "--objects", "grf"],
    ] {
        let (code, err) = run(args);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    }
    let (code, err) = run(&["--quality", "--device", "flex,tch-cpu"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--quality runs on one device"), "{err}");
    let (code, err) = run(&["--quality", "--gridsizes", "1,5"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--gridsizes: 5"), "{err}");
}
