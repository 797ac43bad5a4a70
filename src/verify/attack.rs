//! Counterexample search: random sampling, then projected gradient descent with restarts, and
//! the exact confirmation every reported counterexample must pass.
//!
//! In: a graph, one [`Region`] of a property and a box inside its `f64` box. Out: a
//! [`Counterexample`] only if [`confirm`] proves it: the point (clipped to the region's `f64`
//! box, preferably snapped to the nearest `f32` inside, so that `f32` runtimes read the same
//! number) lies in the *exact* box and its exact outputs (`eval::exact`) satisfy some unsafe
//! conjunction exactly. The search itself runs in `f64` on the [`Objective`]
//! `min_d max_a (a·Y − b)`: a point is unsafe iff some disjunct has all its margins `≤ 0`, so
//! the search minimises the worst margin of the most promising disjunct, with the sign of the
//! gradient of that one atom (an L∞ step scaled per input by the box width).

use ndarray::Array2;
use num_rational::BigRational;
use num_traits::{Signed, ToPrimitive, Zero};
use rand::Rng;

use super::grad::Tape;
use super::Deadline;
use crate::error::Result;
use crate::eval::exact::{forward_f64_point, RatInterval};
use crate::eval::forward_f64;
use crate::ir::Graph;
use crate::spec::Region;

/// A confirmed violation: an input in the exact box of region `region` whose exact outputs
/// satisfy one of its unsafe conjunctions. `output` is the network's value at `input`
/// (the exact value rounded to `f64`).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Counterexample {
    pub region: usize,
    pub input: Vec<f64>,
    pub output: Vec<f64>,
}

/// The search objective of a region: `min_d max_a (a·y − b)`; `≤ 0` means unsafe in `f64`.
pub struct Objective {
    /// Per disjunct, per atom: coefficients and right-hand side.
    disjuncts: Vec<Vec<(Vec<f64>, f64)>>,
}

impl Objective {
    pub fn new(region: &Region) -> Objective {
        Objective {
            disjuncts: region
                .unsafe_outputs
                .iter()
                .map(|c| c.atoms.iter().map(|a| (a.coeffs.clone(), a.rhs)).collect())
                .collect(),
        }
    }

    /// The objective at `y` and the atom `(d, a)` that attains it (`None` when a disjunct has
    /// no atom, so every point is unsafe, or when there is no disjunct, so none is).
    pub fn value(&self, y: &[f64]) -> (f64, Option<(usize, usize)>) {
        let mut best = (f64::INFINITY, None);
        for (d, atoms) in self.disjuncts.iter().enumerate() {
            let mut worst = (f64::NEG_INFINITY, None);
            for (a, (c, b)) in atoms.iter().enumerate() {
                let m = c.iter().zip(y).map(|(c, y)| c * y).sum::<f64>() - b;
                if m > worst.0 || worst.1.is_none() {
                    worst = (m, Some((d, a)));
                }
            }
            if worst.0 < best.0 {
                best = worst;
            }
        }
        best
    }

    /// The coefficients of atom `(d, a)`.
    pub fn coeffs(&self, at: (usize, usize)) -> &[f64] {
        &self.disjuncts[at.0][at.1].0
    }
}

/// How hard to search.
#[derive(Clone, Copy, Debug)]
pub struct AttackConfig {
    /// Uniform random samples (the centre is always tried too).
    pub samples: usize,
    /// PGD runs, started from the best samples.
    pub restarts: usize,
    /// PGD steps per run.
    pub steps: usize,
}

