//! Coverage-guided fuzzing of the NNet parser: any text must parse or fail with a located
//! error, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = beacons::ir::nnet::parse(text, std::path::Path::new("fuzz.nnet"));
    }
});
