//! The coordinate type of every figure axis: a plotters `Ranged` over transformed values.
//!
//! Values reach plotters already transformed (log10 for a log axis), so one linear mapping
//! serves both scales and charts with any mix of linear and log axes share one coordinate type.
//! The scale only remembers whether it is logarithmic, to place ticks and write their labels.

use std::ops::Range;

use plotters::coord::ranged1d::{KeyPointHint, NoDefaultFormatting, Ranged, ValueFormatter};

use super::ticks::{format_linear, format_log, linear_ticks, log_ticks, nice_step};

/// The number of labelled ticks asked for on each axis.
pub(crate) const LABELS: usize = 8;

/// The most light grid lines on a linear axis (or a log axis spanning less than a decade).
const LIGHT_LINES: usize = LABELS * 4;

/// An axis range in transformed space (`lo < hi`, both finite) and whether it is logarithmic.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct AxisScale {
    lo: f64,
    hi: f64,
    log: bool,
}

impl AxisScale {
    /// A scale over `lo..hi` in transformed space; `None` unless both are finite and `lo < hi`.
    pub(crate) fn new(lo: f64, hi: f64, log: bool) -> Option<Self> {
        (lo.is_finite() && hi.is_finite() && lo < hi).then_some(Self { lo, hi, log })
    }

    /// Whether the axis is logarithmic.
    #[cfg(test)]
    pub(crate) fn is_log(&self) -> bool {
        self.log
    }

    /// The low end, in transformed space.
    pub(crate) fn lo(&self) -> f64 {
        self.lo
    }

    /// The high end, in transformed space.
    pub(crate) fn hi(&self) -> f64 {
        self.hi
    }

    /// Where `value` (transformed) lies along the axis: 0 at `lo`, 1 at `hi`.
    pub(crate) fn fraction(&self, value: f64) -> f64 {
        (value - self.lo) / (self.hi - self.lo)
    }

    fn label_step(&self) -> f64 {
        nice_step(self.hi - self.lo, LABELS)
    }
}

impl Ranged for AxisScale {
    type FormatOption = NoDefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        // Clamped so that a stray value far outside the range cannot overflow the pixel type.
        let fraction = self.fraction(*value);
        let fraction = if fraction.is_nan() {
            0.0
        } else {
            fraction.clamp(-2.0, 3.0)
        };
        let pixel = f64::from(limit.0) + fraction * f64::from(limit.1 - limit.0);
        pixel.round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        let light = hint.weight().allow_light_points();
        let max = hint.max_num_points();
        // Light grid lines: about four per labelled tick, or the 2..9 minor ticks of a decade.
        let linear_max = if light { LIGHT_LINES } else { LABELS };
        match self.log {
            true if self.hi - self.lo >= 1.0 && light => {
                log_ticks(self.lo, self.hi, max.min(60), true)
            }
            true => log_ticks(self.lo, self.hi, max.min(linear_max), light),
            false => linear_ticks(self.lo, self.hi, max.min(linear_max)),
        }
    }

    fn range(&self) -> Range<f64> {
        self.lo..self.hi
    }
}

impl ValueFormatter<f64> for AxisScale {
    fn format(value: &f64) -> String {
        format!("{value}")
    }

    fn format_ext(&self, value: &f64) -> String {
        if self.log {
            format_log(*value, self.lo, self.hi)
        } else {
            let magnitude = self.lo.abs().max(self.hi.abs());
            format_linear(*value, self.label_step(), magnitude)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_is_linear_and_clamped() -> Result<(), String> {
        let scale = AxisScale::new(0.0, 10.0, false).ok_or("valid range refused")?;
        assert_eq!(scale.map(&5.0, (100, 200)), 150);
        assert_eq!(scale.map(&1e300, (100, 200)), 400);
        assert_eq!(scale.map(&f64::NAN, (100, 200)), 100);
        assert_eq!(scale.map(&0.0, (500, 100)), 500);
        Ok(())
    }

    #[test]
    fn invalid_ranges_are_refused() {
        assert!(AxisScale::new(1.0, 1.0, false).is_none());
        assert!(AxisScale::new(0.0, f64::INFINITY, true).is_none());
    }

    #[test]
    fn log_labels_show_values() -> Result<(), String> {
        let scale = AxisScale::new(-3.0, 1.0, true).ok_or("valid range refused")?;
        let labels: Vec<String> = scale
            .key_points(LABELS)
            .iter()
            .map(|t| scale.format_ext(t))
            .collect();
        assert_eq!(labels, ["0.001", "0.01", "0.1", "1", "10"]);
        Ok(())
    }
}
