//! Reading a data file into memory, unpacking gzip when the file starts with gzip's magic.
//!
//! Compression is detected from the first two bytes (0x1f 0x8b), never from the file name:
//! users rename files, and MNIST mirrors ship both packed and unpacked copies under the same
//! names. Errors name the file; offsets reported by the format readers are offsets into the
//! unpacked bytes, which [`Bytes::describe`] makes explicit.

use std::io::Read;
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;
use pipeline_engine::stage::StageError;

/// The contents of a data file, unpacked if it was gzip-compressed.
pub(crate) struct Bytes {
    /// The file the bytes came from.
    pub(crate) path: PathBuf,
    /// The (unpacked) contents.
    pub(crate) data: Vec<u8>,
    /// Whether the file was gzip-compressed.
    pub(crate) gzipped: bool,
}

impl Bytes {
    /// The file's name for messages, saying when offsets refer to the unpacked data.
    pub(crate) fn describe(&self) -> String {
        if self.gzipped {
            format!("{} (offsets in the unpacked data)", self.path.display())
        } else {
            self.path.display().to_string()
        }
    }
}

/// Reads `path` whole, unpacking it if it is gzip-compressed. A missing file is an
/// environment error; corrupt compressed data is an input error.
pub(crate) fn read_maybe_gzip(path: &Path) -> Result<Bytes, StageError> {
    unpack_maybe_gzip(path, read_raw(path)?)
}

/// Unpacks `raw`, the contents of `path`, if it is gzip-compressed; corrupt compressed data is
/// an input error naming `path`.
pub(crate) fn unpack_maybe_gzip(path: &Path, raw: Vec<u8>) -> Result<Bytes, StageError> {
    if !raw.starts_with(&[0x1f, 0x8b]) {
        return Ok(Bytes {
            path: path.to_owned(),
            data: raw,
            gzipped: false,
        });
    }
    let mut data = Vec::new();
    MultiGzDecoder::new(raw.as_slice())
        .read_to_end(&mut data)
        .map_err(|err| {
            StageError::input(format!(
                "{}: corrupt gzip data (the file starts with gzip's magic bytes 0x1f 0x8b but does \
             not unpack)",
                path.display()
            ))
            .caused_by(&err)
        })?;
    Ok(Bytes {
        path: path.to_owned(),
        data,
        gzipped: true,
    })
}

/// Reads `path` whole; a missing file is an environment error naming the path.
pub(crate) fn read_raw(path: &Path) -> Result<Vec<u8>, StageError> {
    std::fs::read(path).map_err(|err| {
        if err.kind() == std::io::ErrorKind::NotFound {
            StageError::environment(format!("data file {} does not exist", path.display()))
        } else {
            StageError::io("read", path, &err)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression;
    use flate2::write::GzEncoder;
    use pipeline_engine::stage::ErrorClass;
    use std::io::Write;

    #[test]
    fn gzip_is_detected_by_content_not_name() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let packed = dir.path().join("plain-name.bin");
        let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
        enc.write_all(b"hello")?;
        std::fs::write(&packed, enc.finish()?)?;
        let bytes = read_maybe_gzip(&packed)?;
        assert!(bytes.gzipped);
        assert_eq!(bytes.data, b"hello");
        let raw = dir.path().join("looks-packed.gz");
        std::fs::write(&raw, b"hello")?;
        let bytes = read_maybe_gzip(&raw)?;
        assert!(!bytes.gzipped);
        assert_eq!(bytes.data, b"hello");
        Ok(())
    }

    #[test]
    fn corrupt_gzip_is_an_input_error_naming_the_file() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("broken.gz");
        std::fs::write(&path, [0x1f, 0x8b, 8, 0, 1, 2, 3])?;
        let err = read_maybe_gzip(&path).err().ok_or("expected an error")?;
        assert_eq!(err.class, ErrorClass::Input);
        assert!(err.message.contains("broken.gz") && err.message.contains("corrupt gzip"));
        Ok(())
    }

    #[test]
    fn missing_file_is_an_environment_error_naming_the_path() {
        let err = read_raw(Path::new("/nonexistent/dir/file.bin")).err();
        assert_eq!(err.as_ref().map(|e| e.class), Some(ErrorClass::Environment));
        assert!(err.is_some_and(|e| e.message.contains("/nonexistent/dir/file.bin")));
    }
}
