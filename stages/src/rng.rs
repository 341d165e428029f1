//! A small seeded random generator for the order in which training examples are visited.
//!
//! libtorch's generator is global and its stream depends on every random operation before
//! (initialisation, dropout), so the data order gets its own generator: SplitMix64, whose whole
//! state is one `u64` that can be saved with a checkpoint and restored to resume a run exactly.

/// SplitMix64 (Steele, Lea and Flood, 2014): a 64-bit state advanced by a fixed odd constant
/// and scrambled on output. Fast, statistically sound for shuffling, trivially serialisable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator whose stream is determined by `seed`.
    pub(crate) fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The whole state; `SplitMix64::new(g.state())` continues exactly where `g` is.
    pub(crate) fn state(&self) -> u64 {
        self.state
    }

    /// The next 64 random bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A uniform integer in `0..n` without modulo bias (Lemire's multiply-and-reject); `n > 0`.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        let mut product = u128::from(self.next_u64()) * u128::from(n);
        let threshold = n.wrapping_neg() % n;
        while (product as u64) < threshold {
            product = u128::from(self.next_u64()) * u128::from(n);
        }
        (product >> 64) as u64
    }

    /// Fills `order` with a uniformly random permutation of `0..order.len()` (Fisher-Yates).
    pub(crate) fn shuffle_into(&mut self, order: &mut [i64]) {
        for (i, slot) in order.iter_mut().enumerate() {
            *slot = i as i64;
        }
        for i in (1..order.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            order.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_reference_stream() {
        // First outputs of SplitMix64 seeded with 1234567, as published with the algorithm.
        let mut rng = SplitMix64::new(1_234_567);
        assert_eq!(rng.next_u64(), 6_457_827_717_110_365_317);
        assert_eq!(rng.next_u64(), 3_203_168_211_198_807_973);
    }

    #[test]
    fn below_stays_in_range_and_covers_it() {
        let mut rng = SplitMix64::new(7);
        let mut seen = [false; 5];
        for _ in 0..200 {
            let v = rng.below(5);
            assert!(v < 5);
            seen[v as usize] = true;
        }
        assert!(seen.iter().all(|s| *s));
    }

    #[test]
    fn shuffle_is_a_permutation_and_reproducible() {
        let mut a = vec![0; 100];
        let mut b = vec![0; 100];
        SplitMix64::new(3).shuffle_into(&mut a);
        SplitMix64::new(3).shuffle_into(&mut b);
        assert_eq!(a, b);
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..100).collect::<Vec<i64>>());
        assert_ne!(a, sorted);
    }
}
