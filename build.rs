//! Compiles `proto/onnx.proto` (the subset of the ONNX schema beacons reads) into Rust types with
//! `prost`, using `protox` as a pure-Rust protobuf compiler so no system `protoc` is needed.

fn main() {
    println!("cargo:rerun-if-changed=proto/onnx.proto");
    let fds = protox::compile(["proto/onnx.proto"], ["proto"]).expect("proto/onnx.proto compiles");
    prost_build::Config::new()
        .compile_fds(fds)
        .expect("prost generates the ONNX types");
}
