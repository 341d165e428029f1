//! Principal component analysis of a few rows in a space of many dimensions: snapshots of a
//! network's weights (tens to hundreds of rows, up to millions of columns).
//!
//! The rows are centred by their column means; with X the centred `[m, d]` matrix, the
//! eigenvectors u of the small Gram matrix X·Xᵀ (`[m, m]`) give the principal axes
//! v = Xᵀu / √λ and the coordinates of the rows along them, X·v = √λ·u, without ever forming
//! the `[d, d]` covariance matrix. The variance along an axis is λ / (m − 1). Everything is in
//! `f64`. An eigenvector's sign is arbitrary, so each axis is turned to make its entry of
//! largest magnitude positive: the same rows always give the same coordinates. Components
//! whose eigenvalue is below 10⁻¹² of the largest are rounding noise and are dropped (m rows
//! have at most m − 1 components of non-zero variance).

use pipeline_engine::stage::StageError;
use tch::{Kind, Tensor};

use super::host::read_f64;
use crate::error::TchContext;

/// Eigenvalues below this fraction of the largest count as zero.
const RANK_TOLERANCE: f64 = 1e-12;

/// The result of one analysis.
pub(crate) struct Pca {
    /// The variance along each component of non-zero variance, largest first.
    pub(crate) variances: Vec<f64>,
    /// The unit axes of the first `k` components, `[k, d]` (fewer rows when the data have
    /// fewer components).
    #[cfg_attr(
        not(test),
        expect(
            dead_code,
            reason = "the stage writes coordinates; tests check the axes"
        )
    )]
    pub(crate) axes: Tensor,
    /// Every row's coordinates along the first `k` components (0 along components the data
    /// lack).
    pub(crate) coordinates: Vec<Vec<f64>>,
}

impl Pca {
    /// The share of the total variance of each component, largest first.
    pub(crate) fn ratios(&self) -> Vec<f64> {
        let total: f64 = self.variances.iter().sum();
        self.variances.iter().map(|v| v / total).collect()
    }
}

/// Fits one analysis to the rows of `rows` (`[m, d]`, any float kind) and keeps `k` components.
pub(crate) fn fit(rows: &Tensor, k: usize) -> Result<Pca, StageError> {
    let m = rows.size().first().copied().unwrap_or(0);
    if m < 2 {
        return Err(StageError::input(format!(
            "a principal component analysis needs at least 2 snapshots, not {m}"
        )));
    }
    let centred = rows
        .f_to_kind(Kind::Double)
        .and_then(|x| Ok((x.f_mean_dim(0, true, Kind::Double)?, x)))
        .and_then(|(mean, x)| x.f_sub(&mean))
        .ctx("centring the snapshots")?;
    let gram = centred
        .f_matmul(&centred.f_transpose(0, 1).ctx("transposing")?)
        .ctx("the Gram matrix of the snapshots")?;
    let (values, vectors) = gram
        .f_linalg_eigh("L")
        .ctx("eigenvectors of the Gram matrix")?;
    let values = read_f64(&values, "the Gram matrix's eigenvalues")?;
    let largest = values.last().copied().unwrap_or(0.0);
    let order: Vec<usize> = (0..values.len())
        .rev()
        .filter(|&i| largest > 0.0 && values[i] > RANK_TOLERANCE * largest)
        .collect();
    let variances = order.iter().map(|&i| values[i] / (m - 1) as f64).collect();
    let mut axes = Vec::new();
    let mut coordinates = vec![vec![0.0; k]; m as usize];
    for (j, &i) in order.iter().take(k).enumerate() {
        let (axis, coords) = component(&centred, &vectors, i as i64, values[i])?;
        axes.push(axis);
        for (row, c) in coordinates.iter_mut().zip(coords) {
            row[j] = c;
        }
    }
    let axes = if axes.is_empty() {
        let d = rows.size().get(1).copied().unwrap_or(0);
        Tensor::f_zeros([0, d], (Kind::Double, rows.device())).ctx("allocating axes")?
    } else {
        Tensor::f_stack(&axes, 0).ctx("stacking axes")?
    };
    Ok(Pca {
        variances,
        axes,
        coordinates,
    })
}