/// Searches the box `[lo, hi]` (inside region `index`'s `f64` box) for a confirmed
/// counterexample. Gradients are skipped (sampling only) when `use_gradient` is false.
#[allow(clippy::too_many_arguments)]
pub fn search(
    graph: &Graph,
    region: &Region,
    index: usize,
    lo: &[f64],
    hi: &[f64],
    cfg: AttackConfig,
    use_gradient: bool,
    rng: &mut impl Rng,
    deadline: &Deadline,
) -> Result<Option<Counterexample>> {
    let obj = Objective::new(region);
    if obj.disjuncts.is_empty() {
        return Ok(None);
    }
    let n = lo.len();
    let rows = cfg.samples + 1;
    let x = Array2::from_shape_fn((rows, n), |(r, i)| {
        if r == 0 || hi[i] <= lo[i] {
            lo[i] + 0.5 * (hi[i] - lo[i])
        } else {
            rng.random_range(lo[i]..=hi[i])
        }
    });
    let y = forward_f64(graph, x.view())?;
    let mut scored: Vec<(f64, usize)> = (0..rows)
        .map(|r| (obj.value(y.row(r).as_slice().unwrap_or(&[])).0, r))
        .collect();
    scored.sort_by(|a, b| a.0.total_cmp(&b.0));
    if let Some(c) = confirm_best(graph, region, index, &x, &scored)? {
        return Ok(Some(c));
    }
    if !use_gradient || cfg.restarts == 0 || deadline.passed() {
        return Ok(None);
    }
    let starts: Vec<usize> = scored.iter().take(cfg.restarts).map(|s| s.1).collect();
    let mut cur = Array2::from_shape_fn((starts.len(), n), |(r, i)| x[(starts[r], i)]);
    let mut best_x = cur.clone();
    let mut best_v = vec![f64::INFINITY; starts.len()];
    for step in 0..cfg.steps {
        if deadline.passed() {
            break;
        }
        let tape = Tape::forward(graph, cur.view())?;
        let out = tape.outputs()?;
        let mut cot = Array2::zeros(out.dim());
        for r in 0..cur.nrows() {
            let (v, at) = obj.value(out.row(r).as_slice().unwrap_or(&[]));
            if v < best_v[r] {
                best_v[r] = v;
                best_x.row_mut(r).assign(&cur.row(r));
            }
            if let Some(at) = at {
                for (j, c) in obj.coeffs(at).iter().enumerate() {
                    cot[(r, j)] = *c;
                }
            }
        }
        let g = tape.backward(cot.view())?;
        // Step sizes shrink geometrically from a tenth of the box to about 1/1000 of it.
        let frac = 0.1 * (0.001f64 / 0.1).powf(step as f64 / cfg.steps.max(1) as f64);
        for r in 0..cur.nrows() {
            for i in 0..n {
                let s = g[(r, i)];
                if s != 0.0 {
                    let v = cur[(r, i)] - frac * (hi[i] - lo[i]) * s.signum();
                    cur[(r, i)] = v.clamp(lo[i], hi[i]);
                }
            }
        }
    }
    // The last iterate too.
    let y = forward_f64(graph, cur.view())?;
    for (r, best) in best_v.iter_mut().enumerate() {
        let v = obj.value(y.row(r).as_slice().unwrap_or(&[])).0;
        if v < *best {
            *best = v;
            best_x.row_mut(r).assign(&cur.row(r));
        }
    }
    let mut scored: Vec<(f64, usize)> = best_v.iter().copied().zip(0..).collect();
    scored.sort_by(|a, b| a.0.total_cmp(&b.0));
    confirm_best(graph, region, index, &best_x, &scored)
}

/// Confirms (exactly) the few best rows of `x` whose `f64` objective is `≤ 0`.
fn confirm_best(
    graph: &Graph,
    region: &Region,
    index: usize,
    x: &Array2<f64>,
    scored: &[(f64, usize)],
) -> Result<Option<Counterexample>> {
    for &(v, r) in scored.iter().take(3) {
        if v > 0.0 {
            break;
        }
        let point = x.row(r).to_vec();
        if let Some(c) = confirm(graph, region, index, &point)? {
            return Ok(Some(c));
        }
    }
    Ok(None)
}

