//! The learning-rate plateau rule and early stopping, with Keras 3 semantics (spec §6.1):
//! `ReduceLROnPlateau(monitor='val_loss', mode='min', min_delta=1e-4, cooldown=0)` and
//! `EarlyStopping(monitor='loss', min_delta=0, restore_best_weights=False)`.
//! Both are plain state machines so that their counters can be checkpointed.

use serde::{Deserialize, Serialize};

/// Keras' `min_delta` of `ReduceLROnPlateau` (an improvement must beat the best by more than this).
pub const PLATEAU_MIN_DELTA: f64 = 1e-4;

/// State of the plateau rule. `best = None` means +∞ (nothing seen yet).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct Plateau {
    pub best: Option<f64>,
    pub wait: usize,
}

impl Plateau {
    /// Feed the epoch's validation loss; returns the learning rate for the next epoch.
    /// Non-finite losses count as "no improvement" (Keras compares with `<`, NaN is never less).
    pub fn update(
        &mut self,
        val_loss: f64,
        lr: f64,
        patience: usize,
        factor: f64,
        min_lr: f64,
    ) -> f64 {
        let improved = match self.best {
            None => val_loss.is_finite() || val_loss == f64::NEG_INFINITY,
            Some(b) => val_loss < b - PLATEAU_MIN_DELTA,
        };
        if improved {
            self.best = Some(val_loss);
            self.wait = 0;
            return lr;
        }
        self.wait += 1;
        if self.wait >= patience && lr > min_lr {
            self.wait = 0;
            return (lr * factor).max(min_lr);
        }
        lr
    }
}

/// State of early stopping on the training loss (`min_delta = 0`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct EarlyStop {
    pub best: Option<f64>,
    pub wait: usize,
}

impl EarlyStop {
    /// Feed the epoch's training loss (`epoch` counted from 0); returns `true` when training must
    /// stop. `patience = 0` disables the rule.
    pub fn update(&mut self, loss: f64, epoch: usize, patience: usize) -> bool {
        self.wait += 1;
        let improved = match self.best {
            None => loss.is_finite() || loss == f64::NEG_INFINITY,
            Some(b) => loss < b,
        };
        if improved {
            self.best = Some(loss);
            self.wait = 0;
            return false;
        }
        patience > 0 && self.wait >= patience && epoch > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plateau_halves_after_patience_epochs_without_min_delta_improvement() {
        let mut p = Plateau::default();
        let mut lr = 1e-3;
        // 1.0 (best) → 0.99995 (not better by > 1e-4) → 0.9999 → halve.
        lr = p.update(1.0, lr, 2, 0.5, 1e-4);
        assert_eq!(lr, 1e-3);
        lr = p.update(0.99995, lr, 2, 0.5, 1e-4);
        assert_eq!((lr, p.wait), (1e-3, 1));
        lr = p.update(0.9999, lr, 2, 0.5, 1e-4);
        assert_eq!((lr, p.wait), (5e-4, 0));
        // Real improvement resets the counter.
        lr = p.update(0.5, lr, 2, 0.5, 1e-4);
        assert_eq!((lr, p.wait, p.best), (5e-4, 0, Some(0.5)));
        // Floors at min_lr and stays there.
        for _ in 0..20 {
            lr = p.update(0.6, lr, 2, 0.5, 1e-4);
        }
        assert_eq!(lr, 1e-4);
    }

    #[test]
    fn early_stop_on_training_loss_with_patience() {
        let mut e = EarlyStop::default();
        assert!(!e.update(3.0, 0, 3));
        assert!(!e.update(2.0, 1, 3));
        assert!(!e.update(2.0, 2, 3)); // equal is no improvement (min_delta 0): wait 1
        assert!(!e.update(2.5, 3, 3)); // wait 2
        assert!(e.update(2.1, 4, 3)); // wait 3 → stop
        let mut never = EarlyStop::default();
        assert!((0..50).all(|k| !never.update(1.0, k, 0)));
    }

    #[test]
    fn nan_never_counts_as_improvement() {
        let mut p = Plateau::default();
        assert_eq!(p.update(f64::NAN, 1e-3, 1, 0.5, 1e-4), 5e-4);
        let mut e = EarlyStop::default();
        assert!(!e.update(1.0, 0, 1));
        assert!(e.update(f64::NAN, 1, 1));
    }
}
