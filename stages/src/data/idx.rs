//! A reader for the IDX format of MNIST and Fashion-MNIST.
//!
//! An IDX file is a big-endian header (a magic number whose third byte is the element type,
//! 0x08 for unsigned bytes, and whose fourth is the number of dimensions, then one `u32` per
//! dimension) followed by the elements. Image files have magic 0x00000803 (count, rows,
//! columns); label files 0x00000801 (count). Files may be gzip-compressed (see [`super::file`]).
//!
//! Every malformed file is reported as an input error that names the file, the byte offset and
//! what was expected there. Sizes claimed by a header are checked against the bytes actually
//! present before anything is allocated for them, so a corrupt header claiming billions of
//! images fails with a message instead of an allocation failure.

use std::path::Path;

use pipeline_engine::stage::StageError;

use super::file::{Bytes, read_maybe_gzip};
use super::images::ImageSet;

/// Magic number of an IDX file of unsigned bytes with three dimensions (images).
const IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic number of an IDX file of unsigned bytes with one dimension (labels).
const LABELS_MAGIC: u32 = 0x0000_0801;

/// Reads an image file and its label file into one set; labels must be below `classes`.
pub(crate) fn read_pair(
    images_path: &Path,
    labels_path: &Path,
    classes: usize,
) -> Result<ImageSet, StageError> {
    let images = read_images(images_path)?;
    let labels = read_labels(labels_path, classes)?;
    if images.count != labels.len() {
        return Err(StageError::input(format!(
            "image and label files disagree: {} holds {} images but {} holds {} labels",
            images_path.display(),
            images.count,
            labels_path.display(),
            labels.len()
        )));
    }
    Ok(ImageSet {
        shape: [1, images.rows, images.cols],
        pixels: images.pixels,
        labels,
    })
}

/// The contents of an IDX image file.
pub(crate) struct IdxImages {
    /// The number of images.
    pub(crate) count: usize,
    /// Rows of each image.
    pub(crate) rows: usize,
    /// Columns of each image.
    pub(crate) cols: usize,
    /// The pixels, image after image, row-major.
    pub(crate) pixels: Vec<u8>,
}

fn read_images(path: &Path) -> Result<IdxImages, StageError> {
    parse_images(read_maybe_gzip(path)?)
}

/// Reads the (unpacked) contents of an IDX image file.
pub(crate) fn parse_images(bytes: Bytes) -> Result<IdxImages, StageError> {
    let dims = header(&bytes, IMAGES_MAGIC)?;
    let [count, rows, cols] = [dims[0], dims[1], dims[2]];
    if rows == 0 || cols == 0 {
        return Err(StageError::input(format!(
            "{}: the header at byte offset 8 gives an image size of {rows}x{cols}, expected \
             rows and columns above 0",
            bytes.describe()
        )));
    }
    let what = format!("pixels ({count} images of {rows}x{cols})");
    let pixels = payload(
        bytes,
        16,
        u128::from(count) * u128::from(rows) * u128::from(cols),
        &what,
    )?;
    Ok(IdxImages {
        count: to_usize(count),
        rows: to_usize(rows),
        cols: to_usize(cols),
        pixels,
    })
}

fn read_labels(path: &Path, classes: usize) -> Result<Vec<u8>, StageError> {
    parse_labels(read_maybe_gzip(path)?, classes)
}

/// Reads the (unpacked) contents of an IDX label file; labels must be below `classes`.
pub(crate) fn parse_labels(bytes: Bytes, classes: usize) -> Result<Vec<u8>, StageError> {
    let dims = header(&bytes, LABELS_MAGIC)?;
    let describe = bytes.describe();
    let labels = payload(
        bytes,
        8,
        u128::from(dims[0]),
        &format!("labels ({} labels)", dims[0]),
    )?;
    if let Some((i, value)) = labels
        .iter()
        .enumerate()
        .find(|(_, v)| usize::from(**v) >= classes)
    {
        return Err(StageError::input(format!(
            "{describe}: label {value} at byte offset {} is out of range, expected 0 to {}",
            8 + i,
            classes.saturating_sub(1)
        )));
    }
    Ok(labels)
}

/// Checks the magic number and returns the dimensions the header declares.
fn header(bytes: &Bytes, magic: u32) -> Result<Vec<u32>, StageError> {
    let found = be_u32(&bytes.data, 0).ok_or_else(|| truncated(bytes, "magic number", 4, 0))?;
    if found != magic {
        return Err(wrong_magic(bytes, found, magic));
    }
    let ndims = (magic & 0xff) as usize;
    (0..ndims)
        .map(|i| {
            be_u32(&bytes.data, 4 + 4 * i)
                .ok_or_else(|| truncated(bytes, "header", (4 + 4 * ndims) as u128, 0))
        })
        .collect()
}

/// Takes exactly `expected` bytes after a header of `start` bytes, refusing short or long data.
fn payload(
    mut bytes: Bytes,
    start: usize,
    expected: u128,
    what: &str,
) -> Result<Vec<u8>, StageError> {
    let available = bytes.data.len().saturating_sub(start) as u128;
    if available < expected {
        return Err(truncated(&bytes, what, expected, start));
    }
    if available > expected {
        return Err(StageError::input(format!(
            "{}: {} unexpected bytes after the {what}, which end at byte offset {}",
            bytes.describe(),
            available - expected,
            start as u128 + expected
        )));
    }
    bytes.data.drain(..start);
    Ok(bytes.data)
}

fn truncated(bytes: &Bytes, what: &str, expected: u128, from: usize) -> StageError {
    StageError::input(format!(
        "{}: truncated file: expected {expected} bytes of {what} from byte offset {from}, but the \
         file ends at byte {}",
        bytes.describe(),
        bytes.data.len()
    ))
}

fn wrong_magic(bytes: &Bytes, found: u32, expected: u32) -> StageError {
    let kind = |m| {
        if m == IMAGES_MAGIC {
            "IDX images"
        } else {
            "IDX labels"
        }
    };
    let hint = match found {
        IMAGES_MAGIC | LABELS_MAGIC => format!("; this is a file of {}", kind(found)),
        _ => String::new(),
    };
    StageError::input(format!(
        "{}: wrong magic number 0x{found:08x} at byte offset 0, expected 0x{expected:08x} ({}: \
         unsigned bytes){hint}",
        bytes.describe(),
        kind(expected)
    ))
}

fn be_u32(data: &[u8], offset: usize) -> Option<u32> {
    let bytes = data.get(offset..offset + 4)?;
    Some(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

/// A header value as `usize`; only called after the data it sizes was found to be present.
fn to_usize(value: u32) -> usize {
    usize::try_from(value).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests;
