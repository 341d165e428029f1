//! Pipeline files: arbitrary bytes through the parser and validator with every real stage
//! kind, as written and with the `--set` overrides of their `#set ` lines.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    pipeline_kinds::fuzzing::parse_pipeline(data);
});
