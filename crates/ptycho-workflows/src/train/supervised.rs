//! The supervised baseline (spec §5.4, `model_type = "supervised"`): training and patch
//! prediction. Same outputs, callbacks, validation split, checkpoints and history as the PINN run
//! ([`super`]); what differs:
//!
//! - samples: every diffraction pattern is one single-channel sample (gridsize > 1 groups are
//!   flattened to `G·C` samples); inputs are the normalised amplitudes `X` **without** the
//!   intensity scale s;
//! - targets: `|Y|` and `angle(Y)` of the ground-truth patches (the file's `Y`, else cut from
//!   `objectGuess` at each pattern's own scan position, [`crate::patches`]); a training file
//!   without either is refused before anything is written;
//! - loss: `mean|A − |Y|| + mean|φ − angle(Y)|` ([`SupervisedStep`]); the history records it as
//!   `loss` and `mae`, with `nll` = 0;
//! - validation: the last groups as for the PINN (Keras' split, before shuffling), flattened, so
//!   that the patterns of one group are never split between training and validation.
//!
//! At inference ([`predict_samples`]) each pattern gives one patch `A·e^{iφ}`, placed at its own
//! scan position (for gridsize 1 the group centre, as the reference).

use std::ops::ControlFlow;
use std::time::Instant;

use burn::module::Module;
use burn::tensor::{DType, Device, Tensor, TensorData};
use ndarray::Array3;
use num_complex::Complex32;
use ptycho_config::{TrainingConfig, Valid};
use ptycho_model::{ModelError, SupervisedNet, SupervisedStep, train::adam};
use ptycho_persist::{
    ARCHIVE_NAME, SaveOptions, remove_stale_temporaries, save_checkpoint, save_supervised_model,
    write_bytes_atomic,
};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use super::{
    CONFIG_NAME, CheckpointState, EarlyStop, EpochRecord, Plateau, TrainOptions, TrainReport,
    checkpoint, history, io_err, progress_bar, split_sizes, training_params,
};
use crate::data::RawData;
use crate::error::{Result, WorkflowError};
use crate::grouping::{GroupedData, group};

/// Single-channel samples `(S, N, N)` row-major, host-side: inputs `X` and, for training, the
/// targets `|Y|` and `angle(Y)`.
#[derive(Debug, Clone)]
pub struct Samples {
    pub n: usize,
    /// Samples S = G·C, in group-major order (sample `g·C + c` is member c of group g).
    pub len: usize,
    pub x: Vec<f32>,
    pub amp: Vec<f32>,
    pub phase: Vec<f32>,
}

impl Samples {
    /// Flatten the grouped data; with `targets`, `grouped.y` must be present.
    pub fn from_grouped(grouped: &GroupedData, targets: bool) -> Result<Self> {
        let (g, n, _, c) = grouped.x_full.dim();
        let len = g * c;
        let mut x = Vec::with_capacity(len * n * n);
        for gi in 0..g {
            for ci in 0..c {
                for h in 0..n {
                    for w in 0..n {
                        x.push(grouped.x_full[[gi, h, w, ci]]);
                    }
                }
            }
        }
        let (mut amp, mut phase) = (Vec::new(), Vec::new());
        if targets {
            let y = grouped.y.as_ref().ok_or_else(no_ground_truth)?;
            amp.reserve(len * n * n);
            phase.reserve(len * n * n);
            for gi in 0..g {
                for ci in 0..c {
                    for h in 0..n {
                        for w in 0..n {
                            let z = y[[gi, h, w, ci]];
                            amp.push(z.norm());
                            phase.push(z.arg());
                        }
                    }
                }
            }
        }
        Ok(Self {
            n,
            len,
            x,
            amp,
            phase,
        })
    }

    fn gather(&self, v: &[f32], idx: &[usize], device: &Device) -> Tensor<4> {
        let per = self.n * self.n;
        let mut out = Vec::with_capacity(idx.len() * per);
        for &i in idx {
            out.extend_from_slice(&v[i * per..(i + 1) * per]);
        }
        Tensor::from_data(
            TensorData::new(out, [idx.len(), 1, self.n, self.n]),
            (device, DType::F32),
        )
    }

    /// Inputs of samples `idx`, `(B, 1, N, N)`.
    pub fn inputs(&self, idx: &[usize], device: &Device) -> Tensor<4> {
        self.gather(&self.x, idx, device)
    }

    /// Targets `|Y|`, `angle(Y)` of samples `idx`, each `(B, 1, N, N)`.
    pub fn targets(&self, idx: &[usize], device: &Device) -> (Tensor<4>, Tensor<4>) {
        (
            self.gather(&self.amp, idx, device),
            self.gather(&self.phase, idx, device),
        )
    }
}

