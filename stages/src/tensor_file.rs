//! Reading and writing named tensors as safetensors files, with errors that name the file.
//!
//! Data sets and checkpoints are both safetensors files. Writing moves tensors to the CPU and
//! makes them contiguous first (tch's writer accepts neither GPU nor strided tensors), and the
//! format orders tensors by dtype and name, so the same tensors always give the same bytes.
//! Reading returns the tensors by name, because the file's own order is not meaningful.

use std::collections::BTreeMap;
use std::path::Path;

use pipeline_engine::stage::StageError;
use tch::Tensor;

use crate::error::TchContext;

/// Writes `tensors` to `path` (their values only: no autograd history is kept).
pub(crate) fn write_tensors(path: &Path, tensors: &[(String, &Tensor)]) -> Result<(), StageError> {
    let host: Vec<(&str, Tensor)> = tensors
        .iter()
        .map(|(name, t)| Ok((name.as_str(), host_copy(t)?)))
        .collect::<Result<_, StageError>>()?;
    Tensor::write_safetensors(&host, path).map_err(|err| {
        StageError::environment(format!("cannot write {}", path.display())).caused_by(&err)
    })
}

/// A detached, contiguous CPU tensor with the values of `t`.
fn host_copy(t: &Tensor) -> Result<Tensor, StageError> {
    t.f_detach()
        .and_then(|t| t.f_to_device(tch::Device::Cpu))
        .and_then(|t| t.f_contiguous())
        .ctx("copying a tensor to the host for writing")
}

/// Reads every tensor of the safetensors file at `path`, by name. A missing file is an
/// environment error; an unreadable one an input error naming it.
pub(crate) fn read_tensors(path: &Path) -> Result<BTreeMap<String, Tensor>, StageError> {
    if !path.is_file() {
        return Err(StageError::environment(format!(
            "{} does not exist",
            path.display()
        )));
    }
    let tensors = Tensor::read_safetensors(path).map_err(|err| {
        StageError::input(format!(
            "{} is not a readable safetensors file",
            path.display()
        ))
        .caused_by(&err)
    })?;
    Ok(tensors.into_iter().collect())
}

/// Takes the tensor `name` out of `tensors`, checking its dtype and shape; errors name `path`.
pub(crate) fn take_checked(
    tensors: &mut BTreeMap<String, Tensor>,
    path: &Path,
    name: &str,
    kind: tch::Kind,
    shape: &[i64],
) -> Result<Tensor, StageError> {
    let tensor = tensors.remove(name).ok_or_else(|| {
        let names: Vec<&str> = tensors.keys().map(String::as_str).collect();
        StageError::input(format!(
            "{}: no tensor `{name}` (it holds: {})",
            path.display(),
            names.join(", ")
        ))
    })?;
    if tensor.kind() != kind || tensor.size() != shape {
        return Err(StageError::input(format!(
            "{}: tensor `{name}` is {:?} {:?}, expected {kind:?} {shape:?}",
            path.display(),
            tensor.kind(),
            tensor.size()
        )));
    }
    Ok(tensor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pipeline_engine::stage::ErrorClass;

    #[test]
    fn round_trip_and_checked_take() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("t.safetensors");
        let a = Tensor::from_slice(&[1.0f32, 2.0, 3.0, 4.0])
            .view([2, 2])
            .transpose(0, 1);
        write_tensors(&path, &[("a".to_owned(), &a)])?;
        let mut read = read_tensors(&path)?;
        let wrong = take_checked(&mut read, &path, "a", tch::Kind::Float, &[4]);
        assert!(
            wrong
                .err()
                .is_some_and(|e| e.message.contains("expected Float [4]"))
        );
        let mut read = read_tensors(&path)?;
        let back = take_checked(&mut read, &path, "a", tch::Kind::Float, &[2, 2])?;
        assert_eq!(
            Vec::<f32>::try_from(back.view([4]))?,
            vec![1.0, 3.0, 2.0, 4.0]
        );
        let missing = take_checked(&mut read, &path, "b", tch::Kind::Float, &[4]).err();
        assert!(missing.is_some_and(|e| e.class == ErrorClass::Input && e.message.contains("`b`")));
        Ok(())
    }

    #[test]
    fn garbage_is_an_input_error_naming_the_file() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("junk.safetensors");
        std::fs::write(&path, b"not a tensor file")?;
        let err = read_tensors(&path).err().ok_or("expected an error")?;
        assert_eq!(err.class, ErrorClass::Input);
        assert!(err.message.contains("junk.safetensors"));
        Ok(())
    }
}