/// Exactly checks `x` (clipped to the region's `f64` box) as a counterexample of region
/// `index`: first its nearest `f32` point inside the exact box, then the `f64` point itself.
pub fn confirm(
    graph: &Graph,
    region: &Region,
    index: usize,
    x: &[f64],
) -> Result<Option<Counterexample>> {
    let b = &region.input;
    if x.len() != b.dim() {
        return Ok(None);
    }
    let clipped: Vec<f64> = x
        .iter()
        .zip(b.lower.iter().zip(&b.upper))
        .map(|(v, (l, h))| v.clamp(*l, *h))
        .collect();
    let mut candidates = Vec::with_capacity(2);
    if let Some(s) = snap_f32(region, &clipped) {
        candidates.push(s);
    }
    candidates.push(clipped);
    for cand in candidates {
        let q: Option<Vec<BigRational>> =
            cand.iter().map(|v| BigRational::from_float(*v)).collect();
        let Some(q) = q else { continue };
        if !b.contains_exact(&q) {
            continue;
        }
        let y = forward_f64_point(graph, &cand)?;
        if unsafe_exact(region, &y) {
            let output = y
                .iter()
                .map(|v| v.lo.to_f64().unwrap_or(f64::NAN))
                .collect();
            return Ok(Some(Counterexample {
                region: index,
                input: cand,
                output,
            }));
        }
    }
    Ok(None)
}

/// Whether every value in the output enclosures satisfies some conjunction of the region
/// (the exact check of `Spec`'s atoms when the outputs are points).
pub fn unsafe_exact(region: &Region, y: &[RatInterval]) -> bool {
    if y.iter().all(RatInterval::is_point) {
        let p: Vec<BigRational> = y.iter().map(|v| v.lo.clone()).collect();
        return region.unsafe_outputs.iter().any(|c| c.holds_exact(&p));
    }
    region.unsafe_outputs.iter().any(|c| {
        c.atoms.iter().all(|a| {
            if a.coeffs_exact.len() != y.len() {
                return false;
            }
            // The largest value of a·y over the enclosures must still be ≤ b.
            let sup = a
                .coeffs_exact
                .iter()
                .zip(y)
                .filter(|(c, _)| !c.is_zero())
                .fold(BigRational::zero(), |acc, (c, v)| {
                    acc + if c.is_positive() {
                        c * &v.hi
                    } else {
                        c * &v.lo
                    }
                });
            sup <= a.rhs_exact
        })
    })
}

/// `x` with every coordinate moved to an `f32` number inside the exact box (the nearest one,
/// or its neighbour inward), or `None` when some interval holds no `f32` number near `x`.
fn snap_f32(region: &Region, x: &[f64]) -> Option<Vec<f64>> {
    let b = &region.input;
    x.iter()
        .enumerate()
        .map(|(i, &v)| {
            let mut s = v as f32;
            for _ in 0..4 {
                let q = BigRational::from_float(s as f64)?;
                if q < b.lower_exact[i] {
                    s = next_f32(s, true);
                } else if q > b.upper_exact[i] {
                    s = next_f32(s, false);
                } else {
                    return Some(s as f64);
                }
            }
            None
        })
        .collect()
}

/// The next `f32` above (`up`) or below a finite `x`.
fn next_f32(x: f32, up: bool) -> f32 {
    if x == 0.0 {
        let tiny = f32::from_bits(1);
        return if up { tiny } else { -tiny };
    }
    let bits = x.to_bits();
    let away = (x > 0.0) == up;
    f32::from_bits(if away { bits + 1 } else { bits - 1 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_f32_steps_one_ulp() {
        assert!(next_f32(1.0, true) > 1.0);
        assert!(next_f32(1.0, false) < 1.0);
        assert!(next_f32(-1.0, true) > -1.0);
        assert!(next_f32(-1.0, false) < -1.0);
        assert!(next_f32(0.0, true) > 0.0);
        assert_eq!(next_f32(next_f32(0.5, true), false), 0.5);
    }
}
