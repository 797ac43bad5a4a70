//! Test tool: beacons' CUDA kernels (`kernels/*.cu`) compiled as C++ on the host against the
//! shim `kernels/emu/cuda_shim.h`, with safe wrappers over their launches.
//!
//! What comes in: the same flat row-major arrays and the same grid and block shapes the CUDA
//! backend passes to the GPU. What goes out: what the kernels write. The launches run block
//! after block on the host (threads of a block as OS threads where the kernel synchronises),
//! and the directed-rounding intrinsics are exact (see the shim), so a test of the emulated
//! kernels tests the kernel sources themselves, without a GPU. Never a production backend.
//!
//! Every wrapper checks the lengths of its slices against the sizes it is given before the
//! launch, so the kernels never read or write out of bounds.

use std::os::raw::{c_int, c_uint};

/// A grid or block shape (x, y, z).
pub type Dim = [u32; 3];

extern "C" {
    fn emu_affine_interval_f64(
        grid: *const c_uint,
        block: *const c_uint,
        w: *const f64,
        bias: *const f64,
        has_bias: c_int,
        xlo: *const f64,
        xhi: *const f64,
        lo: *mut f64,
        hi: *mut f64,
        n_out: c_int,
        n_in: c_int,
        n_vec: c_int,
    );
    fn emu_matmul_f64(
        grid: *const c_uint,
        block: *const c_uint,
        a: *const f64,
        b: *const f64,
        c: *mut f64,
        m: c_int,
        k: c_int,
        n: c_int,
    );
    fn emu_abs_matvec_up_f64(
        grid: *const c_uint,
        block: *const c_uint,
        a: *const f64,
        x: *const f64,
        y: *mut f64,
        rows: c_int,
        cols: c_int,
    );
    fn emu_dot_with_error_f64(
        grid: *const c_uint,
        block: *const c_uint,
        a: *const f64,
        b: *const f64,
        v: *mut f64,
        e: *mut f64,
        rows: c_int,
        cols: c_int,
    );
    fn emu_relax_rows_f64(
        grid: *const c_uint,
        block: *const c_uint,
        lam: *const f64,
        lo_slope: *const f64,
        lo_int: *const f64,
        up_slope: *const f64,
        up_int: *const f64,
        mag: *const f64,
        row_box: *const c_uint,
        res: *mut f64,
        v: *mut f64,
        v_err: *mut f64,
        charge: *mut f64,
        rows: c_int,
        n: c_int,
    );
    fn emu_concretize_f64(
        grid: *const c_uint,
        block: *const c_uint,
        lam: *const f64,
        lo: *const f64,
        hi: *const f64,
        row_box: *const c_uint,
        bias: *const f64,
        err: *const f64,
        out: *mut f64,
        rows: c_int,
        n: c_int,
    );
    fn emu_intrinsic(op: c_int, a: f64, b: f64, c: f64) -> f64;
}

fn int(n: usize) -> c_int {
    c_int::try_from(n).expect("size fits the kernels' int arguments")
}

fn covers(grid: &Dim, block: &Dim, threads: usize) {
    let total: u64 = grid.iter().chain(block).map(|&d| d as u64).product();
    assert!(
        total >= threads as u64,
        "launch shape covers too few threads"
    );
}

/// The directed-rounding intrinsics of the shim, by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Intrinsic {
    DaddRn,
    DaddRd,
    DaddRu,
    DsubRn,
    DsubRd,
    DsubRu,
    DmulRn,
    DmulRd,
    DmulRu,
    DdivRd,
    DdivRu,
    FmaRn,
    FmaRd,
    FmaRu,
}

/// One intrinsic on host operands (`c` is used by the `fma` ones only).
pub fn intrinsic(op: Intrinsic, a: f64, b: f64, c: f64) -> f64 {
    // SAFETY: a pure function of its arguments.
    unsafe { emu_intrinsic(op as c_int, a, b, c) }
}

/// `affine_interval_f64`; returns `(lo, hi)`, `n_vec · n_out` entries each.
#[allow(clippy::too_many_arguments)]
pub fn affine_interval(
    grid: Dim,
    block: Dim,
    w: &[f64],
    bias: Option<&[f64]>,
    n_out: usize,
    n_in: usize,
    xlo: &[f64],
    xhi: &[f64],
) -> (Vec<f64>, Vec<f64>) {
    assert_eq!(w.len(), n_out * n_in);
    assert!(n_in > 0 && xlo.len() % n_in == 0 && xlo.len() == xhi.len());
    let n_vec = xlo.len() / n_in;
    if let Some(b) = bias {
        assert_eq!(b.len(), n_out);
    }
    covers(&grid, &block, n_vec * n_out);
    let mut lo = vec![0.0; n_vec * n_out];
    let mut hi = vec![0.0; n_vec * n_out];
    let zero = [0.0];
    let b = bias.unwrap_or(&zero);
    // SAFETY: every slice has the length the kernel indexes (checked above).
    unsafe {
        emu_affine_interval_f64(
            grid.as_ptr(),
            block.as_ptr(),
            w.as_ptr(),
            b.as_ptr(),
            bias.is_some() as c_int,
            xlo.as_ptr(),
            xhi.as_ptr(),
            lo.as_mut_ptr(),
            hi.as_mut_ptr(),
            int(n_out),
            int(n_in),
            int(n_vec),
        );
    }
    (lo, hi)
}

