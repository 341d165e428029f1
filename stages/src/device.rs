//! Maps the engine's device class to a libtorch device, failing cleanly where there is none.
//!
//! The engine resolves `auto` before a stage runs, so a stage that is asked for CUDA on a
//! machine without it is an environment problem to report, not something to fall back from
//! silently (CPU and CUDA results differ, and the device class is part of the cache key).

use pipeline_engine::stage::{Device, StageError};

/// The libtorch device for `device`, or an environment error when CUDA is asked for and absent.
pub(crate) fn torch_device(device: Device) -> Result<tch::Device, StageError> {
    match device {
        Device::Cpu => Ok(tch::Device::Cpu),
        Device::Cuda if tch::Cuda::is_available() => Ok(tch::Device::Cuda(0)),
        Device::Cuda => Err(StageError::environment(
            "the stage was asked to run on CUDA, but no CUDA device is available (no visible \
             GPU, or libtorch was built without CUDA); run it with `device: cpu`",
        )),
    }
}

/// Sets libtorch's process-wide intra-op thread count and global seed at the start of a stage.
pub(crate) fn init_torch(threads: usize, seed: u64) {
    let threads = i32::try_from(threads.max(1)).unwrap_or(i32::MAX);
    tch::set_num_threads(threads);
    tch::manual_seed(i64::from_ne_bytes(seed.to_ne_bytes()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_is_always_available() {
        assert_eq!(torch_device(Device::Cpu).ok(), Some(tch::Device::Cpu));
    }

    #[test]
    fn missing_cuda_is_an_environment_error() {
        if !tch::Cuda::is_available() {
            let err = torch_device(Device::Cuda).err().map(|e| e.message);
            assert!(err.is_some_and(|m| m.contains("no CUDA device")));
        }
    }
}
