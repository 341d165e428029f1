//! A dense layer's forward pass and gradients on feature-major buffers (`features × row`,
//! `row` a multiple of [`ROW_BLOCK`]), written against [`Vector`].
//!
//! Every loop keeps eight independent accumulators in flight (one chain would wait for each
//! addition's latency) and, where it can, works on two rows at once so that each value loaded
//! from memory feeds two multiply-adds: loads, not arithmetic, bound these small products.
//! Rows are viewed as arrays of fixed-size blocks (`as_chunks`), so that the compiler knows
//! every block's length and checks an index once per block instead of once per load.

use super::vector::Vector;

/// Examples per block of a buffer row.
pub(super) const ROW_BLOCK: usize = 64;

/// Examples per half block (four vectors), when two rows share the loads.
const HALF: usize = ROW_BLOCK / 2;

/// `dst[j] = b[j] + Σᵢ w[j, i]·src[i]` (`w` is `[out, inp]`).
#[inline(always)]
pub(super) fn forward<V: Vector>(
    w: &[f32],
    b: &[f32],
    src: &[f32],
    dst: &mut [f32],
    inp: usize,
    row: usize,
) {
    let out = b.len();
    let src = src.as_chunks::<HALF>().0;
    let halves = row / HALF;
    let (dst, _) = dst.as_chunks_mut::<HALF>();
    let mut j = 0;
    while j < out {
        let pair = j + 1 < out;
        let (w0, w1) = (
            &w[j * inp..(j + 1) * inp],
            &w[(j + pair as usize) * inp..][..inp],
        );
        for c in 0..halves {
            let mut acc = [[V::splat(b[j]); 4], [V::splat(b[j + pair as usize]); 4]];
            for i in 0..inp {
                let s = &src[i * halves + c];
                two_rows(&mut acc, V::splat(w0[i]), V::splat(w1[i]), s);
            }
            store(acc[0], &mut dst[j * halves + c]);
            if pair {
                store(acc[1], &mut dst[(j + 1) * halves + c]);
            }
        }
        j += 2;
    }
}

/// The gradient with respect to the layer's input: `dst[i] = Σⱼ w[j, i]·g[j]`.
#[inline(always)]
pub(super) fn input_grad<V: Vector>(w: &[f32], g: &[f32], dst: &mut [f32], inp: usize, row: usize) {
    let halves = row / HALF;
    let g = g.as_chunks::<HALF>().0;
    let out = g.len() / halves.max(1);
    let (dst, _) = dst.as_chunks_mut::<HALF>();
    let mut i = 0;
    while i < inp {
        let pair = i + 1 < inp;
        let i1 = i + pair as usize;
        for c in 0..halves {
            let mut acc = [[V::zero(); 4]; 2];
            for j in 0..out {
                let s = &g[j * halves + c];
                two_rows(
                    &mut acc,
                    V::splat(w[j * inp + i]),
                    V::splat(w[j * inp + i1]),
                    s,
                );
            }
            store(acc[0], &mut dst[i * halves + c]);
            if pair {
                store(acc[1], &mut dst[i1 * halves + c]);
            }
        }
        i += 2;
    }
}

/// `acc[0][u] += w0·s[u]`, `acc[1][u] += w1·s[u]` for the four vectors of `s`.
#[inline(always)]
fn two_rows<V: Vector>(acc: &mut [[V; 4]; 2], w0: V, w1: V, s: &[f32; HALF]) {
    for (u, lanes) in s.as_chunks::<8>().0.iter().enumerate() {
        let x = V::load(lanes);
        acc[0][u] = w0.mul_add(x, acc[0][u]);
        acc[1][u] = w1.mul_add(x, acc[1][u]);
    }
}

#[inline(always)]
fn store<V: Vector>(acc: [V; 4], out: &mut [f32; HALF]) {
    for (a, lanes) in acc.into_iter().zip(out.as_chunks_mut::<8>().0) {
        a.store(lanes);
    }
}

/// The weight and bias gradients: `∂W[j, i] = Σ g[j]·src[i]`, `∂b[j] = Σ g[j]`, summed over
/// the row (padding holds zero gradients, so it adds nothing). Two rows of `g` and four of
/// `src` at a time: eight accumulators, six loads for eight multiply-adds.
#[inline(always)]
pub(super) fn param_grads<V: Vector>(
    g: &[f32],
    src: &[f32],
    g_weight: &mut [f32],
    g_bias: &mut [f32],
    inp: usize,
    row: usize,
) {
    let vectors = row / 8;
    let src = src.as_chunks::<8>().0;
    let g = g.as_chunks::<8>().0;
    let out = g_bias.len();
    for (j, bias) in g_bias.iter_mut().enumerate() {
        *bias = row_sum::<V>(&g[j * vectors..(j + 1) * vectors]);
    }
    let mut j = 0;
    while j < out {
        let j1 = (j + 1).min(out - 1);
        let rows = [&g[j * vectors..][..vectors], &g[j1 * vectors..][..vectors]];
        let mut i = 0;
        while i < inp {
            let take = (inp - i).min(4);
            let mut sums = [[0f32; 4]; 2];
            match take {
                4 => dots::<V, 4>(rows, &src[i * vectors..], vectors, &mut sums),
                3 => dots::<V, 3>(rows, &src[i * vectors..], vectors, &mut sums),
                2 => dots::<V, 2>(rows, &src[i * vectors..], vectors, &mut sums),
                _ => dots::<V, 1>(rows, &src[i * vectors..], vectors, &mut sums),
            }
            // Element by element: a copy of a run-time length would be a call to `memcpy`.
            for k in 0..take {
                g_weight[j * inp + i + k] = sums[0][k];
                g_weight[j1 * inp + i + k] = sums[(j1 != j) as usize][k];
            }
            i += take;
        }
        j += 2;
    }
}

/// `sums[r][k] = Σ g[r]·src[k]` for the two rows of `g` and the `B` rows of `src` (each
/// `vectors` long, one after another).
#[inline(always)]
fn dots<V: Vector, const B: usize>(
    g: [&[[f32; 8]]; 2],
    src: &[[f32; 8]],
    vectors: usize,
    sums: &mut [[f32; 4]; 2],
) {
    let rows: [&[[f32; 8]]; B] = std::array::from_fn(|k| &src[k * vectors..(k + 1) * vectors]);
    let (g0, g1) = (&g[0][..vectors], &g[1][..vectors]);
    let mut acc = [[V::zero(); B]; 2];
    for c in 0..vectors {
        let (x0, x1) = (V::load(&g0[c]), V::load(&g1[c]));
        for (k, r) in rows.iter().enumerate() {
            let s = V::load(&r[c]);
            acc[0][k] = x0.mul_add(s, acc[0][k]);
            acc[1][k] = x1.mul_add(s, acc[1][k]);
        }
    }
    for (out, acc) in sums.iter_mut().zip(acc) {
        for (o, a) in out.iter_mut().zip(acc) {
            *o = a.sum();
        }
    }
}

/// `Σ g` over a row.
#[inline(always)]
fn row_sum<V: Vector>(g: &[[f32; 8]]) -> f32 {
    let mut acc = [V::zero(); 2];
    for pair in g.chunks(2) {
        for (a, lanes) in acc.iter_mut().zip(pair) {
            *a = a.add(V::load(lanes));
        }
    }
    acc[0].add(acc[1]).sum()
}
