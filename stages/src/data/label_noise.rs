//! Random labels for the memorization experiment: a seeded subset of training labels
//! replaced with classes drawn uniformly.
//!
//! The subset is the head of a seeded permutation, so its size is exactly the one asked for
//! (not a per-example coin flip, whose count varies), and the new labels come from the same
//! generator after it. Both are drawn with this crate's own [`SplitMix64`], whose stream is
//! fixed by the seed alone and is the same on every device.

use crate::data::dataset::LabelNoise;
use crate::rng::SplitMix64;

/// Replaces `round(fraction × labels.len())` of `labels` with classes drawn uniformly from
/// `0..classes` (`classes > 0`), and says what was done.
pub(crate) fn randomize(
    labels: &mut [i64],
    classes: usize,
    fraction: f64,
    seed: u64,
) -> LabelNoise {
    let replaced = ((fraction * labels.len() as f64).round() as usize).min(labels.len());
    let mut rng = SplitMix64::new(seed);
    let mut order = vec![0i64; labels.len()];
    rng.shuffle_into(&mut order);
    let mut changed = 0;
    for &i in &order[..replaced] {
        let label = rng.below(classes as u64) as i64;
        let slot = &mut labels[i as usize];
        changed += usize::from(*slot != label);
        *slot = label;
    }
    LabelNoise {
        fraction,
        seed,
        replaced,
        changed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_the_asked_count_is_replaced_and_the_rest_kept() {
        let truth: Vec<i64> = (0..1000).map(|i| i % 10).collect();
        let mut labels = truth.clone();
        let noise = randomize(&mut labels, 10, 0.25, 3);
        assert_eq!(noise.replaced, 250);
        let differ = labels.iter().zip(&truth).filter(|(a, b)| a != b).count();
        assert_eq!(differ, noise.changed);
        assert!((200..=250).contains(&differ), "{differ}");
        assert!(labels.iter().all(|l| (0..10).contains(l)));
        let mut again = truth.clone();
        assert_eq!(randomize(&mut again, 10, 0.25, 3), noise);
        assert_eq!(again, labels);
    }

    #[test]
    fn rounding_and_the_ends() {
        let mut labels = vec![0i64; 7];
        assert_eq!(randomize(&mut labels, 2, 0.5, 1).replaced, 4);
        let mut labels = vec![1i64; 7];
        let noise = randomize(&mut labels, 2, 0.0, 1);
        assert_eq!((noise.replaced, noise.changed), (0, 0));
        assert_eq!(labels, [1; 7]);
        assert_eq!(randomize(&mut labels, 2, 1.0, 1).replaced, 7);
    }
}
