//! The presented-key path of `verify`: Bearer/Authorization forms, then the key
//! format and checksum. Must never panic; a parsed key must re-assemble identically.
#![no_main]

use keyctl::core::key;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let presented = key::strip_bearer(text);
    if let Ok(parsed) = key::parse(presented) {
        let body = &parsed.body[..key::RANDOM_LEN];
        let again = key::assemble(parsed.prefix, parsed.mode, body);
        assert_eq!(again.expose(), presented);
    }
});
