//! The training section's checks ([`TrainSpec`]'s values that serde cannot
//! check: rates, the schedule, the warm-up's form, the optimizer's
//! settings), apart from the experiment file's parser in `spec.rs`.

use crate::spec::{Optimizer, TrainSpec};
use gradscope_data::validate::{at_least, positive_finite, Invalid};

impl TrainSpec {
    /// Checks the training section; `train_samples` is the number of
    /// training examples where it is known before loading.
    pub(crate) fn validate(&self, train_samples: Option<usize>) -> Result<(), Invalid> {
        positive_finite("train.lr", self.lr)?;
        if !(0.0..1.0).contains(&self.momentum) {
            return Invalid::refuse(
                "train.momentum",
                format!("{} must be in [0, 1)", self.momentum),
            );
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return Invalid::refuse(
                "train.weight_decay",
                format!("{} must be a finite number ≥ 0", self.weight_decay),
            );
        }
        at_least("train.batch_size", self.batch_size, 1)?;
        if let Some(n) = train_samples {
            if self.batch_size > n {
                return Invalid::refuse(
                    "train.batch_size",
                    format!(
                        "{} is larger than the {n} training examples",
                        self.batch_size
                    ),
                );
            }
        }
        match (self.steps, self.epochs) {
            (Some(_), Some(_)) => {
                return Invalid::refuse(
                    "train.epochs",
                    "give either train.steps or train.epochs, not both",
                )
            }
            (None, None) => {
                return Invalid::refuse("train.steps", "missing: give train.steps or train.epochs")
            }
            (Some(s), None) => at_least("train.steps", s, 1)?,
            (None, Some(e)) => at_least("train.epochs", e, 1)?,
        }
        self.check_schedule()?;
        self.check_optimizer()?;
        at_least("train.eval_every", self.eval_every, 1)?;
        if let Some(c) = self.checkpoint_every {
            at_least("train.checkpoint_every", c, 1)?;
        }
        if let Some(l) = self.log_every {
            at_least("train.log_every", l, 1)?;
        }
        Ok(())
    }

    /// Milestones in order, a decay factor in (0, 1], and one of the two
    /// warm-up forms.
    fn check_schedule(&self) -> Result<(), Invalid> {
        for (i, w) in self.lr_milestones.windows(2).enumerate() {
            if w[1] <= w[0] {
                return Invalid::refuse(
                    format!("train.lr_milestones[{}]", i + 1),
                    format!("{} must be above the previous milestone {}", w[1], w[0]),
                );
            }
        }
        if !(self.lr_gamma.is_finite() && self.lr_gamma > 0.0 && self.lr_gamma <= 1.0) {
            return Invalid::refuse(
                "train.lr_gamma",
                format!("{} must be in (0, 1]", self.lr_gamma),
            );
        }
        let Some(w) = &self.warmup else { return Ok(()) };
        match (w.lr, w.until_train_error, w.steps) {
            (Some(lr), Some(until), None) => {
                positive_finite("train.warmup.lr", lr)?;
                if !(until > 0.0 && until <= 1.0) {
                    return Invalid::refuse(
                        "train.warmup.until_train_error",
                        format!("{until} must be in (0, 1]"),
                    );
                }
                Ok(())
            }
            // 0 steps is no warm-up, so that a sweep can list it beside
            // one ("steps": [0, 200]).
            (None, None, Some(_)) => Ok(()),
            _ => Invalid::refuse(
                "train.warmup",
                r#"give {"steps": N} (linear) or {"lr": 0.01, "until_train_error": 0.8} (He et al.), not parts of both"#,
            ),
        }
    }

    /// Adam's settings only with Adam, SGD's momentum only with SGD, and
    /// a positive clipping norm.
    fn check_optimizer(&self) -> Result<(), Invalid> {
        let adam = self.optimizer != Optimizer::Sgd;
        for (field, value, max) in [
            ("train.beta1", self.beta1, 1.0),
            ("train.beta2", self.beta2, 1.0),
            ("train.eps", self.eps, f64::INFINITY),
        ] {
            let Some(v) = value else { continue };
            if !adam {
                return Invalid::refuse(
                    field,
                    "is Adam's: set train.optimizer to \"adam\" or \"adamw\"",
                );
            }
            let ok = match max == 1.0 {
                true => (0.0..1.0).contains(&v),
                false => v.is_finite() && v > 0.0,
            };
            if !ok {
                let range = if max == 1.0 {
                    "in [0, 1)"
                } else {
                    "a finite number above 0"
                };
                return Invalid::refuse(field, format!("{v} must be {range}"));
            }
        }
        if adam && self.momentum != 0.0 {
            return Invalid::refuse(
                "train.momentum",
                "is SGD's; Adam's moments are train.beta1 and train.beta2",
            );
        }
        if let Some(c) = self.clip_grad_norm {
            positive_finite("train.clip_grad_norm", c)?;
        }
        Ok(())
    }
}
