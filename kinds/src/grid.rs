//! Symmetric grids of offsets around trained weights, shared by the kinds that walk away from
//! a model along directions (single parameters, a random plane).

/// `points` values ascending from −extent to extent with 0 exactly in the middle (`points` is
/// odd, as the kinds check).
pub fn symmetric(extent: f64, points: usize) -> Vec<f64> {
    let half = (points / 2) as f64;
    (0..points)
        .map(|k| extent * (k as f64 - half) / half.max(1.0))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_middle_is_exactly_zero_and_the_ends_the_extent() {
        assert_eq!(super::symmetric(2.0, 5), [-2.0, -1.0, 0.0, 1.0, 2.0]);
        assert_eq!(super::symmetric(0.3, 21)[10], 0.0);
    }
}
