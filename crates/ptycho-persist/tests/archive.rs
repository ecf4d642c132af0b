//! Integration tests of the archive: layout snapshots, round trips, CONFIG-001 on load, and one
//! test per refusal with a real (often hostile) file on disk.

mod common;

use std::convert::Infallible;
use std::path::{Path, PathBuf};

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use num_complex::Complex32;
use ptycho_config::{ModelConfig, Params, ProbeField, TrainingConfig};
use ptycho_persist::{
    LoadedArchive, LossRecord, PersistError, SaveOptions, inspect_archive, load_archive,
    read_history, save_archive,
};
use zip::CompressionMethod;

use common::{read_entries, write_zip};

/// A small network whose shapes depend on the params: C = gridsize² input channels.
#[derive(Module, Debug)]
struct Tiny {
    conv: Conv2d,
    head: Linear,
}

impl Tiny {
    fn new(p: &Params) -> Result<Tiny, Infallible> {
        let device = Device::flex();
        Ok(Tiny {
            conv: Conv2dConfig::new([p.channels(), 4], [3, 3])
                .with_padding(PaddingConfig2d::Same)
                .init(&device),
            head: LinearConfig::new(4, p.channels()).init(&device),
        })
    }
    fn in_channels(&self) -> usize {
        self.conv.weight.val().dims()[1]
    }
    /// (B, C, N, N) → (B, C): conv, spatial mean, linear.
    fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let y = self.conv.forward(x).mean_dim(3).mean_dim(2);
        let [b, c, _, _] = y.dims();
        self.head.forward(y.reshape([b, c]))
    }
}

fn params(gridsize: usize) -> Params {
    let cfg = TrainingConfig {
        model: ModelConfig {
            gridsize,
            ..Default::default()
        },
        ..Default::default()
    };
    Params::from_training(&cfg.validate().unwrap())
}

/// A deterministic, non-trivial N×N probe (Gaussian amplitude, quadratic phase).
fn probe(n: usize) -> ProbeField {
    let c = n as f32 / 2.0;
    let data = (0..n * n)
        .map(|i| {
            let (r, col) = ((i / n) as f32 - c, (i % n) as f32 - c);
            let rho2 = (r * r + col * col) / (n as f32 * n as f32 / 16.0);
            Complex32::from_polar((-rho2).exp() * 0.37, 0.9 * rho2 + 0.01 * i as f32)
        })
        .collect();
    ProbeField { n, data }
}

fn full_params(gridsize: usize) -> Params {
    params(gridsize)
        .with_probe(probe(64))
        .with_intensity_scale(987.654_321)
}

fn fixed_input(p: &Params) -> Tensor<4> {
    let (c, n) = (p.channels(), p.n());
    let v: Vec<f32> = (0..2 * c * n * n)
        .map(|i| ((i * 7919) % 1013) as f32 / 1013.0 - 0.5)
        .collect();
    Tensor::from_data(TensorData::new(v, [2, c, n, n]), &Device::flex())
}

fn bits(t: Tensor<2>) -> Vec<u32> {
    t.into_data()
        .try_to_vec::<f32>()
        .unwrap()
        .into_iter()
        .map(f32::to_bits)
        .collect()
}

fn save(dir: &Path, p: &Params) -> (PathBuf, Tiny) {
    let path = dir.join("wts.h5.zip");
    let model = Tiny::new(p).unwrap();
    save_archive(&path, &model, p, &SaveOptions::default()).unwrap();
    (path, model)
}

fn load(path: &Path) -> Result<(LoadedArchive<Tiny>, Params), PersistError> {
    load_archive(path, Tiny::new)
}

/// Rewrite the archive at `src` into `dst` with `edit` applied to the entry list.
fn tamper(src: &Path, dst: &Path, edit: impl FnOnce(&mut Vec<(String, Vec<u8>)>)) {
    let mut e = read_entries(src);
    edit(&mut e);
    write_zip(dst, &e, CompressionMethod::Deflated);
}

