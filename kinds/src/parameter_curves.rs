//! The `parameter_curves` kind: the error surface seen one parameter at a time, the loss as a
//! single weight or bias moves while every other stays at its trained value.
//!
//! ```yaml
//! curves:
//!   kind: parameter_curves
//!   inputs: {model: fit, data: sinc}
//!   params: {parameters: 12, span: 1.0, points: 41}
//! ```
//!
//! Parameter i, of trained value θᵢ, is moved to θᵢ + t·sᵢ for `points` offsets t evenly
//! spaced from −`span` to `span` (0 included: `points` is odd), with the scale sᵢ = |θᵢ|, so
//! that t = −1 sets the parameter to zero and t = 1 doubles it; a parameter within 10⁻³ of
//! zero moves by t·10⁻³ instead. `parameters` picks which: `null` for every parameter of the
//! model (a curve each), or N for N of them drawn at random without repetition from the
//! stage's seed (in increasing index order), for models too big to sweep whole. The loss is
//! the mean over the first `train_limit` training examples (all by default), in evaluation
//! mode, without gradients.
//!
//! Output: `parameter_curves.parquet`, one row per parameter and offset: `parameter` (the
//! index in the flat parameter vector), `name` (the tensor and element,
//! `layers.1.weight[3,17]`), `offset` (t), `value` (θᵢ + t·sᵢ), `loss`, `accuracy` (empty for
//! regression).
//!
//! This is the declaration; the evaluation runs in the `pipeline-stages` crate.

use pipeline_engine::stage::{InputSlot, ParamIssue, TypedStage};
use serde::{Deserialize, Serialize};

/// The `parameter_curves` stage kind.
pub struct ParameterCurves;

/// The most evaluations (parameters × points) one stage makes.
const MAX_EVALUATIONS: usize = 10_000_000;

/// Parameters of `parameter_curves`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParameterCurvesParams {
    /// How many parameters, drawn at random; `null`: every parameter.
    #[serde(default)]
    pub parameters: Option<usize>,
    /// Offsets reach from −span to span times the parameter's magnitude.
    #[serde(default = "one")]
    pub span: f64,
    /// Offsets per parameter (odd, so that 0 is one of them).
    #[serde(default = "default_points")]
    pub points: usize,
    /// Use only the first this many training examples; `null` means all.
    #[serde(default)]
    pub train_limit: Option<usize>,
    /// Examples per evaluation batch (affects speed and memory only).
    #[serde(default = "default_eval_batch_size")]
    pub eval_batch_size: usize,
}

fn one() -> f64 {
    1.0
}

fn default_points() -> usize {
    41
}

fn default_eval_batch_size() -> usize {
    1000
}

impl ParameterCurvesParams {
    /// The offsets t, ascending from −span to span, with 0 exactly in the middle.
    pub fn offsets(&self) -> Vec<f64> {
        crate::grid::symmetric(self.span, self.points)
    }
}

impl TypedStage for ParameterCurves {
    type Params = ParameterCurvesParams;
    const NAME: &'static str = "parameter_curves";
    const VERSION: u32 = 1;
    const SUMMARY: &'static str =
        "the loss as each single parameter of a trained model moves, the others fixed";
    const EXAMPLE: &'static str = "curves:
  kind: parameter_curves
  inputs: {model: fit, data: sinc}
  params: {parameters: 12, span: 1.0, points: 41}
";

    fn inputs(&self) -> &'static [InputSlot] {
        const SLOTS: &[InputSlot] = &[
            InputSlot::one("model", "a trained model (train)"),
            InputSlot::one("data", "a data set (functions, images)"),
        ];
        SLOTS
    }

    fn check(&self, p: &ParameterCurvesParams) -> Result<(), ParamIssue> {
        if !(p.span.is_finite() && p.span > 0.0) {
            return Err(ParamIssue::at("span", "must be a finite number above 0"));
        }
        if p.points < 3 || p.points.is_multiple_of(2) {
            return Err(ParamIssue::at("points", "must be odd and at least 3"));
        }
        if p.parameters == Some(0) {
            return Err(ParamIssue::at(
                "parameters",
                "must be at least 1 (or null for all)",
            ));
        }
        if p.parameters.unwrap_or(1).saturating_mul(p.points) > MAX_EVALUATIONS {
            return Err(ParamIssue::at(
                "parameters",
                format!("parameters x points must stay under {MAX_EVALUATIONS}"),
            ));
        }
        for (key, value) in [
            ("train_limit", p.train_limit),
            ("eval_batch_size", Some(p.eval_batch_size)),
        ] {
            if value == Some(0) {
                return Err(ParamIssue::at(key, "must be at least 1"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_symmetric_with_an_exact_zero() {
        let p = ParameterCurvesParams {
            parameters: None,
            span: 1.0,
            points: 5,
            train_limit: None,
            eval_batch_size: 1,
        };
        assert_eq!(p.offsets(), [-1.0, -0.5, 0.0, 0.5, 1.0]);
    }
}
