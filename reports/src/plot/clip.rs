//! Clipping lines and points to a chart's box.
//!
//! plotters does not clip elements to the plotting area, so a line to a point outside a fixed
//! axis range would cross the axes and labels. Lines are cut at the box edge (Liang-Barsky,
//! in transformed space, where lines are straight) and split where they leave it.

/// A rectangle in transformed space: `(x_lo, x_hi, y_lo, y_hi)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Bounds {
    pub(crate) x: (f64, f64),
    pub(crate) y: (f64, f64),
}

impl Bounds {
    /// Whether the point lies inside (edges included).
    pub(crate) fn contains(&self, (x, y): (f64, f64)) -> bool {
        x >= self.x.0 && x <= self.x.1 && y >= self.y.0 && y <= self.y.1
    }
}

/// The parts of the polyline through `points` that lie inside `bounds`.
pub(crate) fn clip_polyline(points: &[(f64, f64)], bounds: Bounds) -> Vec<Vec<(f64, f64)>> {
    let mut parts: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut current: Vec<(f64, f64)> = Vec::new();
    if let [only] = points {
        if bounds.contains(*only) {
            parts.push(vec![*only]);
        }
        return parts;
    }
    for pair in points.windows(2) {
        let Some((a, b)) = clip_segment(pair[0], pair[1], bounds) else {
            flush(&mut parts, &mut current);
            continue;
        };
        if current.last() != Some(&a) {
            flush(&mut parts, &mut current);
            current.push(a);
        }
        current.push(b);
    }
    flush(&mut parts, &mut current);
    parts
}

fn flush(parts: &mut Vec<Vec<(f64, f64)>>, current: &mut Vec<(f64, f64)>) {
    if !current.is_empty() {
        parts.push(std::mem::take(current));
    }
}

/// The part of segment `a`-`b` inside `bounds`, if any.
fn clip_segment(a: (f64, f64), b: (f64, f64), bounds: Bounds) -> Option<((f64, f64), (f64, f64))> {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let edges = [
        (-dx, a.0 - bounds.x.0),
        (dx, bounds.x.1 - a.0),
        (-dy, a.1 - bounds.y.0),
        (dy, bounds.y.1 - a.1),
    ];
    let (mut enter, mut leave) = (0.0f64, 1.0f64);
    for (p, q) in edges {
        if p == 0.0 {
            if q < 0.0 {
                return None;
            }
            continue;
        }
        let t = q / p;
        if p < 0.0 {
            enter = enter.max(t);
        } else {
            leave = leave.min(t);
        }
    }
    if enter > leave {
        return None;
    }
    let at = |t: f64| {
        if t == 0.0 {
            a
        } else if t == 1.0 {
            b
        } else {
            (a.0 + t * dx, a.1 + t * dy)
        }
    };
    Some((at(enter), at(leave)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const UNIT: Bounds = Bounds {
        x: (0.0, 1.0),
        y: (0.0, 1.0),
    };

    #[test]
    fn inside_line_is_unchanged() {
        let line = vec![(0.1, 0.1), (0.5, 0.9), (0.9, 0.2)];
        assert_eq!(clip_polyline(&line, UNIT), vec![line]);
    }

    #[test]
    fn excursion_outside_splits_the_line() {
        let line = vec![(0.0, 0.5), (0.5, 2.5), (1.0, 0.5)];
        let parts = clip_polyline(&line, UNIT);
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0], vec![(0.0, 0.5), (0.125, 1.0)]);
        assert_eq!(parts[1], vec![(0.875, 1.0), (1.0, 0.5)]);
    }

    #[test]
    fn segment_missing_the_box_is_dropped() {
        assert!(clip_polyline(&[(2.0, 2.0), (3.0, 5.0)], UNIT).is_empty());
        assert!(clip_polyline(&[(2.0, 2.0)], UNIT).is_empty());
    }
}
