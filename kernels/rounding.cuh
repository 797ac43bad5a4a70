// Prelude of every kernel family (prepended to each `*.cu` before NVRTC compiles it, and
// included before it by the host emulator, `emu/src/launch.cpp`): constants and the NaN rules
// of `src/bounds/rounding.rs` (a NaN bound becomes the trivial one).
//
// Directed rounding comes from CUDA's intrinsics (`__dadd_rd`, `__dmul_ru`, `__fma_rd`, ...),
// each one correctly rounded operation in the named direction; the emulator implements the
// same intrinsics exactly on the host (`kernels/emu/cuda_shim.h`).

#define BEACONS_INF (__longlong_as_double(0x7ff0000000000000LL))

// A lower bound that is NaN becomes -inf.
__device__ __forceinline__ double beacons_lower(double x) { return x != x ? -BEACONS_INF : x; }

// An upper bound that is NaN becomes +inf.
__device__ __forceinline__ double beacons_upper(double x) { return x != x ? BEACONS_INF : x; }

// An error bound: NaN, or taken around an infinite value, becomes +inf.
__device__ __forceinline__ double beacons_error(double e, double around) {
    if (e != e || !(around > -BEACONS_INF && around < BEACONS_INF)) return BEACONS_INF;
    return e;
}

// Upper bound of |nearest - exact| from the nearest, downward and upward sums of one quantity.
__device__ __forceinline__ double beacons_spread(double near, double down, double up) {
    double a = __dsub_ru(up, near);
    double b = __dsub_ru(near, down);
    return beacons_error(a > b ? a : b, near);
}