fn manifest_redacted(path: &Path) -> serde_json::Value {
    let e = read_entries(path);
    let bytes = &e.iter().find(|(n, _)| n == "manifest.json").unwrap().1;
    let mut v: serde_json::Value = serde_json::from_slice(bytes).unwrap();
    let created = v["created_at"].as_str().unwrap().to_string();
    assert!(
        chrono::DateTime::parse_from_rfc3339(&created).is_ok(),
        "created_at {created} is not RFC 3339"
    );
    assert_eq!(v["crate_version"], env!("CARGO_PKG_VERSION"));
    v["created_at"] = "[created_at]".into();
    v["crate_version"] = "[crate_version]".into();
    v
}

#[test]
fn layout_snapshot_gs1() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = save(dir.path(), &full_params(1));
    insta::assert_json_snapshot!("manifest_gs1", manifest_redacted(&path));
    let names: Vec<String> = read_entries(&path).into_iter().map(|(n, _)| n).collect();
    insta::assert_json_snapshot!("entries_gs1", names);
}

#[test]
fn layout_snapshot_gs2() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = save(dir.path(), &full_params(2));
    insta::assert_json_snapshot!("manifest_gs2", manifest_redacted(&path));
    let names: Vec<String> = read_entries(&path).into_iter().map(|(n, _)| n).collect();
    insta::assert_json_snapshot!("entries_gs2", names);
    // The root and per-model snapshots are identical, and carry the runtime entries.
    let e = read_entries(&path);
    let get = |n: &str| &e.iter().find(|(k, _)| k == n).unwrap().1;
    assert_eq!(get("params.json"), get("autoencoder/params.json"));
    assert_eq!(get("params.json"), get("diffraction_to_obj/params.json"));
    assert_eq!(
        get("autoencoder/model.safetensors"),
        get("diffraction_to_obj/model.safetensors")
    );
    let v: serde_json::Value = serde_json::from_slice(get("params.json")).unwrap();
    assert_eq!(v["gridsize"], 2);
    assert_eq!(v["N"], 64);
    assert_eq!(v["intensity_scale"], 987.654_321);
    assert_eq!(v["probe"]["shape"], serde_json::json!([64, 64]));
    assert_eq!(v["probe"]["re"].as_array().unwrap().len(), 64 * 64);
}

#[test]
fn round_trip_is_bit_identical() {
    let dir = tempfile::tempdir().unwrap();
    let p = full_params(2);
    let (path, model) = save(dir.path(), &p);
    let want = bits(model.forward(fixed_input(&p)));
    let (loaded, restored) = load(&path).unwrap();
    assert_eq!(bits(loaded.autoencoder.forward(fixed_input(&p))), want);
    assert_eq!(
        bits(loaded.diffraction_to_obj.forward(fixed_input(&p))),
        want
    );
    let (mut a, mut b) = (restored.to_legacy(), p.to_legacy());
    a.remove("intensity_scale");
    b.remove("intensity_scale");
    assert_eq!(a, b);
    assert_eq!(restored.model(), p.model());
    // serde_json (without its float_roundtrip feature) may be 1 ulp off on f64 parsing.
    let rel = (restored.intensity_scale() / p.intensity_scale() - 1.0).abs();
    assert!(rel <= 4.0 * f64::EPSILON, "{rel}");
    // Probe values come back bit-identical (JSON decimals are shortest round-trip forms).
    let (a, b) = (restored.probe().unwrap(), p.probe().unwrap());
    assert_eq!(a.n, b.n);
    assert!(
        a.data
            .iter()
            .zip(&b.data)
            .all(|(x, y)| x.re.to_bits() == y.re.to_bits() && x.im.to_bits() == y.im.to_bits())
    );
    assert_eq!(
        loaded.manifest.models,
        ["autoencoder", "diffraction_to_obj"]
    );
}

#[test]
fn round_trip_without_probe_keeps_default_intensity_scale() {
    let dir = tempfile::tempdir().unwrap();
    let p = params(1);
    let (path, _) = save(dir.path(), &p);
    let (_, restored) = load(&path).unwrap();
    assert!(restored.probe().is_none());
    // s = sqrt(nphotons)/(N/2) was stored explicitly and restored exactly.
    let rel = (restored.intensity_scale() / p.intensity_scale() - 1.0).abs();
    assert!(rel <= 4.0 * f64::EPSILON, "{rel}");
}

