//! A dense layer's forward pass and gradients on feature-major buffers (`features × row`,
//! `row` a multiple of [`ROW_BLOCK`]), written against [`Vector`] so that each loop keeps
//! eight independent accumulators in flight.
//!
//! Rows are viewed as arrays of fixed-size blocks (`as_chunks`), so that the compiler knows
//! every block's length and checks an index once per block instead of once per load.

use super::vector::Vector;

/// Examples per block of the forward pass: eight vectors of eight.
pub(super) const ROW_BLOCK: usize = 64;

/// Examples per block of the weight gradients: two vectors of eight.
const DOT_BLOCK: usize = 16;

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
    let blocks = row / ROW_BLOCK;
    let src = src.as_chunks::<ROW_BLOCK>().0;
    let (dst, _) = dst.as_chunks_mut::<ROW_BLOCK>();
    for (j, (dst_row, &bias)) in dst.chunks_exact_mut(blocks).zip(b).enumerate() {
        let weights = &w[j * inp..(j + 1) * inp];
        for (c, out) in dst_row.iter_mut().enumerate() {
            let mut acc = [V::splat(bias); 8];
            for (i, &wv) in weights.iter().enumerate() {
                multiply_add(&mut acc, V::splat(wv), &src[i * blocks + c]);
            }
            store(acc, out);
        }
    }
}

/// The gradient with respect to the layer's input: `dst[i] = Σⱼ w[j, i]·g[j]`.
#[inline(always)]
pub(super) fn input_grad<V: Vector>(w: &[f32], g: &[f32], dst: &mut [f32], inp: usize, row: usize) {
    let blocks = row / ROW_BLOCK;
    let g = g.as_chunks::<ROW_BLOCK>().0;
    let out = g.len() / blocks.max(1);
    let (dst, _) = dst.as_chunks_mut::<ROW_BLOCK>();
    for (i, dst_row) in dst.chunks_exact_mut(blocks).enumerate() {
        for (c, block) in dst_row.iter_mut().enumerate() {
            let mut acc = [V::zero(); 8];
            for j in 0..out {
                multiply_add(&mut acc, V::splat(w[j * inp + i]), &g[j * blocks + c]);
            }
            store(acc, block);
        }
    }
}

/// `acc[u] += w·s[8u..8u + 8]`.
#[inline(always)]
fn multiply_add<V: Vector>(acc: &mut [V; 8], w: V, s: &[f32; ROW_BLOCK]) {
    for (a, lanes) in acc.iter_mut().zip(s.as_chunks::<8>().0) {
        *a = w.mul_add(V::load(lanes), *a);
    }
}

#[inline(always)]
fn store<V: Vector>(acc: [V; 8], out: &mut [f32; ROW_BLOCK]) {
    for (a, lanes) in acc.into_iter().zip(out.as_chunks_mut::<8>().0) {
        a.store(lanes);
    }
}

/// The weight and bias gradients: `∂W[j, i] = Σ g[j]·src[i]`, `∂b[j] = Σ g[j]`, summed over
/// the row (padding holds zero gradients, so it adds nothing).
#[inline(always)]
pub(super) fn param_grads<V: Vector>(
    g: &[f32],
    src: &[f32],
    g_weight: &mut [f32],
    g_bias: &mut [f32],
    inp: usize,
    row: usize,
) {
    let blocks = row / DOT_BLOCK;
    let src = src.as_chunks::<DOT_BLOCK>().0;
    let g = g.as_chunks::<DOT_BLOCK>().0;
    for (j, (g_row, bias)) in g.chunks_exact(blocks).zip(g_bias).enumerate() {
        *bias = row_sum::<V>(g_row);
        let g_w = &mut g_weight[j * inp..(j + 1) * inp];
        let mut i = 0;
        while i + 4 <= inp {
            dots::<V, 4>(
                g_row,
                &src[i * blocks..(i + 4) * blocks],
                &mut g_w[i..i + 4],
            );
            i += 4;
        }
        if i + 2 <= inp {
            dots::<V, 2>(
                g_row,
                &src[i * blocks..(i + 2) * blocks],
                &mut g_w[i..i + 2],
            );
            i += 2;
        }
        if i < inp {
            dots::<V, 1>(
                g_row,
                &src[i * blocks..(i + 1) * blocks],
                &mut g_w[i..i + 1],
            );
        }
    }
}

/// `out[k] = Σ g·src[k]` for the `B` rows of `src` (each as long as `g`), two accumulators
/// per row.
#[inline(always)]
fn dots<V: Vector, const B: usize>(
    g: &[[f32; DOT_BLOCK]],
    src: &[[f32; DOT_BLOCK]],
    out: &mut [f32],
) {
    let n = g.len();
    let rows: [&[[f32; DOT_BLOCK]]; B] = std::array::from_fn(|k| &src[k * n..(k + 1) * n]);
    let mut acc = [[V::zero(); 2]; B];
    for (c, gc) in g.iter().enumerate() {
        let (g0, g1) = (V::load(&gc[..8]), V::load(&gc[8..]));
        for (a, r) in acc.iter_mut().zip(&rows) {
            let s = &r[c];
            a[0] = g0.mul_add(V::load(&s[..8]), a[0]);
            a[1] = g1.mul_add(V::load(&s[8..]), a[1]);
        }
    }
    for (o, a) in out.iter_mut().zip(acc) {
        *o = a[0].add(a[1]).sum();
    }
}

/// `Σ g` over a row.
#[inline(always)]
fn row_sum<V: Vector>(g: &[[f32; DOT_BLOCK]]) -> f32 {
    let (mut a, mut b) = (V::zero(), V::zero());
    for gc in g {
        a = a.add(V::load(&gc[..8]));
        b = b.add(V::load(&gc[8..]));
    }
    a.add(b).sum()
}
