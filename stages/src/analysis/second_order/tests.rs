//! Exact second-order results on models whose loss is known in closed form: a linear model
//! (its MSE is quadratic in the parameters) and a one-unit tanh network at a saddle.

use pipeline_kinds::model::plan::{Plan, plan};
use pipeline_kinds::model::spec::ModelSpec;
use tch::{Kind, Tensor};

use super::*;
use crate::analysis::minimal_ratio::{Spectrum, sampled_ratio};
use crate::testing::{torch_lock, with_quiet_context};
use crate::train::data::Split;
use crate::train::loss::Loss;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// 41 points x in [-1, 1] shifted by 0.3, with targets sin(3x): not a line, so the least
/// squares line leaves residuals (a minimum with a non-zero loss).
fn points() -> (Vec<f64>, Vec<f64>) {
    let x: Vec<f64> = (0..41).map(|i| f64::from(i) / 20.0 - 1.0 + 0.3).collect();
    let y = x.iter().map(|v| (3.0 * v).sin()).collect();
    (x, y)
}

fn split(x: &[f64], y: &[f64]) -> Split {
    let column = |v: &[f64]| Tensor::from_slice(v).view([-1, 1]);
    Split {
        x: column(x),
        y: column(y),
        len: x.len() as i64,
    }
}

fn mlp(hidden: &str) -> Result<Plan, Box<dyn std::error::Error>> {
    let spec: ModelSpec = serde_json::from_str(hidden)?;
    Ok(plan(&spec, &[1], 1)?)
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

fn loss<'a>(plan: &'a Plan, examples: &'a Split) -> FlatLoss<'a> {
    FlatLoss::new(plan, &[], Loss::Mse, examples, examples.len)
}

#[test]
fn the_hessian_of_a_linear_model_has_the_analytic_eigenvalues() -> TestResult {
    let _lock = torch_lock();
    let (x, y) = points();
    let examples = split(&x, &y);
    let plan = mlp(r#"{"mlp": {"hidden": []}}"#)?;
    let f = loss(&plan, &examples);
    let theta = Tensor::from_slice(&[0.7f64, -0.2]);
    let h = with_quiet_context(|ctx| {
        let mut ticker = Ticker::new(ctx, 2, "row");
        f.hessian(&theta, &mut ticker)
    })?;
    let values = eigenvalues(&symmetrized(&h)?)?;
    // L = mean((w x + b - y)^2): H = 2 [[E x², E x], [E x, 1]], whatever w, b and y are.
    let (ex, exx) = (mean(&x), mean(&x.iter().map(|v| v * v).collect::<Vec<_>>()));
    let (trace, det) = (2.0 * (exx + 1.0), 4.0 * (exx - ex * ex));
    let root = (trace * trace - 4.0 * det).sqrt();
    let analytic = [(trace - root) / 2.0, (trace + root) / 2.0];
    eprintln!("eigenvalues {values:?}, analytic {analytic:?}");
    for (got, want) in values.iter().zip(analytic) {
        assert!((got - want).abs() < 1e-12 * want, "{got} vs {want}");
    }
    Ok(())
}

#[test]
fn a_minimum_has_minimal_ratio_one_and_a_saddle_a_ratio_strictly_between() -> TestResult {
    let _lock = torch_lock();
    tch::manual_seed(11);
    let (x, y) = points();
    let examples = split(&x, &y);
    let (mx, my) = (mean(&x), mean(&y));
    let cov = mean(
        &x.iter()
            .zip(&y)
            .map(|(a, b)| (a - mx) * (b - my))
            .collect::<Vec<_>>(),
    );
    let var = mean(&x.iter().map(|a| (a - mx) * (a - mx)).collect::<Vec<_>>());
    // The least-squares line: the only critical point of a convex quadratic, its minimum.
    let line = mlp(r#"{"mlp": {"hidden": []}}"#)?;
    let slope = cov / var;
    let minimum = Tensor::from_slice(&[slope, my - slope * mx]);
    let (sampled, spectrum) = ratios(&loss(&line, &examples), &minimum)?;
    assert_eq!((sampled, spectrum.ratio()), (1.0, 1.0));
    // One tanh unit, y = w2 tanh(w1 x + b1) + b2, at w1 = b1 = w2 = 0, b2 = mean(y): the
    // gradient vanishes, and the Hessian has eigenvalues 2 (b2), ±2·|cov(x, y)| (the w1-w2
    // block) and 0 (b1): a saddle.
    let unit = mlp(r#"{"mlp": {"hidden": [1], "activation": "tanh"}}"#)?;
    let saddle = Tensor::from_slice(&[0.0, 0.0, 0.0, my]);
    let f = loss(&unit, &examples);
    let gradient = f.gradient_and_hessian_grad(&saddle)?;
    assert!(gradient.grad.norm().double_value(&[]) < 1e-15);
    let (sampled, spectrum) = ratios(&f, &saddle)?;
    eprintln!("saddle: sampled ratio {sampled}, spectrum {spectrum:?}");
    assert!(sampled > 0.0 && sampled < 1.0, "{sampled}");
    assert_eq!(
        (spectrum.positive, spectrum.near_zero, spectrum.negative),
        (2, 1, 1)
    );
    assert_eq!(spectrum.ratio(), 0.5);
    let values = with_quiet_context(|ctx| {
        let mut ticker = Ticker::new(ctx, 4, "row");
        eigenvalues(&symmetrized(&f.hessian(&saddle, &mut ticker)?)?)
    })?;
    let c = 2.0 * cov.abs();
    let mut analytic = [-c, 0.0, c, 2.0];
    analytic.sort_by(f64::total_cmp);
    for (got, want) in values.iter().zip(analytic) {
        assert!((got - want).abs() < 1e-12, "{values:?} vs {analytic:?}");
    }
    Ok(())
}

/// The sampled ratio (400 perturbations of length 10⁻³) and the spectrum (τ = 10⁻⁶) at `theta`.
fn ratios(f: &FlatLoss<'_>, theta: &Tensor) -> Result<(f64, Spectrum), StageError> {
    with_quiet_context(|ctx| {
        let mut ticker = Ticker::new(ctx, 1000, "unit");
        let sampled = sampled_ratio(f, theta, 1e-3, 400, &mut ticker)?;
        let h = symmetrized(&f.hessian(theta, &mut ticker)?)?;
        let values = eigenvalues(&h)?;
        Ok((sampled, Spectrum::of(&values, 1e-6)))
    })
}

#[test]
fn the_hessian_is_taken_in_the_points_dtype() -> TestResult {
    let (x, y) = points();
    let examples = split(&x, &y);
    let plan = mlp(r#"{"mlp": {"hidden": []}}"#)?;
    let h = with_quiet_context(|ctx| {
        let mut ticker = Ticker::new(ctx, 2, "row");
        loss(&plan, &examples).hessian(&Tensor::from_slice(&[0.0f64, 0.0]), &mut ticker)
    })?;
    assert_eq!((h.kind(), h.size()), (Kind::Double, vec![2, 2]));
    Ok(())
}