#[test]
fn archive_params_not_callers_config_drive_the_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = save(dir.path(), &full_params(2));
    let callers_own = params(1);
    assert_eq!(callers_own.channels(), 1);
    let seen = std::cell::RefCell::new(Vec::new());
    let (loaded, restored) = load_archive(&path, |p: &Params| {
        seen.borrow_mut().push(p.gridsize());
        Tiny::new(p)
    })
    .unwrap();
    assert_eq!(*seen.borrow(), [2, 2]);
    assert_eq!(restored.gridsize(), 2);
    assert_eq!(loaded.autoencoder.in_channels(), 4);
    assert_eq!(loaded.diffraction_to_obj.in_channels(), 4);
}

#[test]
fn build_errors_are_reported_with_the_model_name() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = save(dir.path(), &full_params(1));
    let err = load_archive(&path, |_: &Params| -> Result<Tiny, String> {
        Err("no device".into())
    })
    .unwrap_err();
    assert!(
        matches!(&err, PersistError::Build { model, .. } if model == "autoencoder"),
        "{err}"
    );
}

#[test]
fn inspect_reports_counts_and_summarises_probe() {
    let dir = tempfile::tempdir().unwrap();
    let p = full_params(2);
    let (path, model) = save(dir.path(), &p);
    let info = inspect_archive(&path).unwrap();
    assert_eq!(info.models.len(), 2);
    for m in &info.models {
        assert_eq!(m.parameters, model.num_params() as u64, "{}", m.name);
        assert_eq!(m.tensors, 4);
    }
    // conv 4·4·3·3 + 4, linear 4·4 + 4
    assert_eq!(info.models[0].parameters, 144 + 4 + 16 + 4);
    assert_eq!(info.probe.as_ref().unwrap().shape, [64, 64]);
    assert!(!info.params.contains_key("probe"));
    assert_eq!(info.params["gridsize"], 2);
    let json = serde_json::to_string(&info).unwrap();
    assert!(json.len() < 10_000, "probe array leaked into the summary");
    let text = info.to_string();
    assert!(text.contains("gridsize = 2"), "{text}");
    assert!(text.contains("probe:   64×64 complex64"), "{text}");
    assert!(text.contains("autoencoder"), "{text}");
    // Writes the example archive for the Python snippet of plans/ARCHIVE.md when asked.
    if let Ok(out) = std::env::var("PTYCHO_PERSIST_EXAMPLE_OUT") {
        std::fs::copy(&path, out).unwrap();
    }
}

#[test]
fn save_refuses_to_overwrite_and_leaves_no_temp_files() {
    let dir = tempfile::tempdir().unwrap();
    let p = full_params(1);
    let (path, _) = save(dir.path(), &p);
    let before = std::fs::read(&path).unwrap();
    let other = Tiny::new(&p).unwrap();
    let err = save_archive(&path, &other, &p, &SaveOptions::default()).unwrap_err();
    assert!(matches!(err, PersistError::AlreadyExists { .. }), "{err}");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "archive was modified"
    );
    save_archive(
        &path,
        &other,
        &p,
        &SaveOptions {
            overwrite: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert_ne!(std::fs::read(&path).unwrap(), before);
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["wts.h5.zip"]);
}

#[test]
fn failed_save_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wts.h5.zip");
    let p = params(1).with_intensity_scale(f64::NAN);
    let err =
        save_archive(&path, &Tiny::new(&p).unwrap(), &p, &SaveOptions::default()).unwrap_err();
    assert!(matches!(err, PersistError::InvalidValue { .. }), "{err}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    let missing_dir = dir.path().join("no/such/dir/wts.h5.zip");
    let err = save_archive(
        &missing_dir,
        &Tiny::new(&p).unwrap(),
        &params(1),
        &SaveOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(err, PersistError::Io { .. }), "{err}");
}

// ---------------------------------------------------------------- loss history

/// Three epochs, the second without a validation loss.
fn history() -> Vec<LossRecord> {
    (1..=3)
        .map(|e| LossRecord {
            epoch: e,
            loss: 1.0 / e as f64 + 0.125,
            val_loss: (e != 2).then(|| 2.0 / e as f64),
            nll: 1.0 / e as f64,
            mae: 0.125,
            lr: 1e-3 / e as f64,
        })
        .collect()
}

