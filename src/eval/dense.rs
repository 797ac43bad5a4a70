//! The `f32` dense layer kernel of the stress tester's forward passes.
//!
//! `y[r, o] = b[o] + Σ_i x[r, i] w[o, i]`, summed in increasing `i`, one fused multiply-add
//! (one rounding) per term: `acc = fma(x[r, i], w[o, i], acc)`. Every code path — AVX2+FMA
//! registers, or the portable loop through `f32::mul_add` (correctly rounded in software
//! where the CPU has no FMA, slower) — performs exactly these roundings in exactly this
//! order, so the outputs are bit-identical on every machine (replay tokens digest them).
//!
//! Shape of the kernel: the weights are transposed once per call to `[in][out]`; blocks of
//! `ROWS` samples times `COLS` outputs live in registers while the inputs stream past, so a
//! weight row is loaded once per block and every sample value is broadcast once per block.
//! Small layers (the stress tester's MLPs: tens of inputs and outputs, thousands of rows)
//! spend most of a general GEMM's time in packing; this kernel needs none.

use ndarray::{Array1, Array2};

/// `x` (`rows × in`, row-major) times the transpose of `w` (`out × in`) plus `b`, in `f32`
/// (the weights rounded to nearest `f32` first), as a row-major `rows × out` vector.
/// With `relu`, the result is passed through `v > 0 ? v : 0` as it is stored (the ReLU that
/// follows the layer, fused: one pass over the activations fewer).
pub fn linear_f32(
    x: &[f32],
    rows: usize,
    w: &Array2<f64>,
    b: Option<&Array1<f64>>,
    relu: bool,
) -> Vec<f32> {
    let (out, inp) = w.dim();
    debug_assert_eq!(x.len(), rows * inp);
    let mut y = vec![0f32; rows * out];
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        if has!("avx512f") && has!("avx2") && has!("fma") {
            // SAFETY: the CPU supports AVX-512F, AVX2 and FMA (checked just above).
            unsafe { x86::kernel_avx512(x, inp, &pack(w, b, 32), out, &mut y, relu) };
            return y;
        }
        if has!("avx2") && has!("fma") {
            // SAFETY: the CPU supports AVX2 and FMA (checked just above).
            unsafe { x86::kernel_avx2(x, inp, &pack(w, b, 16), out, &mut y, relu) };
            return y;
        }
    }
    kernel::<4>(x, inp, &pack(w, b, 16), out, &mut y, relu, micro::<4>);
    y
}

/// Columns `c0..c0 + width` of the weights, transposed and zero-padded to `width` (8, 16 or
/// 32): `w[i * width + j] = W[c0 + j, i]`.
struct Block {
    c0: usize,
    width: usize,
    w: Vec<f32>,
    bias: Vec<f32>,
}

/// The weights and bias in `f32`, cut into column blocks of `widest` columns, the last one
/// as narrow as 8, 16 or 32 allows (an output layer of two classes wastes little).
fn pack(w: &Array2<f64>, b: Option<&Array1<f64>>, widest: usize) -> Vec<Block> {
    let (out, inp) = w.dim();
    let mut blocks = Vec::new();
    let mut c0 = 0;
    while c0 < out {
        let rest = out - c0;
        let width = [8, 16, 32]
            .into_iter()
            .find(|&wd| wd >= rest || wd == widest)
            .unwrap_or(widest)
            .min(widest);
        let mut wb = vec![0f32; inp * width];
        let mut bias = vec![0f32; width];
        for j in 0..width.min(rest) {
            for i in 0..inp {
                wb[i * width + j] = w[[c0 + j, i]] as f32;
            }
            bias[j] = b.map_or(0.0, |b| b[c0 + j] as f32);
        }
        blocks.push(Block {
            c0,
            width,
            w: wb,
            bias,
        });
        c0 += width;
    }
    blocks
}

