// Concretisation: a sound lower bound of lam_i . x + bias_i - err_i over a box, for every
// stacked row i over its own box d = row_box[i] (lo, hi of box d at d * n); one thread per
// row. Each coefficient picks the corner of its sign; the sum rounds down throughout.
extern "C" __global__ void concretize_f64(const double* lam, const double* lo, const double* hi,
                                          const unsigned int* row_box, const double* bias,
                                          const double* err, double* out, int rows, int n) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= rows) return;
    long long base = (long long)row_box[i] * n;
    const double* lr = lam + i * n;
    double s = 0.0;
    for (int j = 0; j < n; ++j) {
        double a = lr[j];
        if (a == 0.0) continue;  // contributes nothing, even against an infinite bound
        s = __fma_rd(a, a >= 0.0 ? lo[base + j] : hi[base + j], s);
    }
    out[i] = beacons_lower(__dsub_rd(__dadd_rd(s, bias[i]), err[i]));
}
