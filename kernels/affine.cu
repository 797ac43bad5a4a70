// Affine maps: the interval image of a Linear layer, the weight product of a backward step,
// and the error sums charged for it (see `src/backend/device.rs` for the soundness argument).
// Row-major f64 arrays throughout; one thread per output entry or row unless stated.

// For vector v < n_vec and output o < n_out: [lo, hi] encloses { W x + b : x in [xlo_v, xhi_v] }.
// Each weight picks the corner of its sign; lower sums round down, upper sums round up.
extern "C" __global__ void affine_interval_f64(const double* w, const double* bias, int has_bias,
                                               const double* xlo, const double* xhi,
                                               double* lo, double* hi,
                                               int n_out, int n_in, int n_vec) {
    long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (long long)n_out * n_vec) return;
    int v = (int)(idx / n_out);
    int o = (int)(idx % n_out);
    const double* wr = w + (long long)o * n_in;
    const double* xl = xlo + (long long)v * n_in;
    const double* xh = xhi + (long long)v * n_in;
    double s_lo = 0.0, s_hi = 0.0;
    for (int j = 0; j < n_in; ++j) {
        double a = wr[j];
        if (a == 0.0) continue;  // contributes nothing, even against an infinite bound
        if (a > 0.0) {
            s_lo = __fma_rd(a, xl[j], s_lo);
            s_hi = __fma_ru(a, xh[j], s_hi);
        } else {
            s_lo = __fma_rd(a, xh[j], s_lo);
            s_hi = __fma_ru(a, xl[j], s_hi);
        }
    }
    if (has_bias) {
        s_lo = __dadd_rd(s_lo, bias[o]);
        s_hi = __dadd_ru(s_hi, bias[o]);
    }
    lo[idx] = beacons_lower(s_lo);
    hi[idx] = beacons_upper(s_hi);
}

#define BEACONS_TILE 16

// c = a b (m x k times k x n) in round-to-nearest, tiled through shared memory; blocks of
// BEACONS_TILE x BEACONS_TILE threads, grid (ceil(n / TILE), ceil(m / TILE)). The order of the
// additions is free: `bounds::rounding` bounds the error of any order, fused or not.
extern "C" __global__ void matmul_f64(const double* a, const double* b, double* c,
                                      int m, int k, int n) {
    __shared__ double as[BEACONS_TILE][BEACONS_TILE];
    __shared__ double bs[BEACONS_TILE][BEACONS_TILE];
    int tx = threadIdx.x, ty = threadIdx.y;
    int row = blockIdx.y * BEACONS_TILE + ty;
    int col = blockIdx.x * BEACONS_TILE + tx;
    double s = 0.0;
    for (int t = 0; t < k; t += BEACONS_TILE) {
        as[ty][tx] = (row < m && t + tx < k) ? a[(long long)row * k + t + tx] : 0.0;
        bs[ty][tx] = (t + ty < k && col < n) ? b[(long long)(t + ty) * n + col] : 0.0;
        __syncthreads();
        for (int q = 0; q < BEACONS_TILE; ++q) {
            s = __fma_rn(as[ty][q], bs[q][tx], s);
        }
        __syncthreads();
    }
    if (row < m && col < n) c[(long long)row * n + col] = s;
}

// y_i >= sum_j |a_ij| x_j exactly, for x >= 0: non-negative terms summed with every
// operation rounded up. Zero terms are skipped (0 * inf would be NaN); NaN gives +inf.
extern "C" __global__ void abs_matvec_up_f64(const double* a, const double* x, double* y,
                                             int rows, int cols) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= rows) return;
    const double* ar = a + i * cols;
    double s = 0.0;
    for (int j = 0; j < cols; ++j) {
        double p = fabs(ar[j]);
        if (p == 0.0 || x[j] == 0.0) continue;
        s = __fma_ru(p, x[j], s);
    }
    y[i] = beacons_upper(s);
}

// v_i ~ sum_j a_ij b_j (to nearest) and e_i >= |v_i - exact|: the same sum also taken
// downward and upward, which enclose the exact one.
extern "C" __global__ void dot_with_error_f64(const double* a, const double* b, double* v,
                                              double* e, int rows, int cols) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= rows) return;
    const double* ar = a + i * cols;
    double sn = 0.0, sd = 0.0, su = 0.0;
    for (int j = 0; j < cols; ++j) {
        double p = ar[j], q = b[j];
        if (p == 0.0 || q == 0.0) continue;
        sn = __fma_rn(p, q, sn);
        sd = __fma_rd(p, q, sd);
        su = __fma_ru(p, q, su);
    }
    v[i] = sn;
    e[i] = beacons_spread(sn, sd, su);
}
