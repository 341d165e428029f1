use super::*;
use tch::{Device, Kind};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Runs `steps` updates on L(x) = ½ Σ a_i x_i² (gradient a·x) from `x0`, returning x.
fn run(spec: &OptimizerSpec, x0: &[f32], a: &[f32], steps: usize) -> Result<Vec<f32>, StageError> {
    let p = Tensor::from_slice(x0);
    let a = Tensor::from_slice(a);
    let mut opt = Optimizer::new(spec, &[p.shallow_clone()])?;
    for _ in 0..steps {
        let g = p.f_mul(&a).ctx("gradient")?;
        opt.step(&[p.shallow_clone()], &mut [g])?;
    }
    assert_eq!(opt.steps(), steps as u64);
    Vec::<f32>::try_from(&p).ctx("reading")
}

fn close(got: &[f32], want: &[f64]) {
    for (g, w) in got.iter().zip(want) {
        assert!(
            (f64::from(*g) - w).abs() < 1e-5 * w.abs().max(1.0),
            "got {got:?}, want {want:?}"
        );
    }
}

fn adam(lr: f64, weight_decay: f64) -> OptimizerSpec {
    OptimizerSpec::Adam(AdamSpec {
        lr,
        betas: [0.9, 0.999],
        eps: 1e-8,
        weight_decay,
    })
}

#[test]
fn adam_first_step_moves_each_coordinate_by_lr() -> TestResult {
    // After one step, m̂ = g and v̂ = g², so the update is lr · g / (|g| + ε) ≈ lr · sign(g).
    let x = run(&adam(0.1, 0.0), &[1.0, -2.0], &[1.0, 3.0], 1)?;
    close(&x, &[0.9, -1.9]);
    Ok(())
}

#[test]
fn adam_matches_a_hand_computation_over_three_steps() -> TestResult {
    let (lr, b1, b2, eps, wd) = (0.05, 0.9, 0.999, 1e-8, 0.1);
    let (a, mut x) = ([1.0, 3.0], [1.0f64, -2.0]);
    let (mut m, mut v) = ([0.0f64; 2], [0.0f64; 2]);
    for t in 1..=3 {
        for i in 0..2 {
            let g = a[i] * x[i] + wd * x[i];
            m[i] = b1 * m[i] + (1.0 - b1) * g;
            v[i] = b2 * v[i] + (1.0 - b2) * g * g;
            let (mh, vh) = (m[i] / (1.0 - b1.powi(t)), v[i] / (1.0 - b2.powi(t)));
            x[i] -= lr * mh / (vh.sqrt() + eps);
        }
    }
    close(&run(&adam(lr, wd), &[1.0, -2.0], &[1.0, 3.0], 3)?, &x);
    Ok(())
}

#[test]
fn sgd_plain_momentum_and_nesterov_match_hand_computations() -> TestResult {
    let sgd = |momentum, nesterov| {
        OptimizerSpec::Sgd(SgdSpec {
            lr: 0.1,
            momentum,
            nesterov,
            weight_decay: 0.0,
        })
    };
    // Plain: x ← x − 0.1·a·x = (1 − 0.1a)·x per step.
    close(
        &run(&sgd(0.0, false), &[1.0, -2.0], &[1.0, 3.0], 2)?,
        &[0.81, -2.0 * 0.49],
    );
    // Momentum 0.5 on a = 1, x0 = 1: b1 = 1, x1 = 0.9; b2 = 0.5 + 0.9 = 1.4, x2 = 0.76.
    close(&run(&sgd(0.5, false), &[1.0], &[1.0], 2)?, &[0.76]);
    // Nesterov: d1 = 1 + 0.5·1 = 1.5, x1 = 0.85; b2 = 0.5 + 0.85 = 1.35,
    // d2 = 0.85 + 0.675 = 1.525, x2 = 0.85 − 0.1525 = 0.6975.
    close(&run(&sgd(0.5, true), &[1.0], &[1.0], 2)?, &[0.6975]);
    Ok(())
}

#[test]
fn rmsprop_applies_inverse_time_decay() -> TestResult {
    let spec = |decay, momentum| {
        OptimizerSpec::Rmsprop(RmspropSpec {
            lr: 0.01,
            alpha: 0.9,
            eps: 1e-7,
            momentum,
            weight_decay: 0.0,
            decay,
        })
    };
    let (alpha, eps, lr, decay) = (0.9, 1e-7, 0.01, 0.5);
    let (mut x, mut s, mut b) = (2.0f64, 0.0f64, 0.0f64);
    let mut xm = 2.0f64;
    let mut sm = 0.0f64;
    for t in 0..3 {
        let lr_t = lr / (1.0 + decay * f64::from(t));
        s = alpha * s + (1.0 - alpha) * x * x;
        x -= lr_t * x / (s.sqrt() + eps);
        sm = alpha * sm + (1.0 - alpha) * xm * xm;
        b = 0.9 * b + xm / (sm.sqrt() + eps);
        xm -= lr_t * b;
    }
    close(&run(&spec(decay, 0.0), &[2.0], &[1.0], 3)?, &[x]);
    close(&run(&spec(decay, 0.9), &[2.0], &[1.0], 3)?, &[xm]);
    Ok(())
}

#[test]
fn stacked_parameters_behave_as_independent_optimizers() -> TestResult {
    // One optimizer over [2, 2] equals two optimizers over [2] (element-wise updates).
    let a = [1.0f32, 3.0, 0.5, 2.0];
    let x0 = [1.0f32, -2.0, 0.3, 4.0];
    let stacked = run(&adam(0.05, 0.0), &x0, &a, 4)?;
    let first = run(&adam(0.05, 0.0), &x0[..2], &a[..2], 4)?;
    let second = run(&adam(0.05, 0.0), &x0[2..], &a[2..], 4)?;
    assert_eq!(stacked, [first, second].concat());
    let p = Tensor::f_zeros([2], (Kind::Float, Device::Cpu))?;
    let mut opt = Optimizer::new(&adam(0.1, 0.0), &[p.shallow_clone()])?;
    assert!(opt.step(&[p.shallow_clone()], &mut []).is_err());
    Ok(())
}
