//! The CUDA sources of the kernels (`kernels/*.cu`, one family per file), embedded in the
//! binary: what NVRTC compiles at run time, what CI compiles to PTX and assembles with
//! `ptxas`, and what the host emulator (`emu/`) compiles as C++.

/// Constants and NaN rules shared by every family (`kernels/rounding.cuh`), prepended to each.
pub const PRELUDE: &str = include_str!("../../kernels/rounding.cuh");

/// A kernel family: one `.cu` file and the entry points it defines.
#[derive(Clone, Copy, Debug)]
pub struct Family {
    pub name: &'static str,
    pub source: &'static str,
    pub entry_points: &'static [&'static str],
}

/// Every family, in the order the backend loads them.
pub const FAMILIES: &[Family] = &[
    Family {
        name: "affine",
        source: include_str!("../../kernels/affine.cu"),
        entry_points: &[
            "affine_interval_f64",
            "matmul_f64",
            "abs_matvec_up_f64",
            "dot_with_error_f64",
        ],
    },
    Family {
        name: "relax",
        source: include_str!("../../kernels/relax.cu"),
        entry_points: &["relax_rows_f64"],
    },
    Family {
        name: "concretize",
        source: include_str!("../../kernels/concretize.cu"),
        entry_points: &["concretize_f64"],
    },
];

impl Family {
    /// The full translation unit NVRTC compiles: the prelude, then the family.
    pub fn unit(&self) -> String {
        format!("{PRELUDE}\n{}", self.source)
    }
}
