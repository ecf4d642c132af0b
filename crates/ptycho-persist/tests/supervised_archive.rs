//! The archive of the supervised baseline: same layout as the PINN's (snapshots), the params'
//! `model_type` says which network it holds, loading builds that network, and the two kinds
//! cannot be mixed up on save or load.

#[allow(dead_code)] // write_zip is for the tamper tests of archive.rs
mod common;

use std::path::{Path, PathBuf};

use burn::prelude::*;
use ptycho_config::{ModelConfig, ModelType, Params, TrainingConfig};
use ptycho_model::{PtychoPinn, SupervisedNet};
use ptycho_persist::{
    ArchivedModel, PersistError, SaveOptions, inspect_archive, load_any_model, load_model,
    load_supervised_model, save_model, save_supervised_model,
};

use common::read_entries;

fn params(model_type: ModelType) -> Params {
    Params::from_training(
        &TrainingConfig {
            model: ModelConfig {
                n_filters_scale: 1,
                model_type,
                ..Default::default()
            },
            ..Default::default()
        }
        .validate()
        .unwrap(),
    )
    .with_intensity_scale(123.5)
}

fn saved(dir: &Path) -> (PathBuf, SupervisedNet) {
    let path = dir.join("wts.h5.zip");
    let p = params(ModelType::Supervised);
    let model = SupervisedNet::new_seeded(&p, &Device::flex(), 9).unwrap();
    save_supervised_model(&path, &model, &p, &SaveOptions::default()).unwrap();
    (path, model)
}

fn manifest_redacted(path: &Path) -> serde_json::Value {
    let e = read_entries(path);
    let bytes = &e.iter().find(|(n, _)| n == "manifest.json").unwrap().1;
    let mut v: serde_json::Value = serde_json::from_slice(bytes).unwrap();
    v["created_at"] = "[created_at]".into();
    v["crate_version"] = "[crate_version]".into();
    v
}

fn input() -> Tensor<4> {
    let v: Vec<f32> = (0..64 * 64)
        .map(|i| ((i * 7919) % 1013) as f32 / 1013.0)
        .collect();
    Tensor::from_data(TensorData::new(v, [1, 1, 64, 64]), &Device::flex())
}

fn values(t: Tensor<4>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().unwrap()
}

#[test]
fn layout_snapshot_supervised() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = saved(dir.path());
    insta::assert_json_snapshot!("manifest_supervised", manifest_redacted(&path));
    let names: Vec<String> = read_entries(&path).into_iter().map(|(n, _)| n).collect();
    insta::assert_json_snapshot!("entries_supervised", names);
    let e = read_entries(&path);
    let root: serde_json::Value =
        serde_json::from_slice(&e.iter().find(|(n, _)| n == "params.json").unwrap().1).unwrap();
    assert_eq!(root["model_type"], "supervised");
}

#[test]
fn round_trip_builds_the_supervised_network_with_the_same_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let (path, model) = saved(dir.path());
    let (want_a, want_p) = model.forward(input()).unwrap();
    let (loaded, p) = load_supervised_model(&path, &Device::flex()).unwrap();
    assert_eq!(p.model().model_type, ModelType::Supervised);
    assert_eq!(p.intensity_scale(), 123.5);
    let (a, ph) = loaded.diffraction_to_obj.forward(input()).unwrap();
    assert_eq!(values(a), values(want_a.clone()));
    assert_eq!(values(ph), values(want_p));
    // Through the dispatching loader, from the directory.
    let (any, _) = load_any_model(dir.path(), &Device::flex()).unwrap();
    assert_eq!(any.model_type(), ModelType::Supervised);
    match any {
        ArchivedModel::Supervised(l) => {
            assert_eq!(
                values(l.autoencoder.forward(input()).unwrap().0),
                values(want_a)
            );
        }
        ArchivedModel::Pinn(_) => panic!("a supervised archive loaded as a PINN"),
    }
}

#[test]
fn the_two_kinds_are_not_mixed_up() {
    let dir = tempfile::tempdir().unwrap();
    let (path, model) = saved(dir.path());
    // The PINN loader refuses a supervised archive, saying what it holds.
    let err = load_model(&path, &Device::flex()).unwrap_err();
    let chain = format!(
        "{err}: {}",
        std::error::Error::source(&err).map_or(String::new(), |s| s.to_string())
    );
    assert!(matches!(err, PersistError::Build { .. }), "{chain}");
    assert!(
        chain.contains("holds a supervised model") && chain.contains("not a pinn one"),
        "{chain}"
    );
    // Saving refuses params naming the other network.
    let other = dir.path().join("other.zip");
    let err = save_supervised_model(
        &other,
        &model,
        &params(ModelType::Pinn),
        &SaveOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("model_type = \"pinn\""), "{err}");
    let pinn = PtychoPinn::new(&params(ModelType::Pinn), &Device::flex()).unwrap();
    let err = save_model(
        &other,
        &pinn,
        &params(ModelType::Supervised),
        &SaveOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("model_type = \"supervised\""), "{err}");
    assert!(!other.exists());
    // A PINN archive loads as a PINN through the dispatching loader.
    let p = params(ModelType::Pinn);
    save_model(&other, &pinn, &p, &SaveOptions::default()).unwrap();
    let (any, _) = load_any_model(&other, &Device::flex()).unwrap();
    assert!(matches!(any, ArchivedModel::Pinn(_)));
    let err = load_supervised_model(&other, &Device::flex()).unwrap_err();
    assert!(matches!(err, PersistError::Build { .. }), "{err}");
}

#[test]
fn inspect_says_which_network_the_archive_holds() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = saved(dir.path());
    let info = inspect_archive(&path).unwrap();
    assert_eq!(info.model_type, "supervised");
    let text = info.to_string();
    assert!(
        text.contains("type:    supervised — supervised baseline"),
        "{text}"
    );
    let json = serde_json::to_value(&info).unwrap();
    assert_eq!(json["model_type"], "supervised");
    assert_eq!(json["params"]["model_type"], "supervised");
    // PtychoNN layout at nfs 1: 286 432 encoder + 2 × 433 889 decoder parameters.
    assert_eq!(info.models[0].parameters, 286_432 + 2 * 433_889);
}
