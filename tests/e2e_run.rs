//! `ptycho run` end to end (tiny settings): simulate → train → infer → evaluate in one command,
//! with every promised output on disk and a summary on stdout.

use std::process::Command;

use ptycho_e2e::ptycho_bin;

#[test]
fn run_main_job_writes_every_output_and_a_summary() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("job");
    let o = Command::new(ptycho_bin())
        .args([
            "run",
            "--quiet",
            "--n-train-images",
            "48",
            "--n-test-images",
            "40",
        ])
        .args([
            "--n-groups",
            "32",
            "--nepochs",
            "1",
            "--seed",
            "5",
            "--output-dir",
        ])
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "ptycho run failed: {stderr}\n{stdout}");
    for f in [
        "train.npz",
        "test.npz",
        "model/wts.h5.zip",
        "model/history.csv",
        "model/loss_curve.png",
        "model/config.toml",
        "reconstruction/reconstruction.npz",
        "reconstruction/reconstructed_amplitude.png",
        "reconstruction/reconstructed_phase.png",
        "reconstruction/metrics.json",
    ] {
        assert!(out.join(f).is_file(), "missing {f}");
    }
    assert!(stdout.contains("ptycho run — summary"), "{stdout}");
    assert!(stdout.contains("SSIM"), "{stdout}");
    let history = std::fs::read_to_string(out.join("model/history.csv")).unwrap();
    assert_eq!(history.lines().count(), 2, "header + 1 epoch:\n{history}");
    let metrics: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("reconstruction/metrics.json")).unwrap(),
    )
    .unwrap();
    let ssim = metrics
        .pointer("/metrics/amplitude/ssim")
        .and_then(|v| v.as_f64());
    assert!(
        ssim.is_some_and(|s| s.is_finite() && s > -1.0 && s <= 1.0),
        "{metrics}"
    );
}