/// The kernel over groups of `R` samples: `x` is `rows × in`, `y` is `rows × out`; `micro`
/// multiplies `R` samples by one column block into an `R × width` result.
#[inline(always)]
fn kernel<const R: usize>(
    x: &[f32],
    inp: usize,
    blocks: &[Block],
    out: usize,
    y: &mut [f32],
    relu: bool,
    micro: impl Fn(&[&[f32]; R], &Block, &mut [f32]),
) {
    if out == 0 {
        return;
    }
    let rows = y.len() / out;
    // The last, partial group of samples, zero-padded to `R` rows.
    let mut pad = vec![0f32; inp * R];
    let mut res = [0f32; 8 * 32];
    for r0 in (0..rows).step_by(R) {
        let nr = (rows - r0).min(R);
        let group = if nr == R {
            &x[r0 * inp..(r0 + R) * inp]
        } else {
            pad[..nr * inp].copy_from_slice(&x[r0 * inp..(r0 + nr) * inp]);
            &pad[..]
        };
        let xs: [&[f32]; R] = std::array::from_fn(|k| &group[k * inp..(k + 1) * inp]);
        for blk in blocks {
            let res = &mut res[..R * blk.width];
            micro(&xs, blk, res);
            if relu {
                for v in res.iter_mut() {
                    *v = if *v > 0.0 { *v } else { 0.0 };
                }
            }
            let n = (out - blk.c0).min(blk.width);
            for k in 0..nr {
                let at = (r0 + k) * out + blk.c0;
                y[at..at + n].copy_from_slice(&res[k * blk.width..k * blk.width + n]);
            }
        }
    }
}

/// The portable micro-kernel: `R` samples times one column block, `f32::mul_add` per term.
fn micro<const R: usize>(xs: &[&[f32]; R], blk: &Block, res: &mut [f32]) {
    let wd = blk.width;
    for (k, x) in xs.iter().enumerate() {
        let r = &mut res[k * wd..(k + 1) * wd];
        r.copy_from_slice(&blk.bias);
        for (i, &xv) in x.iter().enumerate() {
            let wr = &blk.w[i * wd..(i + 1) * wd];
            for (a, &wv) in r.iter_mut().zip(wr) {
                *a = xv.mul_add(wv, *a);
            }
        }
    }
}

