//! Parameter counts equal the TF reference (spec §4.4); no forward pass.

mod common;

use burn::module::Module;
use burn::tensor::Device;
use ptycho_config::ModelConfig;
use ptycho_model::PtychoPinn;

fn count(model: ModelConfig) -> usize {
    PtychoPinn::new(&common::params(model), &Device::flex())
        .unwrap()
        .num_params()
}

#[test]
fn n64_gs1_matches_reference() {
    assert_eq!(count(ModelConfig::default()), 2_331_772);
}

#[test]
fn n64_gs2_object_big_matches_reference() {
    let m = ModelConfig {
        gridsize: 2,
        ..Default::default()
    };
    assert_eq!(count(m), 2_340_208);
}

#[test]
fn n128_gs1_matches_reference() {
    let m = ModelConfig {
        n: 128,
        ..Default::default()
    };
    assert_eq!(count(m), 4_661_212);
}

#[test]
fn n128_gs2_and_n256_match_reference() {
    let m = ModelConfig {
        n: 128,
        gridsize: 2,
        ..Default::default()
    };
    assert_eq!(count(m), 4_667_056);
    let m = ModelConfig {
        n: 256,
        ..Default::default()
    };
    assert_eq!(count(m), 12_912_268);
}