/// The unit axis and the rows' coordinates of eigenvector `i` (eigenvalue `lambda`) of the
/// Gram matrix, turned so that the axis's largest entry is positive.
fn component(
    centred: &Tensor,
    vectors: &Tensor,
    i: i64,
    lambda: f64,
) -> Result<(Tensor, Vec<f64>), StageError> {
    let u = vectors.f_select(1, i).ctx("taking an eigenvector")?;
    let root = lambda.sqrt();
    let axis = centred
        .f_transpose(0, 1)
        .and_then(|xt| xt.f_mv(&u))
        .and_then(|v| v.f_div_scalar(root))
        .ctx("a principal axis")?;
    let peak = axis
        .f_abs()
        .and_then(|a| a.f_argmax(0, false))
        .and_then(|j| axis.f_index_select(0, &j.f_view([1])?))
        .and_then(|v| v.f_double_value(&[0]))
        .ctx("orienting a principal axis")?;
    let sign = if peak < 0.0 { -1.0 } else { 1.0 };
    let axis = axis.f_mul_scalar(sign).ctx("orienting a principal axis")?;
    let coords = read_f64(&u, "an eigenvector")?;
    Ok((axis, coords.into_iter().map(|c| c * root * sign).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Points a·3·e1 + b·e2 on a full 7×5 grid of (a, b), centred at (1, ..., 1): exactly
    /// uncorrelated coordinates along two known orthonormal directions of a 6-D space.
    fn grid_points(e1: &[f64], e2: &[f64]) -> (Tensor, Vec<(f64, f64)>) {
        let mut rows = Vec::new();
        let mut truth = Vec::new();
        for a in -3..=3 {
            for b in -2..=2 {
                let (a, b) = (3.0 * f64::from(a), f64::from(b));
                let row: Vec<f64> = (0..6).map(|i| 1.0 + a * e1[i] + b * e2[i]).collect();
                rows.push(Tensor::from_slice(&row));
                truth.push((a, b));
            }
        }
        (Tensor::stack(&rows, 0), truth)
    }

    fn unit(v: [f64; 6]) -> Vec<f64> {
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        v.iter().map(|x| x / norm).collect()
    }

    #[test]
    fn recovers_known_directions_up_to_sign_and_their_variance() -> Result<(), StageError> {
        let e1 = unit([1.0, 2.0, 0.0, -1.0, 0.5, 0.0]);
        // Orthogonal to e1: 1·2 + 2·(-1) + 0 + (-1)·0 + 0.5·0 + 0 = 0.
        let e2 = unit([2.0, -1.0, 3.0, 0.0, 0.0, 1.0]);
        let (rows, truth) = grid_points(&e1, &e2);
        let pca = fit(&rows, 2)?;
        let axes = read_f64(&pca.axes, "axes")?;
        for (j, e) in [&e1, &e2].into_iter().enumerate() {
            let dot: f64 = axes[6 * j..6 * j + 6]
                .iter()
                .zip(e)
                .map(|(a, b)| a * b)
                .sum();
            assert!((dot.abs() - 1.0).abs() < 1e-12, "component {j}: {dot}");
        }
        // Variance along e1: that of 3a for a on -3..=3, each value 5 times (n = 35).
        let var = |values: Vec<f64>| {
            let mean = values.iter().sum::<f64>() / values.len() as f64;
            values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (values.len() - 1) as f64
        };
        let (va, vb) = (
            var(truth.iter().map(|t| t.0).collect()),
            var(truth.iter().map(|t| t.1).collect()),
        );
        assert_eq!(pca.variances.len(), 2, "{:?}", pca.variances);
        assert!(
            (pca.variances[0] - va).abs() < 1e-9 * va,
            "{:?}",
            pca.variances
        );
        assert!((pca.variances[1] - vb).abs() < 1e-9 * vb);
        assert!((pca.ratios()[0] - va / (va + vb)).abs() < 1e-12);
        // Coordinates are the generating ones, up to each axis's sign.
        for (c, (a, b)) in pca.coordinates.iter().zip(&truth) {
            assert!((c[0].abs() - a.abs()).abs() < 1e-9 && (c[1].abs() - b.abs()).abs() < 1e-9);
        }
        Ok(())
    }

    #[test]
    fn one_snapshot_is_refused_and_a_line_has_one_component() -> Result<(), StageError> {
        assert!(fit(&Tensor::from_slice(&[1.0f64, 2.0]).view([1, 2]), 2).is_err());
        let line = Tensor::from_slice(&[0.0f64, 0.0, 1.0, 1.0, 2.0, 2.0]).view([3, 2]);
        let pca = fit(&line, 2)?;
        assert_eq!(pca.variances.len(), 1);
        assert!(pca.coordinates.iter().all(|c| c[1] == 0.0));
        Ok(())
    }
}
