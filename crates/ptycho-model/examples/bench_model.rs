//! Forward and train-step time per batch of 16 at N = 64, gridsize 1, nfs 2 (reference defaults).
//! `cargo run --release -p ptycho-model --example bench_model [-- DEVICE [REPS]]`

use std::time::Instant;

use burn::tensor::{DType, Device};
use ptycho_config::{ModelConfig, Params, TrainingConfig};
use ptycho_model::{DeviceKind, LossWeights, PtychoPinn, TrainStep, ops};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let kind: DeviceKind = args.next().unwrap_or_else(|| "flex".into()).parse()?;
    let reps: usize = args.next().map(|r| r.parse()).transpose()?.unwrap_or(5);
    let params = Params::from_training(
        &TrainingConfig {
            model: ModelConfig::default(),
            ..Default::default()
        }
        .validate()?,
    );
    let (b, n) = (16, 64);
    let s = params.intensity_scale();
    let make = |device: &Device| {
        let v: Vec<f64> = (0..b * n * n)
            .map(|k| s * (0.5 + 0.5 * (k as f64 * 0.37).sin().abs()))
            .collect();
        let x = ops::tensor_from(v, [b, 1, n, n], device, DType::F32);
        let pos = ops::tensor_from(vec![0.0; b * 2], [b, 1, 2], device, DType::F32);
        (x, pos)
    };

    let device = kind.to_device()?;
    let model = PtychoPinn::new(&params, &device)?;
    let (x, pos) = make(&device);
    ops::to_vec_f64(model.autoencoder(x.clone(), pos.clone())?.pred_amp_scaled)?;
    let t = Instant::now();
    for _ in 0..reps {
        ops::to_vec_f64(model.autoencoder(x.clone(), pos.clone())?.pred_amp_scaled)?;
    }
    let fwd = t.elapsed().as_secs_f64() / reps as f64;

    let ad = device.autodiff();
    let mut model = PtychoPinn::new(&params, &ad)?;
    let (x, pos) = make(&ad);
    let mut step = TrainStep::new(LossWeights::default());
    (model, _) = step.step(model, x.clone(), pos.clone(), x.clone(), 1e-3)?;
    let t = Instant::now();
    for _ in 0..reps {
        (model, _) = step.step(model, x.clone(), pos.clone(), x.clone(), 1e-3)?;
    }
    let train = t.elapsed().as_secs_f64() / reps as f64;
    println!(
        "device {kind}: N=64 gs=1 nfs=2 B=16: forward {:.3} s/batch, train step {:.3} s/batch ({reps} reps)",
        fwd, train
    );
    Ok(())
}