/// Micro-kernels in AVX2/AVX-512 registers: the same fused multiply-adds in the same order.
#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{kernel, Block};
    use std::arch::x86_64::*;

    /// 4 samples × 16 columns in 8 `ymm` accumulators (narrow blocks: 8 columns).
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn kernel_avx2(
        x: &[f32],
        inp: usize,
        blocks: &[Block],
        out: usize,
        y: &mut [f32],
        relu: bool,
    ) {
        kernel::<4>(x, inp, blocks, out, y, relu, |xs, blk, res| unsafe {
            match blk.width {
                8 => ymm::<4, 1>(xs, blk, res),
                _ => ymm::<4, 2>(xs, blk, res),
            }
        })
    }

    /// 8 samples × 32 columns in 16 `zmm` accumulators (narrow blocks: 16 or 8 columns).
    #[target_feature(enable = "avx512f,avx2,fma")]
    pub unsafe fn kernel_avx512(
        x: &[f32],
        inp: usize,
        blocks: &[Block],
        out: usize,
        y: &mut [f32],
        relu: bool,
    ) {
        kernel::<8>(x, inp, blocks, out, y, relu, |xs, blk, res| unsafe {
            match blk.width {
                8 => ymm::<8, 1>(xs, blk, res),
                16 => zmm::<8, 1>(xs, blk, res),
                _ => zmm::<8, 2>(xs, blk, res),
            }
        })
    }

    /// `R` samples × `8 V` columns with 256-bit registers.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn ymm<const R: usize, const V: usize>(xs: &[&[f32]; R], blk: &Block, res: &mut [f32]) {
        let wd = 8 * V;
        let inp = blk.w.len() / wd;
        assert!(blk.width == wd && blk.bias.len() == wd && res.len() == R * wd);
        assert!(xs.iter().all(|x| x.len() == inp));
        let (w, b) = (blk.w.as_ptr(), blk.bias.as_ptr());
        // SAFETY (every pointer below): in bounds by the lengths asserted above.
        let mut acc = [[_mm256_setzero_ps(); V]; R];
        for row in acc.iter_mut() {
            for (v, a) in row.iter_mut().enumerate() {
                *a = unsafe { _mm256_loadu_ps(b.add(8 * v)) };
            }
        }
        for i in 0..inp {
            let wv: [__m256; V] =
                std::array::from_fn(|v| unsafe { _mm256_loadu_ps(w.add(i * wd + 8 * v)) });
            for (k, row) in acc.iter_mut().enumerate() {
                let xv = _mm256_set1_ps(unsafe { *xs[k].get_unchecked(i) });
                for (a, &wvv) in row.iter_mut().zip(&wv) {
                    *a = _mm256_fmadd_ps(xv, wvv, *a);
                }
            }
        }
        for (k, row) in acc.iter().enumerate() {
            for (v, &a) in row.iter().enumerate() {
                unsafe { _mm256_storeu_ps(res.as_mut_ptr().add(k * wd + 8 * v), a) };
            }
        }
    }

    /// `R` samples × `16 V` columns with 512-bit registers.
    #[inline]
    #[target_feature(enable = "avx512f,avx2,fma")]
    unsafe fn zmm<const R: usize, const V: usize>(xs: &[&[f32]; R], blk: &Block, res: &mut [f32]) {
        let wd = 16 * V;
        let inp = blk.w.len() / wd;
        assert!(blk.width == wd && blk.bias.len() == wd && res.len() == R * wd);
        assert!(xs.iter().all(|x| x.len() == inp));
        let (w, b) = (blk.w.as_ptr(), blk.bias.as_ptr());
        // SAFETY (every pointer below): in bounds by the lengths asserted above.
        let mut acc = [[_mm512_setzero_ps(); V]; R];
        for row in acc.iter_mut() {
            for (v, a) in row.iter_mut().enumerate() {
                *a = unsafe { _mm512_loadu_ps(b.add(16 * v)) };
            }
        }
        for i in 0..inp {
            let wv: [__m512; V] =
                std::array::from_fn(|v| unsafe { _mm512_loadu_ps(w.add(i * wd + 16 * v)) });
            for (k, row) in acc.iter_mut().enumerate() {
                let xv = _mm512_set1_ps(unsafe { *xs[k].get_unchecked(i) });
                for (a, &wvv) in row.iter_mut().zip(&wv) {
                    *a = _mm512_fmadd_ps(xv, wvv, *a);
                }
            }
        }
        for (k, row) in acc.iter().enumerate() {
            for (v, &a) in row.iter().enumerate() {
                unsafe { _mm512_storeu_ps(res.as_mut_ptr().add(k * wd + 16 * v), a) };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    /// The naive loop in the documented order and rounding.
    fn naive(x: &[f32], rows: usize, w: &Array2<f64>, b: &Array1<f64>) -> Vec<f32> {
        let (out, inp) = w.dim();
        let mut y = vec![0f32; rows * out];
        for r in 0..rows {
            for o in 0..out {
                let mut acc = b[o] as f32;
                for i in 0..inp {
                    acc = x[r * inp + i].mul_add(w[[o, i]] as f32, acc);
                }
                y[r * out + o] = acc;
            }
        }
        y
    }

    #[test]
    fn bit_identical_to_the_naive_loop_for_every_shape() {
        let mut rng = StdRng::seed_from_u64(3);
        for rows in [0, 1, 3, 5, 7, 8, 9, 13, 19] {
            for inp in [1, 2, 12, 33] {
                for out in [1, 2, 7, 8, 9, 15, 16, 17, 24, 25, 33, 40, 64, 70] {
                    let w = Array2::from_shape_fn((out, inp), |_| rng.random_range(-2.0..2.0));
                    let b = Array1::from_shape_fn(out, |_| rng.random_range(-1.0..1.0));
                    let x: Vec<f32> = (0..rows * inp)
                        .map(|_| rng.random_range(-3.0f32..3.0))
                        .collect();
                    let got = linear_f32(&x, rows, &w, Some(&b), false);
                    let want = naive(&x, rows, &w, &b);
                    let same = got
                        .iter()
                        .zip(&want)
                        .all(|(a, b)| a.to_bits() == b.to_bits());
                    assert!(same, "rows {rows} in {inp} out {out}");
                    for (r, widest) in [(4, 16), (8, 32), (4, 32), (8, 8)] {
                        let mut scalar = vec![0f32; rows * out];
                        let blocks = pack(&w, Some(&b), widest);
                        match r {
                            4 => kernel::<4>(&x, inp, &blocks, out, &mut scalar, false, micro::<4>),
                            _ => kernel::<8>(&x, inp, &blocks, out, &mut scalar, false, micro::<8>),
                        }
                        assert_eq!(scalar, got, "portable {r}x{widest}, {rows}x{inp}->{out}");
                    }
                    #[cfg(target_arch = "x86_64")]
                    if std::arch::is_x86_feature_detected!("avx2")
                        && std::arch::is_x86_feature_detected!("fma")
                    {
                        let mut v = vec![0f32; rows * out];
                        // SAFETY: the CPU has AVX2 and FMA (checked just above).
                        unsafe {
                            x86::kernel_avx2(&x, inp, &pack(&w, Some(&b), 16), out, &mut v, false)
                        };
                        assert_eq!(v, got, "avx2, {rows}x{inp}->{out}");
                    }
                    let fused = linear_f32(&x, rows, &w, Some(&b), true);
                    let relu: Vec<f32> =
                        got.iter().map(|&v| if v > 0.0 { v } else { 0.0 }).collect();
                    assert_eq!(fused, relu, "fused ReLU, {rows}x{inp}->{out}");
                }
            }
        }
    }
}