fn save_with_history(dir: &Path, p: &Params, h: Vec<LossRecord>) -> PathBuf {
    let path = dir.join("wts.h5.zip");
    let opts = SaveOptions {
        history: h,
        ..Default::default()
    };
    save_archive(&path, &Tiny::new(p).unwrap(), p, &opts).unwrap();
    path
}

#[test]
fn layout_snapshot_with_history() {
    let dir = tempfile::tempdir().unwrap();
    let path = save_with_history(dir.path(), &full_params(1), history());
    let e = read_entries(&path);
    let names: Vec<&str> = e.iter().map(|(n, _)| n.as_str()).collect();
    insta::assert_json_snapshot!("entries_with_history", names);
    let bytes = &e.iter().find(|(n, _)| n == "history.json").unwrap().1;
    let v: serde_json::Value = serde_json::from_slice(bytes).unwrap();
    insta::assert_json_snapshot!("history_json", v);
}

#[test]
fn history_round_trips_and_is_absent_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let p = full_params(1);
    let path = save_with_history(dir.path(), &p, history());
    let (loaded, _) = load(&path).unwrap();
    assert_eq!(loaded.history, history());
    assert_eq!(read_history(&path).unwrap(), history());
    let info = inspect_archive(&path).unwrap();
    assert_eq!(info.history, history());
    let text = info.to_string();
    assert!(
        text.contains("history: 3 epochs, loss 1.125 (epoch 1) → 0.4583333333333333 (epoch 3)"),
        "{text}"
    );

    // An archive without the entry (as every archive written before it existed) loads with an
    // empty history.
    let old = tempfile::tempdir().unwrap();
    let (path, _) = save(old.path(), &p);
    assert!(!read_entries(&path).iter().any(|(n, _)| n == "history.json"));
    let (loaded, _) = load(&path).unwrap();
    assert!(loaded.history.is_empty());
    assert!(read_history(&path).unwrap().is_empty());
    let info = inspect_archive(&path).unwrap();
    assert!(info.to_string().contains("history: none stored"));
}

