//! The CIFAR-10 reader: one binary batch file.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = pipeline_stages::fuzzing::cifar(data);
});
