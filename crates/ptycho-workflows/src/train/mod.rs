//! The training workflow (spec §6.1, §3, §11.2): data → groups → normalisation → params (probe,
//! intensity scale) → PtychoPINN → Adam with the Keras callbacks → `wts.h5.zip`. With
//! `model_type = "supervised"` the supervised baseline is trained instead ([`supervised`]).
//!
//! Output directory `DIR` (= `cfg.output_dir`):
//! - `config.toml`: the resolved training config, written before the first epoch (what
//!   `ptycho train --resume DIR` reads back);
//! - `checkpoint.zip`: after every epoch, atomically ([`checkpoint`]);
//! - `history.csv`, `loss_curve.png`: per-epoch history ([`history`]);
//! - `wts.h5.zip`: the final archive (ptycho-persist), at the end.
//!
//! Resuming (`opts.resume`) continues from the last complete epoch of `checkpoint.zip`: weights,
//! Adam state, learning rate, plateau / early-stop counters and history are restored, and the
//! per-epoch shuffle is seeded with `seed + epoch`, so the resumed epochs see the same batches
//! as an uninterrupted run.

pub mod batch;
pub mod checkpoint;
pub mod history;
pub mod schedule;
pub mod supervised;

use std::io::IsTerminal;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::Module;
use burn::tensor::Device;
use indicatif::{ProgressBar, ProgressStyle};
use ndarray::Array2;
use num_complex::{Complex32, Complex64};
use ptycho_config::{ModelType, Params, ProbeField, TrainingConfig, Valid};
use ptycho_model::{
    DeviceKind, LossValues, LossWeights, ModelError, PixelMask, PtychoPinn, TrainStep, physics,
    train::adam,
};
use ptycho_persist::{
    ARCHIVE_NAME, SaveOptions, remove_stale_temporaries, save_model, write_bytes_atomic,
};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

pub use crate::model_inputs::{ModelInputs, OffsetSource, RealspaceTruth};
pub use batch::split_sizes;
pub use checkpoint::{CHECKPOINT_NAME, CheckpointState};
pub use history::EpochRecord;
pub use schedule::{EarlyStop, Plateau};

use crate::data::RawData;
use crate::error::WorkflowError;
use crate::grouping::group;

/// File name of the resolved config inside the output directory.
pub const CONFIG_NAME: &str = "config.toml";

/// How to run [`train`] (everything else comes from the config).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrainOptions {
    /// Backend/device of the model (trained on its autodiff variant).
    pub device: DeviceKind,
    /// No progress bar (it is also hidden when stderr is not a terminal).
    pub quiet: bool,
    /// Replace an existing `wts.h5.zip` / `checkpoint.zip` in the output directory.
    pub overwrite: bool,
    /// Continue from `DIR/checkpoint.zip` (a fresh start when there is none).
    pub resume: bool,
}

impl Default for TrainOptions {
    fn default() -> Self {
        Self {
            device: DeviceKind::Flex,
            quiet: false,
            overwrite: false,
            resume: false,
        }
    }
}

/// What a training run produced.
#[derive(Debug, Clone)]
pub struct TrainReport {
    pub output_dir: PathBuf,
    /// `DIR/wts.h5.zip`.
    pub archive_path: PathBuf,
    /// `DIR/checkpoint.zip`.
    pub checkpoint_path: PathBuf,
    /// Every epoch of the run, resumed epochs included.
    pub history: Vec<EpochRecord>,
    /// Training loss of the last epoch (NaN if no epoch ran).
    pub final_loss: f64,
    /// Validation loss of the last epoch.
    pub final_val_loss: Option<f64>,
    /// Complete epochs found in the checkpoint when resuming.
    pub resumed_from_epoch: Option<usize>,
    /// Epochs run by this call.
    pub epochs_run: usize,
    /// Early stopping ended the run.
    pub stopped_early: bool,
    /// Seconds spent in this call's epochs (training + validation).
    pub train_seconds: f64,
    /// Seconds of the whole call (data preparation, epochs, saving).
    pub total_seconds: f64,
    /// Groups formed; training and validation groups.
    pub n_groups: usize,
    pub n_train: usize,
    pub n_val: usize,
    /// The params the model was built from (probe and intensity scale attached).
    pub params: Params,
}

