//! Compiles `kernels/*.cu` as C++20 on the host against `kernels/emu/cuda_shim.h`
//! (`src/launch.cpp` includes them), with -frounding-math so that the directed-rounding
//! intrinsics of the shim are not folded across their rounding-mode switches.

fn main() {
    let kernels = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../kernels");
    println!("cargo:rerun-if-changed=src/launch.cpp");
    println!("cargo:rerun-if-changed={}", kernels.display());
    for entry in std::fs::read_dir(&kernels).expect("kernels/ is beside emu/") {
        let path = entry.expect("readable kernels/").path();
        println!("cargo:rerun-if-changed={}", path.display());
    }
    println!(
        "cargo:rerun-if-changed={}",
        kernels.join("emu/cuda_shim.h").display()
    );
    cc::Build::new()
        .cpp(true)
        .std("c++20")
        .include(&kernels)
        .file("src/launch.cpp")
        .flag("-frounding-math")
        .flag("-fno-fast-math")
        .flag("-pthread")
        .opt_level(2)
        .warnings(true)
        .compile("beacons_emu");
    println!("cargo:rustc-link-lib=pthread");
}