fn no_ground_truth() -> WorkflowError {
    WorkflowError::TrainingData {
        reason: "supervised training needs ground-truth object patches, and the file has \
                 neither `Y` nor `objectGuess`"
            .into(),
    }
}

/// Sample-weighted mean.
#[derive(Default)]
struct Mean {
    sum: f64,
    count: usize,
}

impl Mean {
    fn add(&mut self, v: f64, b: usize) {
        self.sum += v * b as f64;
        self.count += b;
    }
    fn get(&self) -> f64 {
        self.sum / self.count.max(1) as f64
    }
}

/// Sample indices of groups `groups` (each group's C members).
fn members(groups: std::ops::Range<usize>, c: usize) -> Vec<usize> {
    groups.flat_map(|g| g * c..(g + 1) * c).collect()
}

/// Train the supervised baseline (the `model_type = "supervised"` branch of [`super::train`]).
pub(super) fn run(
    cfg: &Valid<TrainingConfig>,
    raw: &RawData,
    opts: &TrainOptions,
    on_epoch: &mut dyn FnMut(&EpochRecord) -> ControlFlow<()>,
) -> Result<TrainReport> {
    let t_start = Instant::now();
    if raw.y.is_none() && raw.object_guess.is_none() {
        return Err(no_ground_truth());
    }
    let dir = cfg.output_dir.clone();
    let archive_path = dir.join(ARCHIVE_NAME);
    let ck_path = checkpoint::path_in(&dir);
    if !opts.resume && !opts.overwrite {
        for p in [&archive_path, &ck_path] {
            if std::fs::symlink_metadata(p).is_ok() {
                return Err(WorkflowError::AlreadyExists { path: p.clone() });
            }
        }
    }

    // CONFIG-001: params first (the probe and s are kept in the archive, though this network
    // uses neither).
    let params = training_params(cfg, raw)?;
    let images = cfg.n_subsample.unwrap_or(cfg.n_groups);
    let sub;
    let raw = if images < raw.n_points() {
        sub = raw.subsample(images, cfg.subsample_seed.unwrap_or(cfg.seed))?;
        &sub
    } else {
        raw
    };
    let grouped = group(raw, &params, &cfg.grouping())?;
    let samples = Samples::from_grouped(&grouped, true)?;
    let c = grouped.channels();
    let fingerprint =
        checkpoint::fingerprint(grouped.nn_indices.iter().copied(), grouped.norm_factor);
    let n_groups = grouped.n_groups();
    drop(grouped);
    let (n_train, n_val) = split_sizes(n_groups, cfg.validation_fraction);
    if n_train == 0 {
        return Err(WorkflowError::TrainingData {
            reason: format!(
                "{n_groups} groups leave none for training at validation_fraction {}",
                cfg.validation_fraction
            ),
        });
    }
    let train_samples = n_train * c;
    tracing::info!(
        n_groups,
        n_train,
        n_val,
        samples = samples.len,
        "supervised training data grouped"
    );

    let device: Device = opts.device.to_device()?.autodiff();
    let mut model = SupervisedNet::new_seeded(&params, &device, cfg.seed)?;
    let mut step = SupervisedStep::new();
    let mut state = CheckpointState {
        epochs_done: 0,
        lr: cfg.learning_rate,
        plateau: Plateau::default(),
        early_stop: EarlyStop::default(),
        stopped_early: false,
        history: Vec::new(),
        n_groups,
        n_train,
        n_val,
        data_fingerprint: fingerprint,
        seed: cfg.seed,
    };
    let mut resumed_from_epoch = None;
    if opts.resume {
        remove_stale_temporaries(&dir);
    }
    if opts.resume && ck_path.exists() {
        let ck = checkpoint::load(&ck_path)?;
        let resume_err = |reason: String| WorkflowError::Resume {
            path: ck_path.clone(),
            reason,
        };
        let st = &ck.state;
        if st.data_fingerprint != fingerprint || st.n_groups != n_groups || st.n_train != n_train {
            return Err(resume_err(format!(
                "the training data or grouping differs from the checkpointed run \
                 ({} groups / {} train then, {n_groups} / {n_train} now)",
                st.n_groups, st.n_train
            )));
        }
        if st.seed != cfg.seed {
            return Err(resume_err(format!(
                "seed {} differs from the checkpoint's {}",
                cfg.seed, st.seed
            )));
        }
        if ck.params.model() != params.model() {
            return Err(resume_err(
                "the model configuration (model_type included) differs from the checkpoint's"
                    .into(),
            ));
        }
        let (m, o) = ck.restore(model, adam())?;
        model = m;
        step = SupervisedStep::with_optimizer(o);
        state = ck.state;
        resumed_from_epoch = Some(state.epochs_done);
        tracing::info!(epochs_done = state.epochs_done, lr = state.lr, "resuming");
    } else if opts.resume {
        tracing::warn!(
            path = %ck_path.display(),
            "no checkpoint to resume from: starting from epoch 1"
        );
    } else if opts.overwrite && ck_path.exists() {
        std::fs::remove_file(&ck_path).map_err(io_err(&ck_path, "removing the old checkpoint"))?;
    }

    std::fs::create_dir_all(&dir).map_err(io_err(&dir, "creating the output directory"))?;
    let config_path = dir.join(CONFIG_NAME);
    let toml_text = toml::to_string(&**cfg).map_err(|source| WorkflowError::SerialiseConfig {
        path: config_path.clone(),
        source,
    })?;
    write_bytes_atomic(&config_path, toml_text.as_bytes())
        .map_err(io_err(&config_path, "writing the config"))?;

    let hidden = opts.quiet || !std::io::IsTerminal::is_terminal(&std::io::stderr());
    let inner = device.clone().inner();
    let val_idx = members(n_train..n_groups, c);
    let bs = cfg.batch_size.max(1);
    let mut epochs_run = 0;
    let mut train_seconds = 0.0;
    while state.epochs_done < cfg.nepochs && !state.stopped_early {
        let epoch = state.epochs_done;
        let t0 = Instant::now();
        let mut order: Vec<usize> = (0..train_samples).collect();
        order.shuffle(&mut StdRng::seed_from_u64(
            cfg.seed.wrapping_add(epoch as u64),
        ));
        let pb = progress_bar(train_samples, hidden, epoch + 1, cfg.nepochs);
        let mut mean = Mean::default();
        for (bi, chunk) in order.chunks(bs).enumerate() {
            let x = samples.inputs(chunk, &device);
            let (a, p) = samples.targets(chunk, &device);
            let v = match step.step(model, x, a, p, state.lr) {
                Ok((m, v)) => {
                    model = m;
                    v
                }
                Err(ModelError::NonFiniteLoss { value }) => {
                    pb.abandon();
                    return Err(WorkflowError::Diverged {
                        epoch: epoch + 1,
                        batch: bi + 1,
                        value,
                    });
                }
                Err(e) => return Err(e.into()),
            };
            mean.add(v, chunk.len());
            pb.inc(chunk.len() as u64);
            let rate = mean.count as f64 / t0.elapsed().as_secs_f64().max(1e-9);
            pb.set_message(format!("loss {:.5} | {rate:.1} patterns/s", mean.get()));
        }
        let train_time = t0.elapsed().as_secs_f64();
        let val_loss = if val_idx.is_empty() {
            None
        } else {
            let vm = model.valid();
            let mut vmean = Mean::default();
            for chunk in val_idx.chunks(bs) {
                let x = samples.inputs(chunk, &inner);
                let (a, p) = samples.targets(chunk, &inner);
                vmean.add(step.evaluate(&vm, x, a, p)?, chunk.len());
            }
            Some(vmean.get())
        };
        let seconds = t0.elapsed().as_secs_f64();
        pb.finish_and_clear();
        let l = mean.get();
        let record = EpochRecord {
            epoch: epoch + 1,
            loss: l,
            nll: 0.0,
            mae: l,
            val_loss,
            lr: state.lr,
            seconds,
            samples_per_s: train_samples as f64 / train_time.max(1e-9),
            realspace: 0.0,
        };
        tracing::info!(
            epoch = record.epoch,
            loss = record.loss,
            val_loss = ?record.val_loss,
            lr = record.lr,
            seconds = record.seconds,
            "supervised epoch done"
        );
        if let Some(v) = val_loss {
            state.lr = state.plateau.update(
                v,
                state.lr,
                cfg.plateau_patience,
                cfg.plateau_factor,
                cfg.plateau_min_lr,
            );
        }
        state.stopped_early = state.early_stop.update(l, epoch, cfg.early_stop_patience);
        state.history.push(record);
        state.epochs_done += 1;
        save_checkpoint(&ck_path, &state, &params, &model, step.optimizer())?;
        history::write(&dir, &state.history).map_err(io_err(&dir, "writing the history"))?;
        epochs_run += 1;
        train_seconds += seconds;
        if let Some(record) = state.history.last()
            && on_epoch(record).is_break()
        {
            return Err(WorkflowError::Interrupted {
                epoch: state.epochs_done,
                checkpoint: ck_path,
            });
        }
    }

    save_supervised_model(
        &archive_path,
        &model.valid(),
        &params,
        &SaveOptions {
            overwrite: opts.overwrite || opts.resume,
            history: history::to_loss_records(&state.history),
        },
    )?;
    tracing::info!(path = %archive_path.display(), "supervised model archive written");

    let last = state.history.last();
    Ok(TrainReport {
        output_dir: dir,
        archive_path,
        checkpoint_path: ck_path,
        final_loss: last.map_or(f64::NAN, |r| r.loss),
        final_val_loss: last.and_then(|r| r.val_loss),
        history: state.history,
        resumed_from_epoch,
        epochs_run,
        stopped_early: state.stopped_early,
        train_seconds,
        total_seconds: t_start.elapsed().as_secs_f64(),
        n_groups,
        n_train,
        n_val,
        params,
    })
}

