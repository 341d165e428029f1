//! Tick positions and tick labels for linear and logarithmic axes.
//!
//! Log axes work in log10 space: positions are exponents, labels show the values. Ticks fall
//! on decades, with 2 and 5 in between when few decades are visible, every k-th decade when
//! many are, and on plain "nice" values when less than a decade is visible.

/// Upper bound on the number of ticks any function here returns.
const MAX_TICKS: usize = 200;

/// A "nice" step (1, 2, 2.5 or 5 times a power of ten) giving at most about `target` steps
/// over `span`.
pub(crate) fn nice_step(span: f64, target: usize) -> f64 {
    let raw = span / target.max(1) as f64;
    let magnitude = 10f64.powf(raw.log10().floor());
    let normalized = raw / magnitude;
    let factor = [1.0, 2.0, 2.5, 5.0]
        .into_iter()
        .find(|f| normalized <= f * (1.0 + 1e-9));
    factor.unwrap_or(10.0) * magnitude
}

/// Multiples of a nice step inside `[lo, hi]`, at most `max` of them.
pub(crate) fn linear_ticks(lo: f64, hi: f64, max: usize) -> Vec<f64> {
    if !(lo.is_finite() && hi.is_finite() && hi > lo) || max == 0 {
        return Vec::new();
    }
    let max = max.min(MAX_TICKS);
    let mut step = nice_step(hi - lo, max);
    loop {
        let ticks = multiples(lo, hi, step);
        if ticks.len() <= max || !step.is_finite() {
            return ticks;
        }
        step = nice_step(step * 1.01 * max as f64, max);
    }
}

fn multiples(lo: f64, hi: f64, step: f64) -> Vec<f64> {
    let tolerance = step * 1e-9;
    let first = ((lo - tolerance) / step).ceil();
    let last = ((hi + tolerance) / step).floor();
    if !(first.is_finite() && last.is_finite()) || last - first > MAX_TICKS as f64 {
        return Vec::new();
    }
    let count = (last - first) as usize + 1;
    (0..count)
        .map(|i| snap_zero((first + i as f64) * step, step))
        .collect()
}

fn snap_zero(value: f64, step: f64) -> f64 {
    if value.abs() < step * 1e-9 {
        0.0
    } else {
        value
    }
}

/// Tick positions (exponents) for a log axis showing `10^lo ..= 10^hi`. With `light`, also the
/// minor ticks 3, 4, 6, ... when they fit in `max`.
pub(crate) fn log_ticks(lo: f64, hi: f64, max: usize, light: bool) -> Vec<f64> {
    if !(lo.is_finite() && hi.is_finite() && hi > lo) || max == 0 {
        return Vec::new();
    }
    let decades = hi - lo;
    if decades < 1.0 {
        let ticks = linear_ticks(10f64.powf(lo), 10f64.powf(hi), max);
        return ticks
            .into_iter()
            .filter(|v| *v > 0.0)
            .map(f64::log10)
            .collect();
    }
    let mantissas: &[f64] = if light && decades * 9.0 <= max as f64 {
        &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]
    } else if decades * 3.0 <= max as f64 * 1.25 {
        &[1.0, 2.0, 5.0]
    } else {
        &[1.0]
    };
    let stride = (decades / max as f64).ceil().max(1.0);
    let first = (lo / stride).floor() as i64;
    let last = (hi / stride).ceil() as i64;
    let mut ticks = Vec::new();
    for k in first..=last {
        for m in mantissas {
            let t = k as f64 * stride + m.log10();
            if t >= lo - 1e-9 && t <= hi + 1e-9 && ticks.len() < MAX_TICKS {
                ticks.push(t);
            }
        }
    }
    ticks
}

/// The label of a tick at `value` on a linear axis whose ticks are `step` apart and whose
/// values reach `magnitude` in absolute value.
pub(crate) fn format_linear(value: f64, step: f64, magnitude: f64) -> String {
    let value = snap_zero(value, step);
    if !(1e-3..1e5).contains(&magnitude) {
        return if value == 0.0 {
            "0".to_owned()
        } else {
            format!("{:e}", round_significant(value))
        };
    }
    format!("{:.*}", decimals(step), value)
}

