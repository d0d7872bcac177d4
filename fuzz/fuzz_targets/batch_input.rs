//! `create --batch` input (NDJSON of create fields), parsed and validated. Must never
//! panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    keyctl::commands::fuzz_batch_input(data);
});
