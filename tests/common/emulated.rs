//! The emulated CUDA backend (test-only): `beacons::backend::device::DeviceBackend` over the
//! kernels of `kernels/*.cu` compiled for the host (`beacons-emu`), launched with the grid
//! and block shapes the CUDA backend uses.

use std::sync::Arc;

use beacons::backend::device::{shape_1d, shape_tiles, DeviceBackend, Kernels, Lines, Relaxed};
use beacons::backend::AnyBackend;
use beacons::Result;

/// The emulator as a [`Kernels`] implementation.
pub struct Emulated;

impl Kernels for Emulated {
    fn name(&self) -> &'static str {
        "emulated-cuda"
    }

    fn affine_interval(
        &self,
        w: &[f64],
        bias: Option<&[f64]>,
        n_out: usize,
        n_in: usize,
        xlo: &[f64],
        xhi: &[f64],
    ) -> Result<(Vec<f64>, Vec<f64>)> {
        let (g, b) = shape_1d(xlo.len() / n_in * n_out);
        Ok(beacons_emu::affine_interval(
            g, b, w, bias, n_out, n_in, xlo, xhi,
        ))
    }

    fn matmul(&self, a: &[f64], b: &[f64], m: usize, k: usize, n: usize) -> Result<Vec<f64>> {
        let (g, bl) = shape_tiles(m, n);
        Ok(beacons_emu::matmul(g, bl, a, b, m, k, n))
    }

    fn abs_matvec_up(&self, a: &[f64], rows: usize, cols: usize, x: &[f64]) -> Result<Vec<f64>> {
        let (g, b) = shape_1d(rows);
        Ok(beacons_emu::abs_matvec_up(g, b, a, rows, cols, x))
    }

    fn dot_with_error(
        &self,
        a: &[f64],
        rows: usize,
        cols: usize,
        b: &[f64],
    ) -> Result<(Vec<f64>, Vec<f64>)> {
        let (g, bl) = shape_1d(rows);
        Ok(beacons_emu::dot_with_error(g, bl, a, rows, cols, b))
    }

    fn relax_rows(
        &self,
        lam: &[f64],
        rows: usize,
        n: usize,
        lines: &Lines,
        row_box: &[u32],
    ) -> Result<Relaxed> {
        let (g, b) = shape_1d(rows);
        let r = beacons_emu::relax_rows(
            g,
            b,
            lam,
            rows,
            n,
            [
                &lines.lo_slope,
                &lines.lo_int,
                &lines.up_slope,
                &lines.up_int,
                &lines.mag,
            ],
            row_box,
        );
        Ok(Relaxed {
            res: r.res,
            v: r.v,
            v_err: r.v_err,
            charge: r.charge,
        })
    }

    fn concretize(
        &self,
        lam: &[f64],
        rows: usize,
        n: usize,
        lo: &[f64],
        hi: &[f64],
        row_box: &[u32],
        bias: &[f64],
        err: &[f64],
    ) -> Result<Vec<f64>> {
        let (g, b) = shape_1d(rows);
        Ok(beacons_emu::concretize(
            g, b, lam, rows, n, lo, hi, row_box, bias, err,
        ))
    }
}

/// The emulated CUDA backend, ready for `Plan::with_backend`.
pub fn emulated() -> AnyBackend {
    AnyBackend::Shared(Arc::new(DeviceBackend::new(Emulated)))
}
