// The backward step through a relaxed elementwise activation (the ReLU family): for a lower
// bound, a coefficient >= 0 takes the neuron's lower line and a negative one its upper line.
// The lines are computed on the host (`bounds::relax`, per box and neuron); the kernel applies
// them to every stacked row, one thread per row.
//
// Per row i over box d = row_box[i] (lines and magnitudes of box d at d * n):
//   res_ij = l_ij * slope (to nearest), charge_i >= sum_j |res_ij - l_ij * slope| * mag_j
//   (each product's rounding error is at most ru(l s) - rd(l s)), and the bias term
//   v_i ~ sum_j l_ij * intercept with v_err_i >= its error (nearest, downward, upward sums).
extern "C" __global__ void relax_rows_f64(const double* lam,
                                          const double* lo_slope, const double* lo_int,
                                          const double* up_slope, const double* up_int,
                                          const double* mag, const unsigned int* row_box,
                                          double* res, double* v, double* v_err, double* charge,
                                          int rows, int n) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= rows) return;
    long long base = (long long)row_box[i] * n;
    const double* lr = lam + i * n;
    double* rr = res + i * n;
    double sn = 0.0, sd = 0.0, su = 0.0, ch = 0.0;
    for (int j = 0; j < n; ++j) {
        double l = lr[j];
        if (l == 0.0) {  // touches no line (which may be infinite)
            rr[j] = 0.0;
            continue;
        }
        double s, c;
        if (l >= 0.0) {
            s = lo_slope[base + j];
            c = lo_int[base + j];
        } else {
            s = up_slope[base + j];
            c = up_int[base + j];
        }
        rr[j] = __dmul_rn(l, s);
        double width = __dsub_ru(__dmul_ru(l, s), __dmul_rd(l, s));
        if (width != 0.0) ch = __fma_ru(width, mag[base + j], ch);
        if (c != 0.0) {
            sn = __dadd_rn(sn, __dmul_rn(l, c));
            sd = __dadd_rd(sd, __dmul_rd(l, c));
            su = __dadd_ru(su, __dmul_ru(l, c));
        }
    }
    v[i] = sn;
    v_err[i] = beacons_spread(sn, sd, su);
    charge[i] = beacons_upper(ch);
}
