//! The 1-D target functions of the homework's first exercise, and the grids they are sampled
//! on.
//!
//! `sinc` is sin(5πx)/(5πx) (1 at x = 0, its limit); `sign` is sgn(sin(5πx)). Training inputs
//! are `n` evenly spaced points from `x_min` to `x_max` inclusive; test inputs are the centres
//! of `n_test` equal cells spanning the same interval, which for the default `n_test = n - 1`
//! are exactly the midpoints between neighbouring training points, so no test point is a
//! training point. Grid points and targets are computed in `f64` and then rounded to `f32` for
//! storage, so the convention for the sign's zeros applies at the mathematical grid points (a
//! point such as 0.2 would lose its zero if the target were computed from 0.2 rounded to
//! `f32`, whose sine is about -5e-8).

use pipeline_kinds::functions::Function;

/// Where sin(5πx) counts as zero: its exact zeros x = k/5 are not representable in binary, so
/// the computed sine there is of the order of 1e-16 rather than 0.
const SIGN_ZERO: f64 = 1e-9;

/// The value of `function` at `x`, in `f64`.
fn value(function: Function, x: f64) -> f64 {
    match function {
        Function::Sinc => sinc(x),
        Function::Sign => sign(x),
    }
}

/// sin(5πx)/(5πx), and 1 at x = 0.
fn sinc(x: f64) -> f64 {
    let t = 5.0 * std::f64::consts::PI * x;
    if t == 0.0 { 1.0 } else { t.sin() / t }
}

/// sgn(sin(5πx)): 1 or -1, and 0 where |sin(5πx)| < 1e-9 (at x = k/5 up to rounding).
fn sign(x: f64) -> f64 {
    let s = (5.0 * std::f64::consts::PI * x).sin();
    if s.abs() < SIGN_ZERO { 0.0 } else { s.signum() }
}

/// `n` evenly spaced points from `x_min` to `x_max` inclusive (`n >= 2`).
pub(crate) fn train_grid(n: usize, x_min: f64, x_max: f64) -> Vec<f64> {
    let step = (x_max - x_min) / (n - 1) as f64;
    (0..n)
        .map(|i| {
            if i + 1 == n {
                x_max
            } else {
                x_min + i as f64 * step
            }
        })
        .collect()
}

/// The centres of `n` equal cells spanning `x_min..x_max` (`n >= 1`).
pub(crate) fn test_grid(n: usize, x_min: f64, x_max: f64) -> Vec<f64> {
    let step = (x_max - x_min) / n as f64;
    (0..n).map(|i| x_min + (i as f64 + 0.5) * step).collect()
}

/// The inputs rounded to `f32` and the targets of `function` at them (computed in `f64` at the
/// unrounded inputs, then rounded).
pub(crate) fn sample(function: Function, xs: &[f64]) -> (Vec<f32>, Vec<f32>) {
    let inputs = xs.iter().map(|&x| x as f32).collect();
    let targets = xs.iter().map(|&x| value(function, x) as f32).collect();
    (inputs, targets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sinc_at_known_points() {
        assert_eq!(sinc(0.0), 1.0);
        // sin(π/2)/(π/2) at x = 0.1.
        assert!((sinc(0.1) - 2.0 / std::f64::consts::PI).abs() < 1e-15);
        // Zeros at x = k/5.
        for k in 1..=5 {
            assert!(sinc(f64::from(k) / 5.0).abs() < 1e-15);
        }
        // -sin(3π/2)... at x = 0.3: sin(1.5π) = -1, divided by 1.5π.
        assert!((sinc(0.3) + 1.0 / (1.5 * std::f64::consts::PI)).abs() < 1e-15);
        assert!((sinc(0.0001) - 1.0).abs() < 1e-5);
    }

    #[test]
    fn sign_is_zero_at_multiples_of_a_fifth() {
        for x in [0.2, 0.4, 0.6, 0.8, 1.0] {
            assert_eq!(sign(x), 0.0, "x = {x}");
        }
        assert_eq!(sign(0.1), 1.0);
        assert_eq!(sign(0.3), -1.0);
        assert_eq!(sign(0.5), 1.0);
        assert_eq!(sign(0.0001), 1.0);
        assert_eq!(sign(0.2 + 1e-6), -1.0);
    }

    #[test]
    fn grids_span_the_interval_and_interleave() {
        let train = train_grid(5, 0.0, 1.0);
        assert_eq!(train, vec![0.0, 0.25, 0.5, 0.75, 1.0]);
        let test = test_grid(4, 0.0, 1.0);
        assert_eq!(test, vec![0.125, 0.375, 0.625, 0.875]);
        let train = train_grid(10_000, 0.0001, 1.0);
        assert_eq!((train[0], train[9_999]), (0.0001, 1.0));
        assert!((train[1999] - 0.2).abs() < 1e-15);
        let test = test_grid(9_999, 0.0001, 1.0);
        assert!(test.iter().zip(&train).all(|(t, a)| t > a));
        assert!(test.iter().zip(&train[1..]).all(|(t, b)| t < b));
    }

    #[test]
    fn sign_zeros_survive_on_the_default_training_grid() {
        let xs = train_grid(10_000, 0.0001, 1.0);
        let (inputs, targets) = sample(Function::Sign, &xs);
        let zeros: Vec<f32> = inputs
            .iter()
            .zip(&targets)
            .filter(|(_, t)| **t == 0.0)
            .map(|(x, _)| *x)
            .collect();
        assert_eq!(zeros, vec![0.2, 0.4, 0.6, 0.8, 1.0]);
        assert_eq!(targets[0], 1.0);
    }
}
