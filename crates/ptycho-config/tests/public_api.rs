//! The config crate through its public API only: file → validate → Params → legacy view → config.

use ptycho_config::{
    FileFormat, InferenceConfig, LegacyMap, Params, TrainingConfig, file::parse_training_config,
};

#[test]
fn default_legacy_view_snapshot() {
    let view = Params::from_training(&TrainingConfig::default().validate().unwrap()).to_legacy();
    insta::assert_json_snapshot!("default_legacy_view", view);
}

#[test]
fn file_to_params_to_config_round_trip() {
    let text = r#"
        nepochs = 12
        n_groups = 256
        n_subsample = 1000
        output_dir = "runs/x"
        sequential_sampling = true
        [model]
        N = 128
        gridsize = 2
        probe_mask = true
    "#;
    let cfg = parse_training_config(text, FileFormat::Toml, "inline.toml").unwrap();
    let valid = cfg.clone().validate().unwrap();
    let params = Params::from_training(&valid);
    assert_eq!(
        (params.n(), params.gridsize(), params.channels()),
        (128, 2, 4)
    );
    assert_eq!((params.big_n(), params.padded_size()), (132, 142));
    let view: LegacyMap = params.to_legacy();
    assert_eq!(view["probe.mask"], serde_json::json!(true));
    assert_eq!(view["output_prefix"], serde_json::json!("runs/x"));
    assert_eq!(TrainingConfig::from_legacy(&view).unwrap(), cfg);
    // An archive restore gives the same params back.
    assert_eq!(Params::from_legacy(&view).unwrap(), params);
}

#[test]
fn inference_params_from_an_archive_snapshot() {
    let train = TrainingConfig {
        model: ptycho_config::ModelConfig {
            gridsize: 2,
            ..Default::default()
        },
        nphotons: 1e6,
        ..Default::default()
    };
    let snapshot = Params::from_training(&train.validate().unwrap())
        .with_intensity_scale(31.25)
        .to_legacy();
    let restored = Params::from_legacy(&snapshot).unwrap();
    assert_eq!(restored.gridsize(), 2);
    assert_eq!(restored.nphotons(), 1e6);
    assert_eq!(restored.intensity_scale(), 31.25);
    // An inference config can be read from the same snapshot (its own keys only).
    let inf = InferenceConfig::from_legacy(&snapshot).unwrap();
    assert_eq!(inf.model.gridsize, 2);
    assert_eq!(inf.output_dir, std::path::PathBuf::from("training_outputs"));
}
