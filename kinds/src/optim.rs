//! The optimizers a `train` stage can use and their hyper-parameters, as written in a
//! pipeline: Adam, SGD and RMSprop, with PyTorch's defaults and range checks that name the
//! offending key (`optimizer.adam.lr`).
//!
//! The formulas they stand for follow PyTorch's `torch.optim` (L2 weight decay added to the
//! gradient, Adam's bias corrections, RMSprop's `eps` outside the square root), plus Keras's
//! inverse-time learning-rate decay `lr_t = lr / (1 + decay · t)` for RMSprop, which the
//! course's CIFAR-10 example uses. The updates themselves run in the `pipeline-stages` crate.

use pipeline_engine::stage::ParamIssue;
use serde::{Deserialize, Serialize};

/// An optimizer and its hyper-parameters, as written in a pipeline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptimizerSpec {
    /// Adam (Kingma and Ba, 2015).
    Adam(AdamSpec),
    /// Stochastic gradient descent, with optional (Nesterov) momentum.
    Sgd(SgdSpec),
    /// RMSprop (Hinton), with optional momentum and Keras-style learning-rate decay.
    Rmsprop(RmspropSpec),
}

impl Default for OptimizerSpec {
    fn default() -> Self {
        Self::adam(1e-3)
    }
}

impl OptimizerSpec {
    /// Adam with learning rate `lr` and PyTorch's other defaults.
    pub fn adam(lr: f64) -> Self {
        OptimizerSpec::Adam(AdamSpec {
            lr,
            betas: default_betas(),
            eps: default_eps(),
            weight_decay: 0.0,
        })
    }
}

/// Adam's hyper-parameters (PyTorch's defaults except `lr`, which is required).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdamSpec {
    /// Learning rate.
    pub lr: f64,
    /// Decay rates of the first and second moment estimates.
    #[serde(default = "default_betas")]
    pub betas: [f64; 2],
    /// Added to the denominator for stability.
    #[serde(default = "default_eps")]
    pub eps: f64,
    /// L2 penalty added to the gradient.
    #[serde(default)]
    pub weight_decay: f64,
}

/// SGD's hyper-parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SgdSpec {
    /// Learning rate.
    pub lr: f64,
    /// Momentum factor (0 = none).
    #[serde(default)]
    pub momentum: f64,
    /// Use Nesterov momentum (needs `momentum > 0`).
    #[serde(default)]
    pub nesterov: bool,
    /// L2 penalty added to the gradient.
    #[serde(default)]
    pub weight_decay: f64,
}

/// RMSprop's hyper-parameters (PyTorch's defaults; Keras uses `rho: 0.9, eps: 1e-7`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RmspropSpec {
    /// Learning rate before decay.
    pub lr: f64,
    /// Smoothing constant of the squared-gradient average (Keras calls it `rho`).
    #[serde(default = "default_alpha", alias = "rho")]
    pub alpha: f64,
    /// Added to the denominator for stability.
    #[serde(default = "default_eps")]
    pub eps: f64,
    /// Momentum factor (0 = none).
    #[serde(default)]
    pub momentum: f64,
    /// L2 penalty added to the gradient.
    #[serde(default)]
    pub weight_decay: f64,
    /// Inverse-time learning-rate decay: `lr / (1 + decay · t)` at update `t` (from 0).
    #[serde(default)]
    pub decay: f64,
}

fn default_betas() -> [f64; 2] {
    [0.9, 0.999]
}

fn default_eps() -> f64 {
    1e-8
}

fn default_alpha() -> f64 {
    0.99
}

impl OptimizerSpec {
    /// The optimizer's name for tables (`adam`, `sgd`, `rmsprop`).
    pub fn name(&self) -> &'static str {
        match self {
            OptimizerSpec::Adam(_) => "adam",
            OptimizerSpec::Sgd(_) => "sgd",
            OptimizerSpec::Rmsprop(_) => "rmsprop",
        }
    }

    /// The base learning rate.
    pub fn lr(&self) -> f64 {
        match self {
            OptimizerSpec::Adam(a) => a.lr,
            OptimizerSpec::Sgd(s) => s.lr,
            OptimizerSpec::Rmsprop(r) => r.lr,
        }
    }

    /// Checks value ranges; `at` is the key path of the optimizer.
    pub(crate) fn check(&self, at: &str) -> Result<(), ParamIssue> {
        let at = format!("{at}.{}", self.name());
        let positive = |v: f64, key: &str| check_range(v, &at, key, v > 0.0, "above 0");
        let non_negative = |v: f64, key: &str| check_range(v, &at, key, v >= 0.0, "at least 0");
        let fraction = |v: f64, key: &str| {
            check_range(
                v,
                &at,
                key,
                (0.0..1.0).contains(&v),
                "at least 0 and below 1",
            )
        };
        match self {
            OptimizerSpec::Adam(a) => {
                positive(a.lr, "lr")?;
                fraction(a.betas[0], "betas.0")?;
                fraction(a.betas[1], "betas.1")?;
                positive(a.eps, "eps")?;
                non_negative(a.weight_decay, "weight_decay")
            }
            OptimizerSpec::Sgd(s) => {
                positive(s.lr, "lr")?;
                non_negative(s.momentum, "momentum")?;
                non_negative(s.weight_decay, "weight_decay")?;
                check_range(1.0, &at, "nesterov", !s.nesterov || s.momentum > 0.0, "")
                    .map_err(|_| ParamIssue::at(&format!("{at}.nesterov"), "needs momentum > 0"))
            }
            OptimizerSpec::Rmsprop(r) => {
                positive(r.lr, "lr")?;
                fraction(r.alpha, "alpha")?;
                positive(r.eps, "eps")?;
                non_negative(r.momentum, "momentum")?;
                non_negative(r.weight_decay, "weight_decay")?;
                non_negative(r.decay, "decay")
            }
        }
    }
}

fn check_range(v: f64, at: &str, key: &str, ok: bool, expected: &str) -> Result<(), ParamIssue> {
    if ok && v.is_finite() {
        Ok(())
    } else {
        Err(ParamIssue::at(
            &format!("{at}.{key}"),
            format!("must be {expected}, found {v}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_name_the_offending_key() {
        let adam = OptimizerSpec::Adam(AdamSpec {
            lr: 0.0,
            betas: default_betas(),
            eps: default_eps(),
            weight_decay: 0.0,
        });
        let issue = adam.check("optimizer").err().map(|i| i.path.join("."));
        assert_eq!(issue.as_deref(), Some("optimizer.adam.lr"));
        let sgd = OptimizerSpec::Sgd(SgdSpec {
            lr: 0.1,
            momentum: 0.0,
            nesterov: true,
            weight_decay: 0.0,
        });
        let issue = sgd.check("optimizer").err().map(|i| i.path.join("."));
        assert_eq!(issue.as_deref(), Some("optimizer.sgd.nesterov"));
        let rms: Result<OptimizerSpec, _> =
            serde_json::from_str(r#"{"rmsprop": {"lr": 0.1, "rho": 0.9}}"#);
        assert!(
            matches!(rms, Ok(OptimizerSpec::Rmsprop(RmspropSpec { alpha, .. })) if alpha == 0.9)
        );
    }

    #[test]
    fn default_is_adam_with_pytorch_defaults() {
        let json = serde_json::to_value(OptimizerSpec::default()).ok();
        let expected = serde_json::json!({"adam": {"lr": 0.001, "betas": [0.9, 0.999],
                                                  "eps": 1e-8, "weight_decay": 0.0}});
        assert_eq!(json, Some(expected));
    }
}
