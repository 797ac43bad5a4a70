// Host emulation of the CUDA subset that beacons' kernels use, so that the same
// `kernels/*.cu` sources compile as C++20 on the CPU (g++ with -frounding-math) and can be
// tested without a GPU. A test tool only (`emu/`), never a production backend.
//
// - Launches: `beacons_emu::launch(grid, block, body, cooperative)` runs every block of the
//   grid, one after the other. A cooperative launch (a kernel that calls __syncthreads) runs
//   one OS thread per thread of the block, and __syncthreads is a std::barrier over them;
//   otherwise the threads of a block run one after the other on the calling thread (a valid
//   CUDA schedule for a kernel without barriers). threadIdx/blockIdx are per OS thread.
// - Shared memory: `__shared__` arrays are function statics. Blocks never run concurrently
//   and launches are serialised by a mutex, so each block has the array to itself.
// - Directed rounding: each intrinsic sets the rounding mode of the calling thread
//   (fesetround), performs the one operation on volatile operands, and restores
//   round-to-nearest: the hardware rounds it correctly in the named direction, as the GPU
//   does. Compiled with -frounding-math so that no operation is folded or moved across the
//   mode switches (GCC ignores `#pragma STDC FENV_ACCESS`). `tests/gpu_backend.rs` checks every intrinsic against exact rationals.
#pragma once

#include <barrier>
#include <cfenv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>


struct dim3 {
    unsigned int x = 1, y = 1, z = 1;
};

namespace beacons_emu {
inline thread_local dim3 thread_idx;
inline thread_local dim3 block_idx;
inline thread_local std::barrier<>* block_barrier = nullptr;
inline dim3 block_dim;
inline dim3 grid_dim;
inline std::mutex launch_mutex;

inline void syncthreads() {
    if (block_barrier == nullptr) {
        std::fprintf(stderr, "beacons emulator: __syncthreads in a non-cooperative launch\n");
        std::abort();
    }
    block_barrier->arrive_and_wait();
}

// Runs `body` for every thread of every block of `grid` x `block` (see the header notes).
inline void launch(dim3 grid, dim3 block, const std::function<void()>& body, bool cooperative) {
    std::lock_guard<std::mutex> lock(launch_mutex);
    grid_dim = grid;
    block_dim = block;
    const unsigned int nt = block.x * block.y * block.z;
    auto ids = [&](unsigned int t) {
        return dim3{t % block.x, (t / block.x) % block.y, t / (block.x * block.y)};
    };
    auto each_block = [&](auto&& run) {
        for (unsigned int bz = 0; bz < grid.z; ++bz)
            for (unsigned int by = 0; by < grid.y; ++by)
                for (unsigned int bx = 0; bx < grid.x; ++bx) run(dim3{bx, by, bz});
    };
    if (!cooperative) {
        each_block([&](dim3 b) {
            block_idx = b;
            for (unsigned int t = 0; t < nt; ++t) {
                thread_idx = ids(t);
                body();
            }
        });
        return;
    }
    // One OS thread per block thread; every thread walks the blocks in the same order and
    // meets the others at the barrier after each block.
    std::barrier<> bar(static_cast<std::ptrdiff_t>(nt));
    std::vector<std::thread> threads;
    threads.reserve(nt);
    for (unsigned int t = 0; t < nt; ++t) {
        threads.emplace_back([&, t] {
            block_barrier = &bar;
            thread_idx = ids(t);
            each_block([&](dim3 b) {
                block_idx = b;
                body();
                bar.arrive_and_wait();
            });
            block_barrier = nullptr;
        });
    }
    for (auto& th : threads) th.join();
}

template <class F>
inline double rounded(int mode, F op) {
    const int old = std::fegetround();
    std::fesetround(mode);
    const double r = op();
    std::fesetround(old);
    return r;
}
}  // namespace beacons_emu

#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ static
#define threadIdx (::beacons_emu::thread_idx)
#define blockIdx (::beacons_emu::block_idx)
#define blockDim (::beacons_emu::block_dim)
#define gridDim (::beacons_emu::grid_dim)
#define __syncthreads() (::beacons_emu::syncthreads())

using std::fabs;

inline double __longlong_as_double(long long x) {
    double d;
    std::memcpy(&d, &x, sizeof d);
    return d;
}

#define BEACONS_EMU_OP2(name, mode, expr)                                   \
    inline double name(double a, double b) {                                \
        return ::beacons_emu::rounded(mode, [&] {                           \
            volatile double x = a, y = b;                                   \
            volatile double r = (expr);                                     \
            return static_cast<double>(r);                                  \
        });                                                                 \
    }
#define BEACONS_EMU_FMA(name, mode)                                         \
    inline double name(double a, double b, double c) {                      \
        return ::beacons_emu::rounded(mode, [&] {                           \
            volatile double x = a, y = b, z = c;                            \
            volatile double r = std::fma(x, y, z);                          \
            return static_cast<double>(r);                                  \
        });                                                                 \
    }

BEACONS_EMU_OP2(__dadd_rn, FE_TONEAREST, x + y)
BEACONS_EMU_OP2(__dadd_rd, FE_DOWNWARD, x + y)
BEACONS_EMU_OP2(__dadd_ru, FE_UPWARD, x + y)
BEACONS_EMU_OP2(__dsub_rn, FE_TONEAREST, x - y)
BEACONS_EMU_OP2(__dsub_rd, FE_DOWNWARD, x - y)
BEACONS_EMU_OP2(__dsub_ru, FE_UPWARD, x - y)
BEACONS_EMU_OP2(__dmul_rn, FE_TONEAREST, x * y)
BEACONS_EMU_OP2(__dmul_rd, FE_DOWNWARD, x * y)
BEACONS_EMU_OP2(__dmul_ru, FE_UPWARD, x * y)
BEACONS_EMU_OP2(__ddiv_rd, FE_DOWNWARD, x / y)
BEACONS_EMU_OP2(__ddiv_ru, FE_UPWARD, x / y)
BEACONS_EMU_FMA(__fma_rn, FE_TONEAREST)
BEACONS_EMU_FMA(__fma_rd, FE_DOWNWARD)
BEACONS_EMU_FMA(__fma_ru, FE_UPWARD)
