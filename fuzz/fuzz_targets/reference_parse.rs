//! Coverage-guided fuzzing of reference-model files (TOML and the expression language of
//! `beacons error-bound`): any text must load or fail with a located error, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = beacons::errbound::reference::parse(text, std::path::Path::new("fuzz.toml"));
    }
});
