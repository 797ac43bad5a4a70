//! CI without a GPU: every CUDA kernel family (`kernels/*.cu`) is compiled to PTX by NVRTC
//! through the CUDA backend's own compile path (`backend::cuda::compile_family`: cudarc's NVRTC
//! API, loading `libnvrtc.so.12` from NVIDIA's `nvidia-cuda-nvrtc-cu12` wheel), and the PTX is
//! assembled by `ptxas` (`nvidia-cuda-nvcc-cu12`) for a concrete architecture (sm_80), so a
//! kernel that does not compile fails the suite.
//!
//! The tools come from `scripts/fetch_cuda_tools.sh` (into `BEACONS_CUDA_TOOLS`, default
//! `target/cuda-tools`). Without them the tests print SKIPPED and pass, unless
//! `BEACONS_REQUIRE_CUDA_TOOLS` is set (as in CI), where they fail.
#![cfg(feature = "cuda")]

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use beacons::backend::cuda::{compile_family, preload_nvrtc};
use beacons::backend::kernels::{Family, FAMILIES};

/// The architecture the PTX is assembled for (Ampere, e.g. A100).
const ARCH: &str = "sm_80";

fn tools(test: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("BEACONS_CUDA_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| common::root().join("target/cuda-tools"));
    let nvrtc = dir.join("nvidia/cuda_nvrtc/lib/libnvrtc.so.12");
    let ptxas = dir.join("nvidia/cuda_nvcc/bin/ptxas");
    if nvrtc.is_file() && ptxas.is_file() {
        return Some(dir);
    }
    if std::env::var_os("BEACONS_REQUIRE_CUDA_TOOLS").is_some() {
        panic!(
            "{test}: BEACONS_REQUIRE_CUDA_TOOLS is set but NVRTC and ptxas are not in {} \
             (run scripts/fetch_cuda_tools.sh)",
            dir.display()
        );
    }
    eprintln!(
        "SKIPPED {test}: no NVRTC and ptxas in {} (run scripts/fetch_cuda_tools.sh)",
        dir.display()
    );
    None
}

/// Loads the wheel's NVRTC once per process, so that cudarc finds it by its soname.
fn load_nvrtc(dir: &std::path::Path) {
    static LOADED: OnceLock<()> = OnceLock::new();
    LOADED.get_or_init(|| {
        preload_nvrtc(&dir.join("nvidia/cuda_nvrtc/lib/libnvrtc.so.12")).expect("NVRTC loads");
    });
}

#[test]
fn every_kernel_compiles_with_nvrtc_and_assembles_with_ptxas() {
    let Some(dir) = tools("every_kernel_compiles_with_nvrtc_and_assembles_with_ptxas") else {
        return;
    };
    load_nvrtc(&dir);
    let ptxas = dir.join("nvidia/cuda_nvcc/bin/ptxas");
    let out = tempfile::tempdir().unwrap();
    let mut entries = 0;
    for family in FAMILIES {
        let ptx = compile_family(family).unwrap_or_else(|e| panic!("NVRTC: {e}"));
        for name in family.entry_points {
            assert!(
                ptx.contains(&format!(".entry {name}(")),
                "kernels/{}.cu: no entry point {name} in the PTX",
                family.name
            );
            entries += 1;
        }
        // The directed-rounding intrinsics became directed-rounding instructions (every
        // family rounds down; all but concretisation also round up).
        let up_too = family.name != "concretize";
        assert!(
            ptx.contains(".rm.f64") && (!up_too || ptx.contains(".rp.f64")),
            "kernels/{}.cu: no round-down/round-up f64 instructions in the PTX",
            family.name
        );
        let ptx_path = out.path().join(format!("{}.ptx", family.name));
        std::fs::write(&ptx_path, &ptx).unwrap();
        let cubin = out.path().join(format!("{}.cubin", family.name));
        let run = Command::new(&ptxas)
            .arg(format!("-arch={ARCH}"))
            .arg(&ptx_path)
            .arg("-o")
            .arg(&cubin)
            .output()
            .expect("ptxas runs");
        assert!(
            run.status.success(),
            "ptxas -arch={ARCH} kernels/{}.cu: {}",
            family.name,
            String::from_utf8_lossy(&run.stderr)
        );
        assert!(std::fs::metadata(&cubin).unwrap().len() > 0);
    }
    assert_eq!(entries, 6);
}

/// The test can fail: a kernel with an error is refused by NVRTC with its message.
#[test]
fn a_broken_kernel_fails_to_compile() {
    let Some(dir) = tools("a_broken_kernel_fails_to_compile") else {
        return;
    };
    load_nvrtc(&dir);
    let broken = Family {
        name: "broken",
        source: "extern \"C\" __global__ void broken_f64(double* x) { x[0] = undeclared; }",
        entry_points: &["broken_f64"],
    };
    let err = compile_family(&broken).unwrap_err();
    assert!(
        err.contains("kernels/broken.cu") && err.contains("undeclared"),
        "{err}"
    );
}