#[test]
fn refuses_invalid_histories_on_save_and_on_load() {
    let dir = tempfile::tempdir().unwrap();
    let p = full_params(1);
    let path = dir.path().join("wts.h5.zip");
    let model = Tiny::new(&p).unwrap();
    type Edit = fn(&mut [LossRecord]);
    let cases: [(&str, Edit); 3] = [
        ("val_loss is NaN", |h| h[2].val_loss = Some(f64::NAN)),
        ("epoch 0 follows epoch 0", |h| h[0].epoch = 0),
        ("epoch 2 follows epoch 2", |h| h[2].epoch = 2),
    ];
    for (needle, edit) in cases {
        let mut h = history();
        edit(&mut h);
        let opts = SaveOptions {
            history: h,
            ..Default::default()
        };
        let err = save_archive(&path, &model, &p, &opts).unwrap_err();
        assert!(matches!(err, PersistError::InvalidValue { .. }), "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains("history.json") && msg.contains(needle),
            "{msg}"
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    let good = save_with_history(dir.path(), &p, history());
    for (name, body) in [
        ("notalist.zip", br#"{"epoch": 1}"#.to_vec()),
        ("badepochs.zip", br#"[{"epoch": 2, "loss": 1, "val_loss": null, "nll": 1, "mae": 0, "lr": 1}, {"epoch": 1, "loss": 1, "val_loss": null, "nll": 1, "mae": 0, "lr": 1}]"#.to_vec()),
    ] {
        let bad = dir.path().join(name);
        tamper(&good, &bad, |e| {
            e.iter_mut().find(|(n, _)| n == "history.json").unwrap().1 = body
        });
        let err = load(&bad).unwrap_err();
        assert!(matches!(err, PersistError::BadHistory { .. }), "{err}");
        assert_names(&err, &bad, "history.json");
        assert!(read_history(&bad).is_err());
        assert!(inspect_archive(&bad).is_err());
    }
}

// ---------------------------------------------------------------- refusals

fn assert_names(err: &PersistError, path: &Path, entry: &str) {
    let msg = err.to_string();
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains(entry), "message lacks `{entry}`: {msg}");
}

#[test]
fn refuses_a_file_that_is_not_a_zip_or_is_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("not.zip");
    std::fs::write(&text, "this is not a zip archive").unwrap();
    let err = load(&text).unwrap_err();
    assert!(matches!(err, PersistError::NotZip { .. }), "{err}");
    assert_names(&err, &text, "not a readable zip");

    let (path, _) = save(dir.path(), &full_params(1));
    let bytes = std::fs::read(&path).unwrap();
    let cut = dir.path().join("cut.zip");
    std::fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let err = load(&cut).unwrap_err();
    assert!(matches!(err, PersistError::NotZip { .. }), "{err}");

    let err = load(&dir.path().join("absent.zip")).unwrap_err();
    assert!(matches!(err, PersistError::Io { .. }), "{err}");
}

#[test]
fn refuses_missing_manifest_and_missing_entries() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = save(dir.path(), &full_params(1));
    let bad = dir.path().join("nomanifest.zip");
    tamper(&path, &bad, |e| e.retain(|(n, _)| n != "manifest.json"));
    let err = load(&bad).unwrap_err();
    assert!(matches!(err, PersistError::MissingEntry { .. }), "{err}");
    assert_names(&err, &bad, "manifest.json");

    let bad = dir.path().join("noweights.zip");
    tamper(&path, &bad, |e| {
        e.retain(|(n, _)| n != "diffraction_to_obj/model.safetensors")
    });
    let err = load(&bad).unwrap_err();
    assert!(matches!(err, PersistError::MissingEntry { .. }), "{err}");
    assert_names(&err, &bad, "diffraction_to_obj/model.safetensors");
    assert!(inspect_archive(&bad).is_err());
}

fn edit_manifest(path: &Path, dst: &Path, f: impl FnOnce(&mut serde_json::Value)) {
    tamper(path, dst, |e| {
        let m = e.iter_mut().find(|(n, _)| n == "manifest.json").unwrap();
        let mut v: serde_json::Value = serde_json::from_slice(&m.1).unwrap();
        f(&mut v);
        m.1 = serde_json::to_vec(&v).unwrap();
    });
}

#[test]
fn refuses_a_newer_format_version_and_bad_manifests() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = save(dir.path(), &full_params(1));
    let bad = dir.path().join("v2.zip");
    edit_manifest(&path, &bad, |v| v["format_version"] = 2.into());
    let err = load(&bad).unwrap_err();
    assert!(
        matches!(
            err,
            PersistError::UnsupportedVersion {
                found: 2,
                supported: 1,
                ..
            }
        ),
        "{err}"
    );
    assert_names(&err, &bad, "manifest.json");
    assert!(inspect_archive(&bad).is_err());

    let bad = dir.path().join("otherbackend.zip");
    edit_manifest(&path, &bad, |v| v["backend"] = "candle".into());
    let err = load(&bad).unwrap_err();
    assert!(matches!(err, PersistError::BadManifest { .. }), "{err}");
    assert!(err.to_string().contains("candle"), "{err}");

    let bad = dir.path().join("onemodel.zip");
    edit_manifest(&path, &bad, |v| {
        v["models"] = serde_json::json!(["autoencoder"])
    });
    let err = load(&bad).unwrap_err();
    assert!(err.to_string().contains("diffraction_to_obj"), "{err}");

    let bad = dir.path().join("notjson.zip");
    tamper(&path, &bad, |e| e[0].1 = b"{not json".to_vec());
    let err = load(&bad).unwrap_err();
    assert!(matches!(err, PersistError::Json { .. }), "{err}");
    assert_names(&err, &bad, "manifest.json");
}

