//! Coverage-guided fuzzing of the ONNX importer: any byte string must load or fail with an
//! error, never panic, overflow or hang.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = beacons::ir::onnx::load_bytes(data, std::path::Path::new("fuzz.onnx"));
});