/// Predict one patch `A·e^{iφ}` `(N, N)` per input of `x` (normalised amplitudes `(S, N, N)`
/// row-major) in batches of `batch_size`.
pub fn predict_samples(
    model: &SupervisedNet,
    x: &[f32],
    n: usize,
    batch_size: usize,
    device: &Device,
) -> Result<Array3<Complex32>> {
    let s = x.len() / (n * n).max(1);
    let mut out = Array3::<Complex32>::zeros((s, n, n));
    let flat = out
        .as_slice_mut()
        .expect("a freshly allocated array is contiguous");
    let per = n * n;
    for start in (0..s).step_by(batch_size.max(1)) {
        let end = (start + batch_size.max(1)).min(s);
        let input = Tensor::from_data(
            TensorData::new(x[start * per..end * per].to_vec(), [end - start, 1, n, n]),
            (device, DType::F32),
        );
        let (a, p) = model.forward(input)?;
        let a = read(a, "supervised amplitude")?;
        let p = read(p, "supervised phase")?;
        for (k, (a, p)) in a.iter().zip(&p).enumerate() {
            flat[start * per + k] = Complex32::from_polar(*a, *p);
        }
    }
    Ok(out)
}

fn read(t: Tensor<4>, what: &'static str) -> Result<Vec<f32>> {
    t.into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .map_err(|e| {
            ModelError::Readback {
                what,
                message: format!("{e:?}"),
            }
            .into()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_flatten_groups_in_order() {
        assert_eq!(members(0..2, 1), vec![0, 1]);
        assert_eq!(members(1..3, 4), vec![4, 5, 6, 7, 8, 9, 10, 11]);
        assert!(members(3..3, 4).is_empty());
    }

    #[test]
    fn samples_flatten_members_group_major_with_abs_and_angle_targets() {
        use ptycho_config::{ModelConfig, Params, SimulationConfig};
        let mut raw = crate::simulate_lines(
            &SimulationConfig {
                n_images: 24,
                seed: 3,
                ..Default::default()
            }
            .validate()
            .unwrap(),
        )
        .unwrap();
        // The lines object is real; give it a phase ramp along x so that angle(Y) is exercised.
        let obj = raw.object_guess.take().unwrap();
        raw.object_guess = Some(ndarray::Array2::from_shape_fn(obj.dim(), |(r, c)| {
            obj[[r, c]] * Complex32::from_polar(1.0, 0.01 * c as f32 - 1.0)
        }));
        let cfg = TrainingConfig {
            model: ModelConfig {
                gridsize: 2,
                ..Default::default()
            },
            n_groups: 6,
            ..Default::default()
        }
        .validate()
        .unwrap();
        let params = Params::from_training(&cfg);
        let g = group(&raw, &params, &cfg.grouping()).unwrap();
        let smp = Samples::from_grouped(&g, true).unwrap();
        let n = 64;
        assert_eq!((smp.len, smp.n), (g.n_groups() * 4, n));
        assert_eq!(smp.x.len(), smp.len * n * n);
        let y = g.y.as_ref().unwrap();
        for (gi, ci, h, w) in [
            (0, 0, 32, 32),
            (1, 3, 10, 50),
            (5, 2, 63, 0),
            (2, 1, 30, 33),
        ] {
            let i = (gi * 4 + ci) * n * n + h * n + w;
            assert_eq!(smp.x[i], g.x_full[[gi, h, w, ci]]);
            let z = y[[gi, h, w, ci]];
            assert_eq!(smp.amp[i], z.norm());
            assert_eq!(smp.phase[i], z.arg());
        }
        assert!(smp.phase.iter().any(|p| *p < -0.2) && smp.phase.iter().any(|p| *p > 0.2));
        assert!(smp.amp.iter().any(|a| *a > 0.1));
        let mut bare = g.clone();
        bare.y = None;
        assert!(matches!(
            Samples::from_grouped(&bare, true),
            Err(WorkflowError::TrainingData { .. })
        ));
        assert!(Samples::from_grouped(&bare, false).unwrap().amp.is_empty());
    }
}
