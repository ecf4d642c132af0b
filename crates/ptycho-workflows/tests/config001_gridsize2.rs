//! CONFIG-001 downstream: a gridsize-2 *config* is the only thing that decides the channel count
//! of every stage after it — grouping, the model's inputs and its predictions.

use burn::tensor::{DType, Device};
use ndarray::Axis;
use ptycho_config::{GroupingConfig, ModelConfig, Params, SimulationConfig, TrainingConfig};
use ptycho_model::PtychoPinn;
use ptycho_model::ops::tensor_from;
use ptycho_workflows::{group, simulate_lines};

#[test]
fn gridsize_2_config_yields_4_channel_shapes_downstream() {
    let cfg = TrainingConfig {
        model: ModelConfig {
            gridsize: 2,
            n_filters_scale: 1,
            ..Default::default()
        },
        ..Default::default()
    }
    .validate()
    .unwrap();
    let params = Params::from_training(&cfg);
    assert_eq!(params.channels(), 4);

    let raw = simulate_lines(
        &SimulationConfig {
            n_images: 24,
            seed: 3,
            ..Default::default()
        }
        .validate()
        .unwrap(),
    )
    .unwrap();
    let opts = GroupingConfig {
        n_groups: 6,
        seed: 1,
        ..Default::default()
    }
    .validate()
    .unwrap();
    let grouped = group(&raw, &params, &opts).unwrap();
    assert_eq!(grouped.diffraction.dim(), (6, 64, 64, 4));
    assert_eq!(grouped.coords_relative.dim(), (6, 1, 2, 4));

    // Channels-last (G, N, N, C) → the model's channels-first (B, C, N, N) and (B, C, 2).
    let b = 2;
    let x: Vec<f64> = grouped
        .x_full
        .slice(ndarray::s![0..b, .., .., ..])
        .permuted_axes([0, 3, 1, 2])
        .iter()
        .map(|&v| v as f64 * params.intensity_scale())
        .collect();
    let pos: Vec<f64> = grouped
        .coords_start_relative
        .slice(ndarray::s![0..b, .., .., ..])
        .index_axis(Axis(1), 0)
        .permuted_axes([0, 2, 1])
        .iter()
        .copied()
        .collect();
    let device = Device::flex();
    let model = PtychoPinn::new(&params, &device).unwrap();
    let out = model
        .autoencoder(
            tensor_from(x, [b, 4, 64, 64], &device, DType::F32),
            tensor_from(pos, [b, 4, 2], &device, DType::F32),
        )
        .unwrap();
    assert_eq!(out.pred_amp_scaled.dims(), [b, 4, 64, 64]);
    assert_eq!(out.obj.dims(), [b, 1, 64, 64]);
}