/// The label of a tick at exponent `t` on a log axis reaching from `10^lo` to `10^hi`: plain
/// decimals when the whole axis lies within 0.0001 to 99999, scientific notation otherwise, so
/// that one axis never mixes the two.
pub(crate) fn format_log(t: f64, lo: f64, hi: f64) -> String {
    let value = round_significant(10f64.powf(t));
    if lo >= -4.0 && hi < 5.0 {
        format!("{value}")
    } else {
        format!("{value:e}")
    }
}

/// The decimals needed to show multiples of `step` exactly (at most 12).
fn decimals(step: f64) -> usize {
    (0..12)
        .find(|d| {
            let scaled = step * 10f64.powi(*d as i32);
            (scaled - scaled.round()).abs() <= 1e-6 * scaled.abs().max(1.0)
        })
        .unwrap_or(12)
}

/// `value` rounded to 12 significant digits, which hides the error of `k * step`.
fn round_significant(value: f64) -> f64 {
    format!("{value:.11e}").parse().unwrap_or(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_ticks_are_nice_and_inside() {
        let labels: Vec<String> = linear_ticks(0.0, 1.0, 6)
            .into_iter()
            .map(|v| format_linear(v, 0.2, 1.0))
            .collect();
        assert_eq!(labels, ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"]);
        assert_eq!(linear_ticks(-3.0, 17.0, 4), vec![0.0, 5.0, 10.0, 15.0]);
        assert!(linear_ticks(1.0, 1.0, 5).is_empty());
        assert!(linear_ticks(f64::NAN, 1.0, 5).is_empty());
    }

    #[test]
    fn linear_ticks_respect_the_maximum() {
        for (lo, hi) in [(0.0, 1.0), (-7.3, 1e6), (1e-9, 3e-9), (0.1, 0.1000001)] {
            for max in [1, 2, 3, 8, 11] {
                let ticks = linear_ticks(lo, hi, max);
                assert!(
                    !ticks.is_empty() && ticks.len() <= max,
                    "{lo} {hi} {max}: {ticks:?}"
                );
            }
        }
    }

    #[test]
    fn log_ticks_pick_decades_or_one_two_five() {
        let few: Vec<String> = log_ticks(-2.0, 0.0, 8, false)
            .into_iter()
            .map(|t| format_log(t, -2.0, 0.0))
            .collect();
        assert_eq!(few, ["0.01", "0.02", "0.05", "0.1", "0.2", "0.5", "1"]);
        let many = log_ticks(-12.0, 0.0, 8, false);
        assert!(
            many.len() <= 8 && many.iter().all(|t| t.fract() == 0.0),
            "{many:?}"
        );
    }

    #[test]
    fn log_ticks_within_one_decade_are_linear_values() {
        let (lo, hi) = (0.2f64.log10(), 0.5f64.log10());
        let ticks: Vec<String> = log_ticks(lo, hi, 8, false)
            .into_iter()
            .map(|t| format_log(t, lo, hi))
            .collect();
        assert!(ticks.contains(&"0.3".to_owned()), "{ticks:?}");
    }

    #[test]
    fn labels_are_short() {
        assert_eq!(format_linear(0.30000000000000004, 0.1, 1.0), "0.3");
        assert_eq!(format_linear(2.5, 2.5, 10.0), "2.5");
        assert_eq!(format_linear(1e-17, 0.1, 1.0), "0.0");
        assert_eq!(format_linear(0.0, 5.0, 60.0), "0");
        assert_eq!(format_linear(300000.0, 100000.0, 1e6), "3e5");
        assert_eq!(format_log(-5.0, -6.0, 0.0), "1e-5");
        assert_eq!(format_log(-3.0, -3.1, 0.0), "0.001");
        assert_eq!(format_log(3.0, 0.0, 3.2), "1000");
        assert_eq!(format_log(3.0, 0.0, 6.0), "1e3");
        assert_eq!(format_log(2f64.log10() - 3.0, -3.0, 0.0), "0.002");
    }
}
