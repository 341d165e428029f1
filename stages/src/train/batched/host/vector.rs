//! Eight `f32` lanes as the host trainer's loops use them: AVX2 registers where the processor
//! has AVX2 and FMA, plain arrays elsewhere.
//!
//! The loops are written once against [`Vector`] and compiled twice. Written with arrays of
//! numbers instead, the compiler kept the accumulators on the stack (a load and a store around
//! every multiply-add, a third of the speed); with vector values it keeps them in registers.

/// Eight `f32` lanes.
pub(super) trait Vector: Copy {
    /// All lanes zero.
    fn zero() -> Self;
    /// All lanes `v`.
    fn splat(v: f32) -> Self;
    /// The first eight values of `s` (which has at least eight).
    fn load(s: &[f32]) -> Self;
    /// Writes the lanes into the first eight values of `s`.
    fn store(self, s: &mut [f32]);
    /// `self·b + c`, lane by lane.
    fn mul_add(self, b: Self, c: Self) -> Self;
    /// `self + b`, lane by lane.
    fn add(self, b: Self) -> Self;
    /// The sum of the lanes.
    fn sum(self) -> f32;
}

/// Lanes in plain memory, for processors without AVX2 and FMA (the compiler vectorizes what
/// it can for the baseline instruction set).
#[derive(Clone, Copy)]
pub(super) struct Portable([f32; 8]);

impl Vector for Portable {
    #[inline(always)]
    fn zero() -> Self {
        Self([0.0; 8])
    }

    #[inline(always)]
    fn splat(v: f32) -> Self {
        Self([v; 8])
    }

    #[inline(always)]
    fn load(s: &[f32]) -> Self {
        let mut lanes = [0.0; 8];
        lanes.copy_from_slice(&s[..8]);
        Self(lanes)
    }

    #[inline(always)]
    fn store(self, s: &mut [f32]) {
        s[..8].copy_from_slice(&self.0);
    }

    #[inline(always)]
    fn mul_add(self, b: Self, c: Self) -> Self {
        let mut lanes = c.0;
        for ((r, a), b) in lanes.iter_mut().zip(self.0).zip(b.0) {
            *r += a * b;
        }
        Self(lanes)
    }

    #[inline(always)]
    fn add(self, b: Self) -> Self {
        let mut lanes = self.0;
        for (r, b) in lanes.iter_mut().zip(b.0) {
            *r += b;
        }
        Self(lanes)
    }

    #[inline(always)]
    fn sum(self) -> f32 {
        let l = self.0;
        ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]))
    }
}

#[cfg(target_arch = "x86_64")]
pub(super) use avx2::Avx2;

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::{
        __m256, _mm_add_ps, _mm_add_ss, _mm_cvtss_f32, _mm_movehl_ps, _mm_shuffle_ps,
        _mm256_add_ps, _mm256_castps256_ps128, _mm256_extractf128_ps, _mm256_fmadd_ps,
        _mm256_loadu_ps, _mm256_set1_ps, _mm256_setzero_ps, _mm256_storeu_ps,
    };

    use super::Vector;

    /// One AVX2 register.
    ///
    /// Only ever used inside functions compiled with `#[target_feature(enable = "avx2,fma")]`
    /// that are called after `is_x86_feature_detected!` saw both features (the methods are
    /// inlined into them); that is what makes the intrinsics below sound to call. Loads and
    /// stores index the slice first, so they never touch memory outside it.
    #[derive(Clone, Copy)]
    pub(in super::super) struct Avx2(__m256);

    impl Vector for Avx2 {
        #[inline(always)]
        fn zero() -> Self {
            // SAFETY: AVX is present (see the type's documentation).
            Self(unsafe { _mm256_setzero_ps() })
        }

        #[inline(always)]
        fn splat(v: f32) -> Self {
            // SAFETY: AVX is present (see the type's documentation).
            Self(unsafe { _mm256_set1_ps(v) })
        }

        #[inline(always)]
        fn load(s: &[f32]) -> Self {
            let s = &s[..8];
            // SAFETY: `s` has eight values; unaligned loads are allowed; AVX is present.
            Self(unsafe { _mm256_loadu_ps(s.as_ptr()) })
        }

        #[inline(always)]
        fn store(self, s: &mut [f32]) {
            let s = &mut s[..8];
            // SAFETY: `s` has room for eight values; AVX is present.
            unsafe { _mm256_storeu_ps(s.as_mut_ptr(), self.0) }
        }

        #[inline(always)]
        fn mul_add(self, b: Self, c: Self) -> Self {
            // SAFETY: FMA is present (see the type's documentation).
            Self(unsafe { _mm256_fmadd_ps(self.0, b.0, c.0) })
        }

        #[inline(always)]
        fn add(self, b: Self) -> Self {
            // SAFETY: AVX is present (see the type's documentation).
            Self(unsafe { _mm256_add_ps(self.0, b.0) })
        }

        #[inline(always)]
        fn sum(self) -> f32 {
            // SAFETY: AVX is present (see the type's documentation).
            unsafe {
                let halves = _mm_add_ps(
                    _mm256_castps256_ps128(self.0),
                    _mm256_extractf128_ps::<1>(self.0),
                );
                let pairs = _mm_add_ps(halves, _mm_movehl_ps(halves, halves));
                let one = _mm_add_ss(pairs, _mm_shuffle_ps::<0b01>(pairs, pairs));
                _mm_cvtss_f32(one)
            }
        }
    }
}
