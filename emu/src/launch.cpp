// The emulated launches: each kernel of kernels/*.cu compiled for the host (see
// kernels/emu/cuda_shim.h), behind one extern "C" wrapper that takes the grid and block the
// CUDA backend would use (computed on the Rust side, `beacons::backend::device`).
#include "emu/cuda_shim.h"

#include "rounding.cuh"
#include "affine.cu"
#include "relax.cu"
#include "concretize.cu"

namespace {
dim3 d3(const unsigned int* v) { return dim3{v[0], v[1], v[2]}; }
}  // namespace

extern "C" {

void emu_affine_interval_f64(const unsigned int* grid, const unsigned int* block,
                             const double* w, const double* bias, int has_bias,
                             const double* xlo, const double* xhi, double* lo, double* hi,
                             int n_out, int n_in, int n_vec) {
    beacons_emu::launch(d3(grid), d3(block), [&] {
        affine_interval_f64(w, bias, has_bias, xlo, xhi, lo, hi, n_out, n_in, n_vec);
    }, false);
}

void emu_matmul_f64(const unsigned int* grid, const unsigned int* block, const double* a,
                    const double* b, double* c, int m, int k, int n) {
    beacons_emu::launch(d3(grid), d3(block), [&] { matmul_f64(a, b, c, m, k, n); }, true);
}

void emu_abs_matvec_up_f64(const unsigned int* grid, const unsigned int* block,
                           const double* a, const double* x, double* y, int rows, int cols) {
    beacons_emu::launch(d3(grid), d3(block), [&] { abs_matvec_up_f64(a, x, y, rows, cols); },
                        false);
}

void emu_dot_with_error_f64(const unsigned int* grid, const unsigned int* block,
                            const double* a, const double* b, double* v, double* e, int rows,
                            int cols) {
    beacons_emu::launch(d3(grid), d3(block),
                        [&] { dot_with_error_f64(a, b, v, e, rows, cols); }, false);
}

void emu_relax_rows_f64(const unsigned int* grid, const unsigned int* block, const double* lam,
                        const double* lo_slope, const double* lo_int, const double* up_slope,
                        const double* up_int, const double* mag, const unsigned int* row_box,
                        double* res, double* v, double* v_err, double* charge, int rows, int n) {
    beacons_emu::launch(d3(grid), d3(block), [&] {
        relax_rows_f64(lam, lo_slope, lo_int, up_slope, up_int, mag, row_box, res, v, v_err,
                       charge, rows, n);
    }, false);
}

void emu_concretize_f64(const unsigned int* grid, const unsigned int* block, const double* lam,
                        const double* lo, const double* hi, const unsigned int* row_box,
                        const double* bias, const double* err, double* out, int rows, int n) {
    beacons_emu::launch(d3(grid), d3(block), [&] {
        concretize_f64(lam, lo, hi, row_box, bias, err, out, rows, n);
    }, false);
}

// The intrinsics themselves, for tests against exact arithmetic: op 0..13 in the order
// add rn/rd/ru, sub rn/rd/ru, mul rn/rd/ru, div rd/ru, fma rn/rd/ru.
double emu_intrinsic(int op, double a, double b, double c) {
    switch (op) {
        case 0: return __dadd_rn(a, b);
        case 1: return __dadd_rd(a, b);
        case 2: return __dadd_ru(a, b);
        case 3: return __dsub_rn(a, b);
        case 4: return __dsub_rd(a, b);
        case 5: return __dsub_ru(a, b);
        case 6: return __dmul_rn(a, b);
        case 7: return __dmul_rd(a, b);
        case 8: return __dmul_ru(a, b);
        case 9: return __ddiv_rd(a, b);
        case 10: return __ddiv_ru(a, b);
        case 11: return __fma_rn(a, b, c);
        case 12: return __fma_rd(a, b, c);
        case 13: return __fma_ru(a, b, c);
        default: return __longlong_as_double(0x7ff8000000000000LL);
    }
}

}  // extern "C"
