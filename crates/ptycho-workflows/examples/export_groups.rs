//! Export the quality suite's data and the exact model inputs of one configuration, for the
//! Keras measuring stick of issue #19 (`plans/experiments/keras-spec-model/train_keras_gs.py`).
//!
//! ```text
//! cargo run --release -p ptycho-workflows --example export_groups -- OUT_DIR SEED GRIDSIZE [N_GROUPS=1024]
//! ```
//!
//! Simulates the long mode's complex-object scans of `ptycho bench --quality --long` (seed `s`:
//! 1024 training positions with seed s, 512 test positions with seed s + 1000, N = 64, 1e9
//! photons, the default 224-px object) and writes into OUT_DIR:
//! - `train.npz`, `test.npz`: the scans (`ptycho train` / `ptycho infer` read them and, with
//!   the bench's settings, form the same groups);
//! - `groups-gsG.npz`: what the model is fed, channels-first: training `x_scaled` `(G, C, N, N)`
//!   (`s·X`), `positions` `(G, C, 2)` (`[x, y]` pixels, `coords_start_relative`), `nn_indices`;
//!   the test scan grouped as `ptycho infer` groups it (`test_x_scaled`, `test_positions`,
//!   `test_centres` `(G, 2)`, `test_nn_indices`); the normalised probe `probe` `(N, N)` complex64
//!   and the intensity scale `s`.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use ndarray::{Array1, Array2, Array3, Array4};
use ndarray_npy::NpzWriter;
use num_complex::Complex32;
use ptycho_config::{InferenceConfig, ModelConfig, SimulationConfig, TrainingConfig};
use ptycho_workflows::grouping::group;
use ptycho_workflows::model_inputs::{ModelInputs, OffsetSource};
use ptycho_workflows::simulate::quality::{QualityObject, simulate_quality};
use ptycho_workflows::train::training_params;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 {
        bail!("usage: export_groups OUT_DIR SEED GRIDSIZE [N_GROUPS=1024]");
    }
    let out = PathBuf::from(&args[0]);
    let seed: u64 = args[1].parse().context("SEED")?;
    let gridsize: usize = args[2].parse().context("GRIDSIZE")?;
    let n_groups: usize = args
        .get(3)
        .map_or(Ok(1024), |s| s.parse())
        .context("N_GROUPS")?;
    std::fs::create_dir_all(&out)?;
    let sim = |n_images: usize, seed: u64| {
        SimulationConfig {
            n_images,
            n: 64,
            object_size: None,
            nphotons: 1e9,
            seed,
            ..Default::default()
        }
        .validate()
    };
    let train_scan = simulate_quality(QualityObject::Complex, &sim(1024, seed)?)?;
    let test_scan = simulate_quality(QualityObject::Complex, &sim(512, seed + 1000)?)?;
    train_scan.write_npz(out.join("train.npz"))?;
    test_scan.write_npz(out.join("test.npz"))?;

    // Training: the bench's config (neighbour count max(default, C)).
    let cfg = TrainingConfig {
        model: ModelConfig {
            n: 64,
            gridsize,
            ..Default::default()
        },
        n_groups,
        neighbor_count: TrainingConfig::default()
            .neighbor_count
            .max(gridsize * gridsize),
        batch_size: 16,
        nepochs: 24,
        nphotons: 1e9,
        seed,
        ..Default::default()
    }
    .validate()?;
    let params = training_params(&cfg, &train_scan)?;
    let grouped = group(&train_scan, &params, &cfg.grouping())?;
    let s = params.intensity_scale();
    let inputs = ModelInputs::from_grouped(&grouped, s, OffsetSource::Start);

    // Test: as `ptycho infer` groups it (one group per scan point, seed first, K = max(7, C)).
    let icfg = InferenceConfig::default().validate()?;
    let igrouping = icfg.grouping(test_scan.n_points(), gridsize)?;
    let tgrouped = group(&test_scan, &params, &igrouping)?;
    let tinputs = ModelInputs::from_grouped(&tgrouped, s, OffsetSource::Nominal);
    let tg = tgrouped.n_groups();
    let centres = Array2::from_shape_fn((tg, 2), |(g, k)| tgrouped.coords_offsets[[g, 0, k, 0]]);

    let probe = params.probe().context("training params carry the probe")?;
    let n = probe.n;
    let probe = Array2::from_shape_vec((n, n), probe.data.clone())?;
    let c = inputs.c;
    let path = out.join(format!("groups-gs{gridsize}.npz"));
    let mut w = NpzWriter::new(std::fs::File::create(&path)?);
    w.add_array(
        "x_scaled",
        &Array4::from_shape_vec((inputs.g, c, n, n), inputs.x_scaled)?,
    )?;
    w.add_array(
        "positions",
        &Array3::from_shape_vec((inputs.g, c, 2), inputs.positions)?,
    )?;
    w.add_array("nn_indices", &grouped.nn_indices.mapv(|v| v as i64))?;
    w.add_array(
        "test_x_scaled",
        &Array4::from_shape_vec((tinputs.g, c, n, n), tinputs.x_scaled)?,
    )?;
    w.add_array(
        "test_positions",
        &Array3::from_shape_vec((tinputs.g, c, 2), tinputs.positions)?,
    )?;
    w.add_array("test_centres", &centres)?;
    w.add_array("test_nn_indices", &tgrouped.nn_indices.mapv(|v| v as i64))?;
    w.add_array("probe", &probe.mapv(|z: Complex32| z))?;
    w.add_array("s", &Array1::from_elem(1, s))?;
    w.finish()?;
    eprintln!(
        "wrote {} ({} training groups, {} test groups, C = {c}, s = {s})",
        path.display(),
        inputs.g,
        tg
    );
    Ok(())
}
