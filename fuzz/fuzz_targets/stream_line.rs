//! One `verify --stream` request line (NDJSON). Must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    keyctl::commands::fuzz_stream_line(data);
});