/// `matmul_f64`: `a · b`, `m × k` times `k × n`.
pub fn matmul(
    grid: Dim,
    block: Dim,
    a: &[f64],
    b: &[f64],
    m: usize,
    k: usize,
    n: usize,
) -> Vec<f64> {
    assert_eq!(a.len(), m * k);
    assert_eq!(b.len(), k * n);
    let mut c = vec![0.0; m * n];
    // SAFETY: lengths checked above; the kernel guards its tile reads and writes by m, k, n.
    unsafe {
        emu_matmul_f64(
            grid.as_ptr(),
            block.as_ptr(),
            a.as_ptr(),
            b.as_ptr(),
            c.as_mut_ptr(),
            int(m),
            int(k),
            int(n),
        );
    }
    c
}

/// `abs_matvec_up_f64`.
pub fn abs_matvec_up(
    grid: Dim,
    block: Dim,
    a: &[f64],
    rows: usize,
    cols: usize,
    x: &[f64],
) -> Vec<f64> {
    assert_eq!(a.len(), rows * cols);
    assert_eq!(x.len(), cols);
    covers(&grid, &block, rows);
    let mut y = vec![0.0; rows];
    // SAFETY: lengths checked above.
    unsafe {
        emu_abs_matvec_up_f64(
            grid.as_ptr(),
            block.as_ptr(),
            a.as_ptr(),
            x.as_ptr(),
            y.as_mut_ptr(),
            int(rows),
            int(cols),
        );
    }
    y
}

/// `dot_with_error_f64`; returns `(v, e)`.
pub fn dot_with_error(
    grid: Dim,
    block: Dim,
    a: &[f64],
    rows: usize,
    cols: usize,
    b: &[f64],
) -> (Vec<f64>, Vec<f64>) {
    assert_eq!(a.len(), rows * cols);
    assert_eq!(b.len(), cols);
    covers(&grid, &block, rows);
    let mut v = vec![0.0; rows];
    let mut e = vec![0.0; rows];
    // SAFETY: lengths checked above.
    unsafe {
        emu_dot_with_error_f64(
            grid.as_ptr(),
            block.as_ptr(),
            a.as_ptr(),
            b.as_ptr(),
            v.as_mut_ptr(),
            e.as_mut_ptr(),
            int(rows),
            int(cols),
        );
    }
    (v, e)
}

/// What `relax_rows_f64` writes: coefficients (`rows × n`), bias terms, their error bounds,
/// and the rounding charges.
pub struct Relaxed {
    pub res: Vec<f64>,
    pub v: Vec<f64>,
    pub v_err: Vec<f64>,
    pub charge: Vec<f64>,
}

/// `relax_rows_f64`: the per-box lines (`boxes × n` each) applied to the rows of `lam`.
#[allow(clippy::too_many_arguments)]
pub fn relax_rows(
    grid: Dim,
    block: Dim,
    lam: &[f64],
    rows: usize,
    n: usize,
    lines: [&[f64]; 5],
    row_box: &[u32],
) -> Relaxed {
    assert_eq!(lam.len(), rows * n);
    assert_eq!(row_box.len(), rows);
    let boxes = lines[0].len() / n.max(1);
    for l in &lines {
        assert_eq!(l.len(), lines[0].len());
    }
    assert!(row_box.iter().all(|&b| (b as usize) < boxes.max(1)));
    covers(&grid, &block, rows);
    let mut r = Relaxed {
        res: vec![0.0; rows * n],
        v: vec![0.0; rows],
        v_err: vec![0.0; rows],
        charge: vec![0.0; rows],
    };
    // SAFETY: lengths checked above, every row's box index within the lines.
    unsafe {
        emu_relax_rows_f64(
            grid.as_ptr(),
            block.as_ptr(),
            lam.as_ptr(),
            lines[0].as_ptr(),
            lines[1].as_ptr(),
            lines[2].as_ptr(),
            lines[3].as_ptr(),
            lines[4].as_ptr(),
            row_box.as_ptr(),
            r.res.as_mut_ptr(),
            r.v.as_mut_ptr(),
            r.v_err.as_mut_ptr(),
            r.charge.as_mut_ptr(),
            int(rows),
            int(n),
        );
    }
    r
}

/// `concretize_f64`: per row, a lower bound over its box (`lo`, `hi`: `boxes × n`).
#[allow(clippy::too_many_arguments)]
pub fn concretize(
    grid: Dim,
    block: Dim,
    lam: &[f64],
    rows: usize,
    n: usize,
    lo: &[f64],
    hi: &[f64],
    row_box: &[u32],
    bias: &[f64],
    err: &[f64],
) -> Vec<f64> {
    assert_eq!(lam.len(), rows * n);
    assert_eq!(lo.len(), hi.len());
    assert_eq!(row_box.len(), rows);
    assert_eq!(bias.len(), rows);
    assert_eq!(err.len(), rows);
    let boxes = lo.len() / n.max(1);
    assert!(n == 0 || row_box.iter().all(|&b| (b as usize) < boxes));
    covers(&grid, &block, rows);
    let mut out = vec![0.0; rows];
    // SAFETY: lengths checked above, every row's box index within the boxes.
    unsafe {
        emu_concretize_f64(
            grid.as_ptr(),
            block.as_ptr(),
            lam.as_ptr(),
            lo.as_ptr(),
            hi.as_ptr(),
            row_box.as_ptr(),
            bias.as_ptr(),
            err.as_ptr(),
            out.as_mut_ptr(),
            int(rows),
            int(n),
        );
    }
    out
}
