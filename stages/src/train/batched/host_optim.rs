//! Adam, SGD and RMSprop on one run's values in plain memory, for the host trainer
//! ([`super::host`]).
//!
//! The formulas and their order of operations are those of [`crate::train::optim`] (which runs
//! them as libtorch element-wise operations): `f32` arithmetic with the hyper-parameters
//! rounded to `f32`, `lerp` as libtorch computes it, so that a run trained here and a run
//! trained alone differ by rounding only (and by state values below 1.2e-38, which are set to
//! zero here: see [`flush`]). The state vectors are laid out like the parameters,
//! in the order [`crate::train::optim::Optimizer::state_tensors`] lists them.

use pipeline_kinds::optim::OptimizerSpec;

/// How many state vectors (each the size of the parameters) `spec` keeps.
pub(crate) fn state_count(spec: &OptimizerSpec) -> usize {
    match spec {
        OptimizerSpec::Adam(_) | OptimizerSpec::Rmsprop(_) => 2,
        OptimizerSpec::Sgd(_) => 1,
    }
}

/// libtorch's `lerp` on `f32` with a fixed weight `w`: `a + w·(b − a)` for small weights,
/// `b − (b − a)·(1 − w)` else. The choice is made once, outside the loops that use it.
#[derive(Clone, Copy)]
struct Lerp {
    w: f32,
    small: bool,
}

impl Lerp {
    #[inline(always)]
    fn new(w: f64) -> Self {
        let w = w as f32;
        Self {
            w,
            small: w.abs() < 0.5,
        }
    }

    #[inline(always)]
    fn at(self, a: f32, b: f32) -> f32 {
        if self.small {
            a + self.w * (b - a)
        } else {
            b - (b - a) * (1.0 - self.w)
        }
    }
}

/// `x`, or zero when it is subnormal (below 1.2e-38 in magnitude); every optimizer state
/// value passes through it.
///
/// A parameter whose gradient stays zero (a dead ReLU unit) has moments (Adam's, RMSprop's
/// average, a momentum buffer) that shrink by a constant factor every step, into subnormal numbers within a thousand steps; arithmetic on
/// those takes a slow path in the processor (here it cost the whole trainer 15 %). Zeroing
/// them changes the update by less than 1e-38 of a moment, far below `f32` rounding of the
/// weights, and it is explicit arithmetic (not a processor mode), so results stay
/// reproducible.
#[inline(always)]
fn flush(x: f32) -> f32 {
    if x.abs() < f32::MIN_POSITIVE { 0.0 } else { x }
}

/// Adam's constants of one step.
struct Adam {
    inverse_root: f32,
    eps: f32,
    scale: f32,
}

impl Adam {
    /// The update with the moments' `lerp` forms fixed (`SMALL1`, `SMALL2`: see [`Lerp`]).
    #[inline(always)]
    fn update<const SMALL1: bool, const SMALL2: bool>(
        &self,
        w1: f32,
        w2: f32,
        p: &mut [f32],
        g: &[f32],
        m: &mut [f32],
        v: &mut [f32],
    ) {
        let (w1, w2) = (
            Lerp {
                w: w1,
                small: SMALL1,
            },
            Lerp {
                w: w2,
                small: SMALL2,
            },
        );
        for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m).zip(v) {
            *m = flush(w1.at(*m, g));
            *v = flush(w2.at(*v, g * g));
            let denom = v.sqrt() * self.inverse_root + self.eps;
            *p += *m / denom * self.scale;
        }
    }
}

/// One update of `p` from `g` (overwritten) at step `t` (counted from 0), with the state
/// vectors `s0` and `s1` (`s1` unused by SGD).
#[inline(always)]
pub(crate) fn update(
    spec: &OptimizerSpec,
    t: u64,
    p: &mut [f32],
    g: &mut [f32],
    s0: &mut [f32],
    s1: &mut [f32],
) {
    let decay = |g: &mut [f32], p: &[f32], wd: f64| {
        if wd != 0.0 {
            let wd = wd as f32;
            for (g, &p) in g.iter_mut().zip(p) {
                *g += p * wd;
            }
        }
    };
    match spec {
        OptimizerSpec::Adam(h) => {
            decay(g, p, h.weight_decay);
            let [b1, b2] = h.betas;
            let step = (t + 1) as f64;
            let (bc1, bc2) = (1.0 - b1.powf(step), 1.0 - b2.powf(step));
            let (w1, w2) = (Lerp::new(1.0 - b1), Lerp::new(1.0 - b2));
            // libtorch divides a tensor by a number as a product with its reciprocal.
            let inverse_root = (1.0 / bc2.sqrt()) as f32;
            let (eps, scale) = (h.eps as f32, (-h.lr / bc1) as f32);
            let adam = Adam {
                inverse_root,
                eps,
                scale,
            };
            // One loop per pair of `lerp` forms, so that none of them branches inside.
            match (w1.small, w2.small) {
                (true, true) => adam.update::<true, true>(w1.w, w2.w, p, g, s0, s1),
                (true, false) => adam.update::<true, false>(w1.w, w2.w, p, g, s0, s1),
                (false, true) => adam.update::<false, true>(w1.w, w2.w, p, g, s0, s1),
                (false, false) => adam.update::<false, false>(w1.w, w2.w, p, g, s0, s1),
            }
        }
        OptimizerSpec::Sgd(h) => {
            decay(g, p, h.weight_decay);
            let (mu, scale) = (h.momentum as f32, -h.lr as f32);
            for ((p, &g), b) in p.iter_mut().zip(g.iter()).zip(s0) {
                let direction = if h.momentum == 0.0 {
                    g
                } else {
                    *b = flush(*b * mu + g);
                    if h.nesterov { *b * mu + g } else { *b }
                };
                *p += direction * scale;
            }
        }
        OptimizerSpec::Rmsprop(h) => {
            decay(g, p, h.weight_decay);
            let lr = h.lr / (1.0 + h.decay * t as f64);
            let (w, eps, mu, scale) = (
                Lerp::new(1.0 - h.alpha),
                h.eps as f32,
                h.momentum as f32,
                -lr as f32,
            );
            for (((p, &g), s), b) in p.iter_mut().zip(g.iter()).zip(s0).zip(s1) {
                *s = flush(w.at(*s, g * g));
                let avg = s.sqrt() + eps;
                let step = if h.momentum == 0.0 {
                    g / avg * scale
                } else {
                    *b = flush(*b * mu + g / avg);
                    *b * scale
                };
                *p += step;
            }
        }
    }
}
