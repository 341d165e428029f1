//! Element-wise activations and their gradients on one buffer, computed as libtorch computes
//! them (the same formulas and constants, NaN kept as NaN), for the host trainer.

use pipeline_kinds::model::spec::Activation;

/// SELU's constants, as libtorch has them.
const SELU_ALPHA: f32 = 1.673_263_2;
const SELU_SCALE: f32 = 1.050_701;
/// Above this input softplus is the identity (libtorch's default threshold).
const SOFTPLUS_THRESHOLD: f32 = 20.0;

/// `dst = act(src)`, as libtorch computes it (a NaN stays a NaN).
#[inline(always)]
pub(super) fn activate(act: Activation, src: &[f32], dst: &mut [f32]) {
    let pairs = dst.iter_mut().zip(src);
    match act {
        Activation::Relu => pairs.for_each(|(y, &x)| *y = if x < 0.0 { 0.0 } else { x }),
        Activation::Tanh => pairs.for_each(|(y, &x)| *y = x.tanh()),
        Activation::Sigmoid => pairs.for_each(|(y, &x)| *y = 1.0 / (1.0 + (-x).exp())),
        Activation::Elu => pairs.for_each(|(y, &x)| *y = if x > 0.0 { x } else { x.exp_m1() }),
        Activation::Selu => pairs.for_each(|(y, &x)| {
            *y = if x > 0.0 {
                SELU_SCALE * x
            } else {
                SELU_SCALE * SELU_ALPHA * x.exp_m1()
            }
        }),
        Activation::Softplus => pairs.for_each(|(y, &x)| {
            *y = if x > SOFTPLUS_THRESHOLD {
                x
            } else {
                x.exp().ln_1p()
            }
        }),
    }
}

/// `g ← g·act'(x)` from the activation's input `x` and output `y`, as libtorch's backward
/// passes compute it.
#[inline(always)]
pub(super) fn activation_grad(act: Activation, x: &[f32], y: &[f32], g: &mut [f32]) {
    let triples = g.iter_mut().zip(x).zip(y);
    match act {
        Activation::Relu => triples.for_each(|((g, _), &y)| *g = if y <= 0.0 { 0.0 } else { *g }),
        Activation::Tanh => triples.for_each(|((g, _), &y)| *g *= 1.0 - y * y),
        Activation::Sigmoid => triples.for_each(|((g, _), &y)| *g *= (1.0 - y) * y),
        Activation::Elu => triples.for_each(|((g, _), &y)| {
            if y <= 0.0 {
                *g *= y + 1.0;
            }
        }),
        Activation::Selu => triples.for_each(|((g, _), &y)| {
            *g *= if y <= 0.0 {
                y + SELU_SCALE * SELU_ALPHA
            } else {
                SELU_SCALE
            }
        }),
        Activation::Softplus => triples.for_each(|((g, &x), _)| {
            if x <= SOFTPLUS_THRESHOLD {
                let z = x.exp();
                *g *= z / (z + 1.0);
            }
        }),
    }
}
