//! Per-epoch training history: `history.csv` and the loss curve `loss_curve.png`.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::imaging::{Series, write_line_chart};
use ptycho_persist::{LossRecord, write_atomic};

/// One epoch. Losses are sample-weighted means over the epoch's batches (Keras' running mean);
/// `loss` = `nll_weight·nll + mae_weight·mae + realspace_weight·realspace`, NLL in expected-count
/// units, MAE on scaled amplitudes, `realspace` = `tv_weight·TV + realspace_mae_weight·MAE_rs`
/// (spec §5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// Epoch number, counted from 1.
    pub epoch: usize,
    /// Total training loss.
    pub loss: f64,
    /// Poisson NLL term (training).
    pub nll: f64,
    /// MAE term (training).
    pub mae: f64,
    /// Real-space loss term before its weight (training; 0 when off).
    #[serde(default)]
    pub realspace: f64,
    /// Total loss on the validation groups (`None` without validation groups).
    pub val_loss: Option<f64>,
    /// Learning rate used during the epoch.
    pub lr: f64,
    /// Wall-clock seconds of the epoch (training + validation).
    pub seconds: f64,
    /// Training groups per second.
    pub samples_per_s: f64,
}

impl EpochRecord {
    /// The record the model archive keeps (`history.json`): epoch, losses and learning rate,
    /// without the timings.
    pub fn to_loss_record(&self) -> LossRecord {
        LossRecord {
            epoch: self.epoch as u64,
            loss: self.loss,
            val_loss: self.val_loss,
            nll: self.nll,
            mae: self.mae,
            lr: self.lr,
        }
    }
}

/// The history as the model archive keeps it ([`EpochRecord::to_loss_record`] of each epoch).
pub fn to_loss_records(history: &[EpochRecord]) -> Vec<LossRecord> {
    history.iter().map(EpochRecord::to_loss_record).collect()
}

/// Header of `history.csv`.
pub const CSV_HEADER: &str = "epoch,loss,nll,mae,val_loss,lr,seconds,samples_per_s";

/// The history as CSV (header + one line per epoch; an absent `val_loss` is an empty field).
/// A run with the real-space loss on has one more column, `realspace`, at the end.
pub fn to_csv(history: &[EpochRecord]) -> String {
    let with_rs = history.iter().any(|r| r.realspace != 0.0);
    let mut out = String::from(CSV_HEADER);
    if with_rs {
        out.push_str(",realspace");
    }
    out.push('\n');
    for r in history {
        let val = r.val_loss.map(|v| v.to_string()).unwrap_or_default();
        let _ = write!(
            out,
            "{},{},{},{},{},{},{},{}",
            r.epoch, r.loss, r.nll, r.mae, val, r.lr, r.seconds, r.samples_per_s
        );
        if with_rs {
            let _ = write!(out, ",{}", r.realspace);
        }
        out.push('\n');
    }
    out
}

/// Write `history.csv` and `loss_curve.png` (train loss red, validation loss blue) into `dir`,
/// atomically.
pub fn write(dir: &Path, history: &[EpochRecord]) -> std::io::Result<()> {
    let csv = to_csv(history);
    write_atomic(&dir.join("history.csv"), |w| w.write_all(csv.as_bytes()))?;
    let loss: Vec<f64> = history.iter().map(|r| r.loss).collect();
    let val: Vec<f64> = history
        .iter()
        .map(|r| r.val_loss.unwrap_or(f64::NAN))
        .collect();
    write_line_chart(
        &dir.join("loss_curve.png"),
        &[
            Series {
                values: &loss,
                color: [214, 39, 40],
                label: "training",
            },
            Series {
                values: &val,
                color: [31, 119, 180],
                label: "validation",
            },
        ],
        "Loss per epoch",
        "loss",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_has_header_and_empty_missing_val_loss() {
        let h = vec![
            EpochRecord {
                epoch: 1,
                loss: 2.5,
                nll: 2.5,
                mae: 0.0,
                realspace: 0.0,
                val_loss: Some(2.0),
                lr: 1e-3,
                seconds: 1.5,
                samples_per_s: 20.0,
            },
            EpochRecord {
                epoch: 2,
                loss: 2.0,
                nll: 2.0,
                mae: 0.0,
                realspace: 0.0,
                val_loss: None,
                lr: 5e-4,
                seconds: 1.0,
                samples_per_s: 30.0,
            },
        ];
        let csv = to_csv(&h);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], CSV_HEADER);
        assert_eq!(lines[1], "1,2.5,2.5,0,2,0.001,1.5,20");
        assert_eq!(lines[2], "2,2,2,0,,0.0005,1,30");
        let kept = to_loss_records(&h);
        assert_eq!(
            kept[1],
            LossRecord {
                epoch: 2,
                loss: 2.0,
                val_loss: None,
                nll: 2.0,
                mae: 0.0,
                lr: 5e-4,
            }
        );
        assert_eq!(kept[0].val_loss, Some(2.0));
    }
}
