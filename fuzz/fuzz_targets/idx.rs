//! The IDX reader (MNIST): image and label files, raw and gzip-compressed.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = pipeline_stages::fuzzing::idx(data);
});
