//! Per-channel mean and standard deviation of `u8` images, computed exactly.
//!
//! The normalization a data set prescribes is computed on its training split. Summing floats
//! would make the result depend on summation order (and so on thread counts); a histogram of
//! the 256 pixel values per channel gives exact integer sums instead, so the statistics, and
//! the data set file that records them, are the same on every machine.

use super::images::ImageSet;

/// Mean and population standard deviation of `pixel / 255` for each channel; a channel with
/// no variation gets a standard deviation of 1 so that standardizing it is a no-op shift.
pub(crate) fn channel_stats(set: &ImageSet) -> (Vec<f64>, Vec<f64>) {
    let histograms = histograms(set);
    histograms.iter().map(mean_std).unzip()
}

fn histograms(set: &ImageSet) -> Vec<[u64; 256]> {
    let [channels, height, width] = set.shape;
    let plane = height * width;
    let mut histograms = vec![[0u64; 256]; channels];
    if plane == 0 {
        return histograms;
    }
    for image in set.pixels.chunks_exact(channels * plane) {
        for (channel, values) in image.chunks_exact(plane).enumerate() {
            let histogram = &mut histograms[channel];
            for &v in values {
                histogram[usize::from(v)] += 1;
            }
        }
    }
    histograms
}

fn mean_std(histogram: &[u64; 256]) -> (f64, f64) {
    let (mut n, mut s1, mut s2) = (0u128, 0u128, 0u128);
    for (value, &count) in histogram.iter().enumerate() {
        let (v, c) = (value as u128, u128::from(count));
        n += c;
        s1 += v * c;
        s2 += v * v * c;
    }
    if n == 0 {
        return (0.0, 1.0);
    }
    let mean = s1 as f64 / (n as f64 * 255.0);
    // n·Σv² − (Σv)² is n² times the variance of the raw values, exactly.
    let scaled_var = (n * s2 - s1 * s1) as f64 / (n as f64 * n as f64);
    let std = scaled_var.sqrt() / 255.0;
    (mean, if std > 0.0 { std } else { 1.0 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_channel_statistics_are_exact() {
        // Two 1x2 images with two channels: channel 0 holds 0, 255, 0, 255; channel 1 holds 51.
        let set = ImageSet {
            shape: [2, 1, 2],
            pixels: vec![0, 255, 51, 51, 0, 255, 51, 51],
            labels: vec![0, 0],
        };
        let (mean, std) = channel_stats(&set);
        assert_eq!(mean, vec![0.5, 0.2]);
        assert_eq!(std, vec![0.5, 1.0]);
    }
}
