//! Helpers shared by the unit tests: where the real MNIST test set lives, and writers of small
//! files in the formats the readers accept.

use std::path::{Path, PathBuf};

/// The folder holding the real MNIST test set (`../shared/data/mnist-t10k` from the project
/// root), read in place and never copied into the repository.
pub(crate) fn mnist_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/mnist-t10k")
}

/// The real MNIST test images.
pub(crate) fn mnist_images() -> PathBuf {
    mnist_dir().join("t10k-images-idx3-ubyte.gz")
}

/// The real MNIST test labels.
pub(crate) fn mnist_labels() -> PathBuf {
    mnist_dir().join("t10k-labels-idx1-ubyte.gz")
}

/// The bytes of an IDX image file with the given header counts and pixels.
pub(crate) fn idx_images(count: u32, rows: u32, cols: u32, pixels: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for v in [0x0000_0803, count, rows, cols] {
        out.extend_from_slice(&u32::to_be_bytes(v));
    }
    out.extend_from_slice(pixels);
    out
}

/// The bytes of an IDX label file holding `labels`.
pub(crate) fn idx_labels(labels: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for v in [0x0000_0801, labels.len() as u32] {
        out.extend_from_slice(&u32::to_be_bytes(v));
    }
    out.extend_from_slice(labels);
    out
}

/// `data` gzip-compressed.
pub(crate) fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let written = enc.write_all(data);
    assert!(written.is_ok());
    enc.finish().unwrap_or_default()
}

/// Writes `data` to `dir/name` and returns the path.
pub(crate) fn write(dir: &Path, name: &str, data: &[u8]) -> PathBuf {
    let path = dir.join(name);
    assert!(std::fs::write(&path, data).is_ok(), "cannot write {}", path.display());
    path
}

/// Serializes tests that use libtorch's global generator (initialisation, dropout, training):
/// the test harness runs tests on parallel threads, and a draw by one test between another's
/// seeding and drawing would break the other's reproducibility.
pub(crate) fn torch_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
