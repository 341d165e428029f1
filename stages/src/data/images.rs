//! Labelled images held in memory between a file reader and the data set writer.
//!
//! Readers (IDX, CIFAR-10) produce an [`ImageSet`]; the `images` stage cuts it into splits and
//! subsets and hands it to the data set writer. Pixels stay `u8` in channel-major order
//! (`[N, C, H, W]`), exactly as both formats store them, so nothing is converted twice.

use std::ops::Range;

/// Images of one shape with one class label each.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ImageSet {
    /// Channels, height, width of every image.
    pub(crate) shape: [usize; 3],
    /// `len() * C * H * W` pixels, image after image, channel-major within an image.
    pub(crate) pixels: Vec<u8>,
    /// One class per image.
    pub(crate) labels: Vec<u8>,
}

impl ImageSet {
    /// The number of images.
    pub(crate) fn len(&self) -> usize {
        self.labels.len()
    }

    /// Pixels per image.
    pub(crate) fn image_size(&self) -> usize {
        self.shape.iter().product()
    }

    /// The images in `range` (which the caller has checked against [`ImageSet::len`]).
    pub(crate) fn slice(&self, range: Range<usize>) -> ImageSet {
        let size = self.image_size();
        ImageSet {
            shape: self.shape,
            pixels: self.pixels[range.start * size..range.end * size].to_vec(),
            labels: self.labels[range].to_vec(),
        }
    }

    /// Keeps the first `n` images (all of them when there are fewer).
    pub(crate) fn truncate(&mut self, n: usize) {
        let n = n.min(self.len());
        self.pixels.truncate(n * self.image_size());
        self.labels.truncate(n);
    }

    /// How many images carry each label `0..classes`.
    #[cfg(test)]
    pub(crate) fn class_counts(&self, classes: usize) -> Vec<usize> {
        let mut counts = vec![0; classes];
        for &label in &self.labels {
            if let Some(c) = counts.get_mut(usize::from(label)) {
                *c += 1;
            }
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn three() -> ImageSet {
        ImageSet {
            shape: [1, 1, 2],
            pixels: vec![1, 2, 3, 4, 5, 6],
            labels: vec![0, 1, 1],
        }
    }

    #[test]
    fn slice_and_truncate_keep_pixels_and_labels_together() {
        let set = three();
        let tail = set.slice(1..3);
        assert_eq!(tail.pixels, vec![3, 4, 5, 6]);
        assert_eq!(tail.labels, vec![1, 1]);
        let mut head = set.clone();
        head.truncate(1);
        assert_eq!((head.pixels, head.labels), (vec![1, 2], vec![0]));
        assert_eq!(set.class_counts(3), vec![1, 2, 0]);
    }
}