#[test]
fn refuses_reference_tensorflow_and_pytorch_archives() {
    let dir = tempfile::tempdir().unwrap();
    let e = |n: &str, b: &[u8]| (n.to_string(), b.to_vec());
    let tf = dir.path().join("tf.zip");
    write_zip(
        &tf,
        &[
            e("manifest.dill", b"\x80\x04\x95 fake pickle 1.0"),
            e("autoencoder/model.keras", b"PK fake"),
            e("autoencoder/params.dill", b"\x80\x04"),
        ],
        CompressionMethod::Deflated,
    );
    let err = load(&tf).unwrap_err();
    assert!(
        matches!(
            err,
            PersistError::ForeignArchive {
                backend: "TensorFlow",
                ..
            }
        ),
        "{err}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("this archive was written by PtychoPINN TensorFlow; ptycho reads archives written by ptycho (burn)"),
        "{msg}"
    );
    assert!(inspect_archive(&tf).is_err());

    let torch = dir.path().join("torch.zip");
    write_zip(
        &torch,
        &[
            e("manifest.dill", b"\x80\x04 2.0-pytorch"),
            e("autoencoder/model.pth", b"fake"),
        ],
        CompressionMethod::Deflated,
    );
    let err = load(&torch).unwrap_err();
    assert!(
        err.to_string().contains("written by PtychoPINN PyTorch;"),
        "{err}"
    );
    assert!(err.to_string().contains("autoencoder/model.pth"), "{err}");

    let torch_manifest_only = dir.path().join("torch2.zip");
    write_zip(
        &torch_manifest_only,
        &[e("manifest.dill", b"\x80\x04 version 2.0-pytorch")],
        CompressionMethod::Deflated,
    );
    let err = load(&torch_manifest_only).unwrap_err();
    assert!(
        matches!(
            err,
            PersistError::ForeignArchive {
                backend: "PyTorch",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn refuses_weights_whose_shapes_do_not_fit_the_params() {
    let dir = tempfile::tempdir().unwrap();
    let (gs2, _) = save(dir.path(), &full_params(2));
    let sub = dir.path().join("gs1");
    std::fs::create_dir(&sub).unwrap();
    let (gs1, _) = save(&sub, &full_params(1));
    let gs1_weights = read_entries(&gs1)
        .into_iter()
        .find(|(n, _)| n == "autoencoder/model.safetensors")
        .unwrap()
        .1;
    let bad = dir.path().join("tampered.zip");
    tamper(&gs2, &bad, |e| {
        e.iter_mut()
            .find(|(n, _)| n == "autoencoder/model.safetensors")
            .unwrap()
            .1 = gs1_weights;
    });
    let err = load(&bad).unwrap_err();
    assert!(matches!(err, PersistError::WeightMismatch { .. }), "{err}");
    assert_names(&err, &bad, "autoencoder/model.safetensors");
    assert!(err.to_string().contains("conv.weight"), "{err}");

    // Garbage instead of safetensors.
    let bad = dir.path().join("garbage.zip");
    tamper(&gs2, &bad, |e| {
        e.iter_mut()
            .find(|(n, _)| n == "diffraction_to_obj/model.safetensors")
            .unwrap()
            .1 = vec![0xff; 64];
    });
    let err = load(&bad).unwrap_err();
    assert!(matches!(err, PersistError::BadWeights { .. }), "{err}");
    assert_names(&err, &bad, "diffraction_to_obj/model.safetensors");
}

#[test]
fn refuses_inconsistent_or_invalid_params() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = save(dir.path(), &full_params(2));
    let edit = |dst: &Path, entry: &str, f: &dyn Fn(&mut serde_json::Value)| {
        tamper(&path, dst, |e| {
            let m = e.iter_mut().find(|(n, _)| n == entry).unwrap();
            let mut v: serde_json::Value = serde_json::from_slice(&m.1).unwrap();
            f(&mut v);
            m.1 = serde_json::to_vec(&v).unwrap();
        })
    };
    let bad = dir.path().join("inconsistent.zip");
    edit(&bad, "diffraction_to_obj/params.json", &|v| {
        v["gridsize"] = 1.into()
    });
    let err = load(&bad).unwrap_err();
    assert!(matches!(err, PersistError::Inconsistent { .. }), "{err}");
    assert_names(&err, &bad, "diffraction_to_obj/params.json");

    let bad = dir.path().join("gridsize0.zip");
    edit(&bad, "params.json", &|v| v["gridsize"] = 0.into());
    let err = load(&bad).unwrap_err();
    assert!(matches!(err, PersistError::BadParams { .. }), "{err}");
    assert_names(&err, &bad, "params.json");

    let bad = dir.path().join("shortprobe.zip");
    edit(&bad, "params.json", &|v| {
        v["probe"]["re"].as_array_mut().unwrap().pop();
    });
    let err = load(&bad).unwrap_err();
    assert!(err.to_string().contains("probe.re"), "{err}");
}

#[test]
fn refuses_entry_names_escaping_the_archive() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = save(dir.path(), &full_params(1));
    for (i, evil) in ["../../evil.sh", "/etc/evil", "autoencoder/../../x"]
        .iter()
        .enumerate()
    {
        let bad = dir.path().join(format!("slip{i}.zip"));
        tamper(&path, &bad, |e| {
            e.insert(0, (evil.to_string(), b"boom".to_vec()))
        });
        let err = load(&bad).unwrap_err();
        assert!(
            matches!(err, PersistError::UnsafeEntryName { .. }),
            "{evil}: {err}"
        );
        assert_names(&err, &bad, evil);
        assert!(inspect_archive(&bad).is_err());
    }
    // Nothing was extracted anywhere.
    assert!(!dir.path().join("evil.sh").exists());
    assert!(!dir.path().parent().unwrap().join("evil.sh").exists());
}

#[test]
fn refuses_a_zip_bomb_by_compression_ratio() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = save(dir.path(), &full_params(1));
    let bad = dir.path().join("bomb.zip");
    tamper(&path, &bad, |e| {
        e.push(("padding.bin".into(), vec![0u8; 8 << 20]))
    });
    let err = load(&bad).unwrap_err();
    assert!(matches!(err, PersistError::SuspiciousEntry { .. }), "{err}");
    assert_names(&err, &bad, "padding.bin");
    assert!(err.to_string().contains("compression ratio"), "{err}");
}

/// Overwrite the uncompressed-size fields of `entry` in both the local and the central header.
fn patch_declared_size(path: &Path, entry: &str, size: u32) {
    let mut b = std::fs::read(path).unwrap();
    let name = entry.as_bytes();
    let mut patched = 0;
    for i in 0..b.len().saturating_sub(46) {
        let sig = &b[i..i + 4];
        if sig == b"PK\x03\x04" {
            let nlen = u16::from_le_bytes([b[i + 26], b[i + 27]]) as usize;
            if &b[i + 30..i + 30 + nlen] == name {
                b[i + 22..i + 26].copy_from_slice(&size.to_le_bytes());
                patched += 1;
            }
        } else if sig == b"PK\x01\x02" {
            let nlen = u16::from_le_bytes([b[i + 28], b[i + 29]]) as usize;
            if &b[i + 46..i + 46 + nlen] == name {
                b[i + 24..i + 28].copy_from_slice(&size.to_le_bytes());
                patched += 1;
            }
        }
    }
    assert_eq!(patched, 2, "headers of {entry} not found");
    std::fs::write(path, b).unwrap();
}

#[test]
fn refuses_declared_sizes_beyond_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = save(dir.path(), &full_params(1));
    let bad = dir.path().join("huge.zip");
    std::fs::copy(&path, &bad).unwrap();
    patch_declared_size(&bad, "autoencoder/model.safetensors", 0xF000_0000);
    let err = load(&bad).unwrap_err();
    assert!(matches!(err, PersistError::SuspiciousEntry { .. }), "{err}");
    assert_names(&err, &bad, "autoencoder/model.safetensors");
    assert!(err.to_string().contains("exceeds the limit"), "{err}");
}

#[test]
fn a_lying_size_header_cannot_make_the_reader_overrun() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = save(dir.path(), &full_params(1));
    let bad = dir.path().join("liar.zip");
    std::fs::copy(&path, &bad).unwrap();
    patch_declared_size(&bad, "manifest.json", 10);
    let err = load(&bad).unwrap_err();
    assert!(matches!(err, PersistError::CorruptEntry { .. }), "{err}");
    assert_names(&err, &bad, "manifest.json");
}
