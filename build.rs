//! Compiles `proto/onnx.proto` (the subset of the ONNX schema beacons reads) into Rust types with
//! `prost`, using `protox` as a pure-Rust protobuf compiler so no system `protoc` is needed; and
//! records the git commit beacons is built from (`BEACONS_GIT_COMMIT`, shown in gate reports;
//! "unknown" outside a git checkout).

fn main() {
    println!("cargo:rerun-if-changed=proto/onnx.proto");
    let fds = protox::compile(["proto/onnx.proto"], ["proto"]).expect("proto/onnx.proto compiles");
    prost_build::Config::new()
        .compile_fds(fds)
        .expect("prost generates the ONNX types");

    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=BEACONS_GIT_COMMIT={commit}");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs/heads");
}