/// Train PtychoPINN (or the supervised baseline when `cfg.model.model_type` is `supervised`, see
/// [`supervised`]) on `train_data` with `cfg` (see the module docs for the outputs).
///
/// Order (CONFIG-001): params from the config → subsample / group / normalise (`n_subsample`,
/// else the reference rule: `n_groups` scan points) → intensity scale `s = √nphotons/(N/2)` and
/// the probe normalised from `probeGuess` attached to the params → model built from them.
///
/// Seeding: grouping uses `cfg.seed`, the subsampling `cfg.subsample_seed` (else `cfg.seed`), the
/// weight initialisation seeds the backend RNG with `cfg.seed` ([`PtychoPinn::new_seeded`]:
/// seeding and drawing hold one lock, so concurrent trainings in one process do not disturb each
/// other), epoch `e` (from 0) shuffles with `cfg.seed + e`.
pub fn train(
    cfg: &Valid<TrainingConfig>,
    train_data: &RawData,
    opts: &TrainOptions,
) -> Result<TrainReport, WorkflowError> {
    run(cfg, train_data, opts, &mut |_| ControlFlow::Continue(()))
}

/// [`train`], calling `on_epoch` after every epoch once its checkpoint is written (the record
/// is the epoch's history line). `ControlFlow::Break` stops the run there with
/// [`WorkflowError::Interrupted`]: no archive is written, and `checkpoint.zip` holds the epochs
/// done, so `resume` continues from them. For callers that report progress or can be
/// cancelled (the Python bindings).
pub fn train_observed(
    cfg: &Valid<TrainingConfig>,
    train_data: &RawData,
    opts: &TrainOptions,
    on_epoch: &mut dyn FnMut(&EpochRecord) -> ControlFlow<()>,
) -> Result<TrainReport, WorkflowError> {
    run(cfg, train_data, opts, on_epoch)
}

fn io_err(path: &Path, action: &'static str) -> impl FnOnce(std::io::Error) -> WorkflowError {
    let path = path.to_path_buf();
    move |source| WorkflowError::Io {
        path,
        action,
        source,
    }
}

/// The params a training run on `raw` uses (CONFIG-001: built before anything reads them): the
/// config's flat view plus the training data's probe, normalised to `probe_scale` (spec §4.7),
/// and the intensity scale `sqrt(nphotons)/(N/2)`. Errors when `raw` does not fit the config's N.
pub fn training_params(
    cfg: &Valid<TrainingConfig>,
    raw: &RawData,
) -> Result<Params, WorkflowError> {
    let params = Params::from_training(cfg);
    let n = params.n();
    if raw.n() != n {
        return Err(WorkflowError::TrainingData {
            reason: format!(
                "diffraction patterns are {}×{} pixels but the config says N = {n}",
                raw.n(),
                raw.n()
            ),
        });
    }
    if raw.probe_guess.dim() != (n, n) {
        return Err(WorkflowError::TrainingData {
            reason: format!(
                "probeGuess is {:?}, expected ({n}, {n})",
                raw.probe_guess.dim()
            ),
        });
    }
    let probe: Array2<Complex64> = raw
        .probe_guess
        .mapv(|z| Complex64::new(z.re as f64, z.im as f64));
    let normalised = physics::normalize_probe(probe.view(), cfg.model.probe_scale);
    if normalised
        .iter()
        .any(|z| !z.re.is_finite() || !z.im.is_finite())
    {
        return Err(WorkflowError::TrainingData {
            reason: "probeGuess normalises to non-finite values (is it zero inside the N/4 disk?)"
                .into(),
        });
    }
    let data: Vec<Complex32> = normalised
        .iter()
        .map(|z| Complex32::new(z.re as f32, z.im as f32))
        .collect();
    let s = params.intensity_scale();
    Ok(params
        .with_probe(ProbeField { n, data })
        .with_intensity_scale(s))
}

/// Sample-weighted running means of the loss terms.
#[derive(Default)]
struct Means {
    total: f64,
    nll: f64,
    mae: f64,
    realspace: f64,
    count: usize,
}

impl Means {
    fn add(&mut self, v: LossValues, b: usize) {
        self.total += v.total * b as f64;
        self.nll += v.nll * b as f64;
        self.mae += v.mae * b as f64;
        self.realspace += v.realspace * b as f64;
        self.count += b;
    }
    fn get(&self) -> [f64; 4] {
        let c = self.count.max(1) as f64;
        [
            self.total / c,
            self.nll / c,
            self.mae / c,
            self.realspace / c,
        ]
    }
}

fn progress_bar(len: usize, hidden: bool, epoch: usize, nepochs: usize) -> ProgressBar {
    if hidden {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(len as u64);
    if let Ok(style) = ProgressStyle::with_template(
        "{prefix} [{bar:30}] {pos}/{len} groups {msg} ({elapsed_precise})",
    ) {
        pb.set_style(style.progress_chars("=> "));
    }
    pb.set_prefix(format!("epoch {epoch}/{nepochs}"));
    pb
}

fn run(
    cfg: &Valid<TrainingConfig>,
    raw: &RawData,
    opts: &TrainOptions,
    on_epoch: &mut dyn FnMut(&EpochRecord) -> ControlFlow<()>,
) -> Result<TrainReport, WorkflowError> {
    if cfg.model.model_type == ModelType::Supervised {
        return supervised::run(cfg, raw, opts, on_epoch);
    }
    let t_start = Instant::now();
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
    let weights = LossWeights::from_training(cfg);
    if weights.needs_ground_truth() && raw.y.is_none() && raw.object_guess.is_none() {
        return Err(WorkflowError::TrainingData {
            reason: format!(
                "realspace_mae_weight = {} compares the object with the ground truth, but the \
                 training data have neither `Y` nor `objectGuess`",
                cfg.realspace_mae_weight
            ),
        });
    }

    // CONFIG-001: params first; everything below takes them as an argument.
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
    let s = params.intensity_scale();
    let inputs = ModelInputs::from_grouped(&grouped, s, OffsetSource::Start);
    let truth = if weights.needs_ground_truth() {
        RealspaceTruth::from_grouped(&grouped, OffsetSource::Start)
    } else {
        None
    };
    let bad_pixels = raw
        .bad_pixels
        .as_ref()
        .map(|bp| PixelMask::from_bad(bp.nrows(), &bp.iter().copied().collect::<Vec<_>>()))
        .transpose()?;
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
    tracing::info!(
        n_groups,
        n_train,
        n_val,
        intensity_scale = s,
        "training data grouped"
    );

    let device: Device = opts.device.to_device()?.autodiff();
    let mut model = PtychoPinn::new_seeded(&params, &device, cfg.seed)?;
    let mut step = TrainStep::new(weights).with_bad_pixels(bad_pixels.clone());

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
                "the model configuration differs from the checkpoint's".into(),
            ));
        }
        if ck.params.intensity_scale().to_bits() != s.to_bits() {
            return Err(resume_err(format!(
                "intensity scale {s} differs from the checkpoint's {}",
                ck.params.intensity_scale()
            )));
        }
        if ck.params.probe() != params.probe() {
            return Err(resume_err(
                "the normalised probe differs from the checkpoint's".into(),
            ));
        }
        let (m, o) = ck.restore(model, adam())?;
        model = m;
        step = TrainStep::with_optimizer(weights, o).with_bad_pixels(bad_pixels);
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

    // Created only now, so that bad data or options leave no empty directory behind.
    std::fs::create_dir_all(&dir).map_err(io_err(&dir, "creating the output directory"))?;
    // The resolved config, what `--resume DIR` reads back.
    let config_path = dir.join(CONFIG_NAME);
    let toml_text = toml::to_string(&**cfg).map_err(|source| WorkflowError::SerialiseConfig {
        path: config_path.clone(),
        source,
    })?;
    write_bytes_atomic(&config_path, toml_text.as_bytes())
        .map_err(io_err(&config_path, "writing the config"))?;

    let hidden = opts.quiet || !std::io::stderr().is_terminal();
    let inner = device.clone().inner();
    let val_idx: Vec<usize> = (n_train..n_groups).collect();
    let bs = cfg.batch_size.max(1);
    let mut epochs_run = 0;
    let mut train_seconds = 0.0;
    while state.epochs_done < cfg.nepochs && !state.stopped_early {
        let epoch = state.epochs_done;
        let t0 = Instant::now();
        let mut order: Vec<usize> = (0..n_train).collect();
        order.shuffle(&mut StdRng::seed_from_u64(
            cfg.seed.wrapping_add(epoch as u64),
        ));
        let pb = progress_bar(n_train, hidden, epoch + 1, cfg.nepochs);
        let mut means = Means::default();
        for (bi, chunk) in order.chunks(bs).enumerate() {
            let (x, pos) = inputs.batch(chunk, &device);
            let t = truth.as_ref().map(|t| t.batch(chunk, &device));
            let v = match step.step_with_truth(model, x.clone(), pos, x, t, state.lr) {
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
            means.add(v, chunk.len());
            pb.inc(chunk.len() as u64);
            let rate = means.count as f64 / t0.elapsed().as_secs_f64().max(1e-9);
            pb.set_message(format!("loss {:.5} | {rate:.1} groups/s", means.get()[0]));
        }
        let train_time = t0.elapsed().as_secs_f64();
        let val_loss = if val_idx.is_empty() {
            None
        } else {
            let vm = model.valid();
            let mut vmeans = Means::default();
            for chunk in val_idx.chunks(bs) {
                let (x, pos) = inputs.batch(chunk, &inner);
                let t = truth.as_ref().map(|t| t.batch(chunk, &inner));
                vmeans.add(
                    step.evaluate_with_truth(&vm, x.clone(), pos, x, t)?,
                    chunk.len(),
                );
            }
            Some(vmeans.get()[0])
        };
        let seconds = t0.elapsed().as_secs_f64();
        pb.finish_and_clear();
        let [l, nll, mae, realspace] = means.get();
        let record = EpochRecord {
            epoch: epoch + 1,
            loss: l,
            nll,
            mae,
            realspace,
            val_loss,
            lr: state.lr,
            seconds,
            samples_per_s: n_train as f64 / train_time.max(1e-9),
        };
        tracing::info!(
            epoch = record.epoch,
            loss = record.loss,
            val_loss = ?record.val_loss,
            lr = record.lr,
            seconds = record.seconds,
            samples_per_s = record.samples_per_s,
            "epoch done"
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
        if state.stopped_early {
            tracing::info!(
                epoch = epoch + 1,
                "early stopping: training loss stopped improving"
            );
        }
        state.history.push(record);
        state.epochs_done += 1;
        checkpoint::save(&ck_path, &state, &params, &model, step.optimizer())?;
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
    if !state.history.is_empty() {
        history::write(&dir, &state.history).map_err(io_err(&dir, "writing the history"))?;
    }

    save_model(
        &archive_path,
        &model.valid(),
        &params,
        &SaveOptions {
            overwrite: opts.overwrite || opts.resume,
            history: history::to_loss_records(&state.history),
        },
    )?;
    tracing::info!(path = %archive_path.display(), "model archive written");

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
