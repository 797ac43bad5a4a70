//! The independent checker of holds certificates (`beacons check-cert`).
//!
//! In: the model's canonical graph (loaded by the shared importer), the parsed property, the
//! certificate, and the SHA-256 of the model and property files. Out: a [`Decision`] —
//! accepted, or rejected with the region, leaf and reason — or an input error (a certificate
//! of another kind or version, hashes that do not match the files, a model the checker
//! cannot read). It trusts the ONNX/NNet loader, the VNN-LIB parser, and IEEE-754 `f64`
//! arithmetic with round-to-nearest; it shares no bound code with the engines. It checks:
//!
//! 1. the certificate has one entry per region; a region with no disjunct or an empty exact
//!    box is vacuous and needs nothing;
//! 2. every other region's recorded box is exactly the property's `f64` box (which contains
//!    the exact box), every leaf is a box inside it with one claim per disjunct, naming an
//!    atom of that disjunct with a finite bound `> 0`, and the leaves cover the box exactly
//!    ([`cover`](super::cover));
//! 3. on every leaf, every claim: its own backward linear bound ([`net`](super::net)) of the
//!    atom's margin `a·N(x) − b` is `≥` the claimed bound, on the leaf or, where its
//!    relaxation is looser than the engine's, on every box of a bisection of the leaf up to
//!    [`MAX_DEPTH`] levels (the side with the largest `|a_i|·width_i` of the margin's linear
//!    bound is halved). A claim it cannot reproduce is a rejection. The leaves are reached
//!    by the coverage search itself (a tree of boxes that, for the partitions verify writes,
//!    ends exactly at the leaves), and every box of it passes its interval enclosure of the
//!    network's values to its halves, where it is intersected with theirs: sound, since
//!    bounds over a box hold on every box inside it, and as tight as the enclosures the
//!    engine's branch-and-bound inherits from the boxes around a leaf.
//!
//! Then no input of any region satisfies any unsafe disjunct: the property holds.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use serde::Serialize;

use super::cover::{covers, meeting, step, Corners, Step};
use ndarray::Array2;

use super::net::{down, eta, gamma2, up, Enclosure, Net};
use super::{Certificate, Leaf, KIND, VERSION};
use crate::error::{Error, Result};
use crate::ir::Graph;
use crate::spec::{Region, Spec};

/// Deepest bisection of one leaf the checker tries.
pub const MAX_DEPTH: usize = 10;

/// What an accepted certificate established.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Checked {
    pub regions: usize,
    pub leaves: usize,
    /// Leaves whose claims the checker reproduced only on a bisection of the leaf.
    pub subdivided: usize,
    /// Boxes the checker bounded.
    pub boxes: usize,
}

/// Why a certificate is rejected.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Rejection {
    pub region: Option<usize>,
    pub leaf: Option<usize>,
    pub reason: String,
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(r) = self.region {
            write!(f, "region {r}: ")?;
        }
        if let Some(l) = self.leaf {
            write!(f, "leaf {l}: ")?;
        }
        write!(f, "{}", self.reason)
    }
}

/// The checker's answer.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    Accepted(Checked),
    Rejected(Rejection),
}

impl Decision {
    pub fn accepted(&self) -> bool {
        matches!(self, Decision::Accepted(_))
    }
}

fn reject(region: Option<usize>, leaf: Option<usize>, reason: String) -> Decision {
    Decision::Rejected(Rejection {
        region,
        leaf,
        reason,
    })
}

/// Whether a region can hold no counterexample (no disjunct, or an empty exact box).
fn vacuous(r: &Region) -> bool {
    r.unsafe_outputs.is_empty()
        || r.input
            .lower_exact
            .iter()
            .zip(&r.input.upper_exact)
            .any(|(l, h)| l > h)
}

/// Checks `cert` (module docs). `done` is called with the number of leaves checked so far.
pub fn check(
    graph: &Graph,
    spec: &Spec,
    cert: &Certificate,
    model_sha256: &str,
    spec_sha256: &str,
    done: &(dyn Fn(usize) + Sync),
) -> Result<Decision> {
    if cert.kind != KIND || cert.version != VERSION {
        return Err(Error::Invalid(format!(
            "expected a certificate of kind `{KIND}` version {VERSION}, found `{}` version {}",
            cert.kind, cert.version
        )));
    }
    if cert.model_sha256 != model_sha256 {
        return Err(Error::Invalid(format!(
            "the certificate is for another model (SHA-256 {}, this file's is {model_sha256})",
            cert.model_sha256
        )));
    }
    if cert.spec_sha256 != spec_sha256 {
        return Err(Error::Invalid(format!(
            "the certificate is for another property (SHA-256 {}, this file's is {spec_sha256})",
            cert.spec_sha256
        )));
    }
    let net = Net::new(graph)?;
    if spec.num_inputs != net.inputs || spec.num_outputs != net.outputs {
        return Err(Error::Invalid(format!(
            "the property has {} inputs and {} outputs, the model {} and {}",
            spec.num_inputs, spec.num_outputs, net.inputs, net.outputs
        )));
    }
    if cert.regions.len() != spec.regions.len() {
        return Ok(reject(
            None,
            None,
            format!(
                "{} regions recorded, the property has {}",
                cert.regions.len(),
                spec.regions.len()
            ),
        ));
    }
    // Structure and coverage of every region first (cheap), then the bounds.
    for (k, (r, rc)) in spec.regions.iter().zip(&cert.regions).enumerate() {
        if vacuous(r) {
            continue;
        }
        if let Some(d) = structure(r, rc) {
            return Ok(d.with_region(k));
        }
    }
    let (mut leaves, mut subdivided, mut boxes) = (0, 0, 0);
    let finished = AtomicUsize::new(0);
    for (k, (r, rc)) in spec.regions.iter().zip(&cert.regions).enumerate() {
        if vacuous(r) {
            continue;
        }
        let corners: Vec<(Vec<f64>, Vec<f64>)> = rc
            .leaves
            .iter()
            .map(|l| (nums(&l.lo), nums(&l.hi)))
            .collect();
        let refs: Vec<Corners> = corners
            .iter()
            .map(|(l, h)| (l.as_slice(), h.as_slice()))
            .collect();
        let walk = Walk {
            net: &net,
            region: r,
            leaves: &rc.leaves,
            corners: &refs,
            proved: (0..refs.len()).map(|_| AtomicBool::new(false)).collect(),
            finished: &finished,
            done,
        };
        let (lo, hi) = (&r.input.lower, &r.input.upper);
        let mut res = walk.visit(lo, hi, meeting(lo, hi, &refs), None);
        // Leaves the walk never reached (covered by others) are checked all the same.
        for (n, leaf) in rc.leaves.iter().enumerate() {
            if !walk.proved[n].load(Ordering::Relaxed) {
                res = merge(res, walk.prove(n, leaf, None));
            }
        }
        match res {
            Ok(t) => {
                boxes += t.boxes;
                subdivided += t.subdivided;
            }
            Err((n, why)) => {
                let leaf = (n != usize::MAX).then_some(n);
                return Ok(reject(Some(k), leaf, why));
            }
        }
        leaves += rc.leaves.len();
    }
    Ok(Decision::Accepted(Checked {
        regions: spec.regions.len(),
        leaves,
        subdivided,
        boxes,
    }))
}

fn nums(v: &[super::Num]) -> Vec<f64> {
    v.iter().map(|x| x.0).collect()
}

/// Counts of a successful walk.
#[derive(Clone, Copy, Default)]
struct Tally {
    boxes: usize,
    subdivided: usize,
}

/// A failure: the leaf (`usize::MAX`: none) and the reason.
type Failure = (usize, String);

/// Both results; of two failures, the one of the lower leaf (deterministic under threads).
fn merge(
    a: std::result::Result<Tally, Failure>,
    b: std::result::Result<Tally, Failure>,
) -> std::result::Result<Tally, Failure> {
    match (a, b) {
        (Ok(x), Ok(y)) => Ok(Tally {
            boxes: x.boxes + y.boxes,
            subdivided: x.subdivided + y.subdivided,
        }),
        (Err(e), Ok(_)) | (Ok(_), Err(e)) => Err(e),
        (Err(e), Err(f)) => Err(if f.0 < e.0 { f } else { e }),
    }
}

/// The coverage search of one region with the leaves' proofs at its ends. Each box of the
/// search hands its enclosure of the network to its halves, so a leaf reached as a box of
/// the search is bounded with the enclosures of all the boxes around it, as the engine's
/// branch-and-bound bounded it (a leaf reached only as part of a box is bounded alone).
struct Walk<'a> {
    net: &'a Net,
    region: &'a Region,
    leaves: &'a [Leaf],
    corners: &'a [Corners<'a>],
    proved: Vec<AtomicBool>,
    finished: &'a AtomicUsize,
    done: &'a (dyn Fn(usize) + Sync),
}

impl Walk<'_> {
    fn visit(
        &self,
        lo: &[f64],
        hi: &[f64],
        idx: Vec<usize>,
        inherited: Option<&Enclosure>,
    ) -> std::result::Result<Tally, Failure> {
        match step(lo, hi, &idx, self.corners) {
            Step::Gap => Err((usize::MAX, gap(lo, hi))),
            Step::Contained(n) => {
                if self.proved[n].load(Ordering::Relaxed) {
                    return Ok(Tally::default());
                }
                let exact = self.corners[n].0 == lo && self.corners[n].1 == hi;
                self.prove(n, &self.leaves[n], if exact { inherited } else { None })
            }
            Step::Split(a, b) => {
                let e = self.net.bounds(lo, hi, inherited);
                let (x, y) = rayon::join(
                    || self.visit(&a.0, &a.1, a.2, Some(&e)),
                    || self.visit(&b.0, &b.1, b.2, Some(&e)),
                );
                merge(x, y)
            }
        }
    }

    fn prove(
        &self,
        n: usize,
        leaf: &Leaf,
        inherited: Option<&Enclosure>,
    ) -> std::result::Result<Tally, Failure> {
        if self.proved[n].swap(true, Ordering::Relaxed) {
            return Ok(Tally::default());
        }
        let res = prove_leaf(self.net, self.region, leaf, inherited);
        (self.done)(self.finished.fetch_add(1, Ordering::Relaxed) + 1);
        match res {
            Ok(b) => Ok(Tally {
                boxes: b,
                subdivided: usize::from(b > 1),
            }),
            Err(why) => Err((n, why)),
        }
    }
}

impl Decision {
    fn with_region(self, k: usize) -> Decision {
        match self {
            Decision::Rejected(mut r) => {
                r.region = Some(k);
                Decision::Rejected(r)
            }
            a => a,
        }
    }
}

/// Point 2 of the module docs for one non-vacuous region; `Some(rejection)` on a failure.
fn structure(r: &Region, rc: &super::RegionCert) -> Option<Decision> {
    let (lo, hi) = (&r.input.lower, &r.input.upper);
    let d = lo.len();
    let same = |a: &[super::Num], b: &[f64]| {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.0.to_bits() == y.to_bits())
    };
    if !same(&rc.lower, lo) || !same(&rc.upper, hi) {
        return Some(reject(
            None,
            None,
            "the recorded input box is not the property's".into(),
        ));
    }
    for (n, leaf) in rc.leaves.iter().enumerate() {
        let bad = |why: String| Some(reject(None, Some(n), why));
        if leaf.lo.len() != d || leaf.hi.len() != d {
            return bad(format!("the box has not {d} sides"));
        }
        for i in 0..d {
            let (l, h) = (leaf.lo[i].0, leaf.hi[i].0);
            if !(lo[i] <= l && l <= h && h <= hi[i]) {
                return bad(format!(
                    "side {i} [{l:?}, {h:?}] is not inside the region's [{:?}, {:?}]",
                    lo[i], hi[i]
                ));
            }
        }
        if leaf.claims.len() != r.unsafe_outputs.len() {
            return bad(format!(
                "{} claims for {} disjuncts",
                leaf.claims.len(),
                r.unsafe_outputs.len()
            ));
        }
        for (j, c) in leaf.claims.iter().enumerate() {
            let Some(atom) = r.unsafe_outputs[j].atoms.get(c.atom) else {
                return bad(format!("disjunct {j} has no atom {}", c.atom));
            };
            if !(c.bound.0 > 0.0 && c.bound.0.is_finite()) {
                return bad(format!(
                    "disjunct {j}: the claimed bound {:?} is not a positive number",
                    c.bound.0
                ));
            }
            if !atom.is_exact_in_f64() {
                return bad(format!(
                    "disjunct {j} atom {}: coefficients that are not doubles are not \
                     supported by the checker",
                    c.atom
                ));
            }
            if let Some(w) = &c.weights {
                let atoms = &r.unsafe_outputs[j].atoms;
                if w.len() != atoms.len() {
                    return bad(format!(
                        "disjunct {j}: {} weights for {} atoms",
                        w.len(),
                        atoms.len()
                    ));
                }
                if w.iter().any(|v| !(v.0 >= 0.0 && v.0.is_finite()))
                    || w.iter().all(|v| v.0 == 0.0)
                {
                    return bad(format!(
                        "disjunct {j}: the weights must be finite, non-negative and not all zero"
                    ));
                }
                if let Some(a) = atoms.iter().position(|a| !a.is_exact_in_f64()) {
                    return bad(format!(
                        "disjunct {j} atom {a}: coefficients that are not doubles are not \
                         supported by the checker"
                    ));
                }
            }
        }
    }
    let corners: Vec<Vec<f64>> = rc
        .leaves
        .iter()
        .flat_map(|l| {
            [
                l.lo.iter().map(|v| v.0).collect(),
                l.hi.iter().map(|v| v.0).collect(),
            ]
        })
        .collect();
    let refs: Vec<Corners> = corners
        .chunks(2)
        .map(|c| (c[0].as_slice(), c[1].as_slice()))
        .collect();
    covers(lo, hi, &refs)
        .err()
        .map(|(blo, bhi)| reject(None, None, gap(&blo, &bhi)))
}

/// The rejection of an uncovered box.
fn gap(lo: &[f64], hi: &[f64]) -> String {
    let sides: Vec<String> = lo
        .iter()
        .zip(hi)
        .map(|(l, h)| format!("[{l:?}, {h:?}]"))
        .collect();
    format!(
        "no leaf covers the inside of the box {} of the region",
        sides.join(" × ")
    )
}

/// Proves every claim of `leaf`; `Ok(boxes bounded)` or the reason it could not.
fn prove_leaf(
    net: &Net,
    r: &Region,
    leaf: &Leaf,
    inherited: Option<&Enclosure>,
) -> std::result::Result<usize, String> {
    let lo: Vec<f64> = leaf.lo.iter().map(|v| v.0).collect();
    let hi: Vec<f64> = leaf.hi.iter().map(|v| v.0).collect();
    let pending: Vec<usize> = (0..leaf.claims.len()).collect();
    let mut boxes = 0;
    let mut first: Vec<f64> = vec![f64::NAN; leaf.claims.len()];
    let at = Place {
        net,
        region: r,
        leaf,
    };
    match prove_box(
        &at, &lo, &hi, &pending, inherited, 0, &mut boxes, &mut first,
    ) {
        None => Ok(boxes),
        Some(j) => {
            let c = &leaf.claims[j];
            Err(format!(
                "disjunct {j}: claimed margin ≥ {:?} for atom {}, reproduced {:?} on the leaf \
                 and not reached on its sub-boxes after bisecting up to {MAX_DEPTH} levels",
                c.bound.0, c.atom, first[j]
            ))
        }
    }
}

/// The margin a claim bounds, as a row over the outputs: `row·Y − rhs`, where the exact
/// objective `Σ_j w_j (a_j·Y − b_j)` (or the one atom's `a·Y − b`) is at least
/// `row·Y − rhs − Σ_k err_k |Y_k|`.
struct Objective {
    row: Vec<f64>,
    /// Rounded up.
    rhs: f64,
    /// Per output, an upper bound of `|row_k − Σ_j w_j a_jk|` (zeros for one atom).
    err: Vec<f64>,
}

impl Objective {
    /// `Σ_k err_k m_k` rounded up, for output magnitudes `m`.
    fn slack(&self, m: &[f64]) -> f64 {
        let mut s = 0.0;
        for (e, m) in self.err.iter().zip(m) {
            if *e != 0.0 {
                s = up(s + up(e * m));
            }
        }
        s
    }
}

/// The objective of `claim` on the disjunct with `atoms`. Each `row_k` is the round-to-nearest
/// sum of `m` products, within `γ_m Σ_j |w_j a_jk|` (+ underflow) of the exact sum; `rhs` is
/// summed with every step rounded up (the weights are non-negative and each `b_j` is already
/// an upper bound of the exact right-hand side).
fn objective(atoms: &[crate::spec::Atom], claim: &super::Claim) -> Objective {
    let Some(w) = &claim.weights else {
        let a = &atoms[claim.atom];
        return Objective {
            row: a.coeffs.clone(),
            rhs: a.rhs,
            err: vec![0.0; a.coeffs.len()],
        };
    };
    let n = atoms.first().map_or(0, |a| a.coeffs.len());
    let m = atoms.len();
    let mut row = vec![0.0; n];
    let mut err = vec![0.0; n];
    for k in 0..n {
        let mut abs = 0.0;
        for (a, wj) in atoms.iter().zip(w) {
            let p = wj.0 * a.coeffs[k];
            row[k] += p;
            abs += p.abs();
        }
        // `abs` itself is a rounded sum of m terms: inflated by (1 + 2mε) to bound the exact one.
        err[k] = up(up(up(abs * (1.0 + 2.0 * m as f64 * f64::EPSILON)) * gamma2(m)) + eta(m));
    }
    let mut rhs = 0.0;
    for (a, wj) in atoms.iter().zip(w) {
        rhs = up(rhs + up(wj.0 * a.rhs));
    }
    Objective { row, rhs, err }
}

/// What [`prove_box`] works on.
struct Place<'a> {
    net: &'a Net,
    region: &'a Region,
    leaf: &'a Leaf,
}

/// Proves the claims `pending` on `[lo, hi]`, bisecting; `Some(claim)` that failed.
#[allow(clippy::too_many_arguments)]
fn prove_box(
    at: &Place,
    lo: &[f64],
    hi: &[f64],
    pending: &[usize],
    inherited: Option<&Enclosure>,
    depth: usize,
    boxes: &mut usize,
    first: &mut [f64],
) -> Option<usize> {
    *boxes += 1;
    let (net, r, leaf) = (at.net, at.region, at.leaf);
    let n_out = net.outputs;
    let objectives: Vec<Objective> = pending
        .iter()
        .map(|&j| objective(&r.unsafe_outputs[j].atoms, &leaf.claims[j]))
        .collect();
    let rows = Array2::from_shape_fn((pending.len(), n_out), |(i, k)| objectives[i].row[k]);
    let e = net.bounds(lo, hi, inherited);
    let (b, coeffs) = net.lower_rows_in(&e, rows);
    let magnitude = e.output_magnitude();
    let mut open = Vec::new();
    let mut steer: Option<Vec<f64>> = None;
    for (i, &j) in pending.iter().enumerate() {
        // a·N(x) − rhs ≥ b − rhs, and rhs is the exact right-hand side rounded up; a weighted
        // claim also pays for the rounding of its combined row (see `objective`).
        let o = &objectives[i];
        let m = down(b[i] - o.rhs);
        let slack = o.slack(&magnitude);
        let m = if slack > 0.0 { down(m - slack) } else { m };
        if depth == 0 {
            first[j] = m;
        }
        // Proved; a NaN is not, and stays open.
        if m >= leaf.claims[j].bound.0 {
            continue;
        }
        if steer.is_none() {
            steer = Some(coeffs.row(i).to_vec());
        }
        open.push(j);
    }
    let a = steer?;
    if depth >= MAX_DEPTH {
        return Some(open[0]);
    }
    // Halve the side with the largest |a_i| · width_i (else the widest) that can be halved.
    let halvable = |i: usize| {
        let m = lo[i] + 0.5 * (hi[i] - lo[i]);
        (lo[i] < m && m < hi[i]).then_some(m)
    };
    let score = |i: usize| (a[i].abs() * (hi[i] - lo[i]), hi[i] - lo[i]);
    let Some(i) = (0..lo.len())
        .filter(|&i| halvable(i).is_some())
        .max_by(|&x, &y| {
            score(x)
                .partial_cmp(&score(y))
                .unwrap_or(std::cmp::Ordering::Equal)
        })
    else {
        return Some(open[0]);
    };
    let Some(m) = halvable(i) else {
        return Some(open[0]);
    };
    let (mut left_hi, mut right_lo) = (hi.to_vec(), lo.to_vec());
    left_hi[i] = m;
    right_lo[i] = m;
    let e = Some(&e);
    prove_box(at, lo, &left_hi, &open, e, depth + 1, boxes, first)
        .or_else(|| prove_box(at, &right_lo, hi, &open, e, depth + 1, boxes, first))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cert::{Claim, Num, RegionCert};

    /// `y = (x, −x)` on `x ∈ [−1, 1]` with the unsafe conjunction `y0 ≤ −0.1 ∧ y1 ≤ −0.1`
    /// (`x ≤ −0.1` and `x ≥ 0.1`): no single atom is excluded on the box (each margin's
    /// minimum is −0.9), but half of each gives `0.1` everywhere.
    fn problem() -> (Graph, Spec) {
        let mut g = Graph::new();
        let x = g.add_input("x", vec![1, 1]);
        let w = ndarray::arr2(&[[1.0], [-1.0]]);
        let y = g
            .add_node(
                "l",
                crate::ir::Op::Linear {
                    weight: w,
                    bias: None,
                },
                vec![x],
                "y",
            )
            .unwrap();
        g.add_output(y);
        let text = "(declare-const X_0 Real)\n(declare-const Y_0 Real)\n(declare-const Y_1 Real)\n\
                    (assert (>= X_0 -1))\n(assert (<= X_0 1))\n\
                    (assert (<= Y_0 -0.1))\n(assert (<= Y_1 -0.1))\n";
        let spec = crate::spec::parse(text, std::path::Path::new("t.vnnlib")).unwrap();
        (g, spec)
    }

    fn cert(spec: &Spec, weights: Option<Vec<f64>>, bound: f64) -> Certificate {
        let r = &spec.regions[0];
        let leaf = Leaf {
            lo: vec![Num(r.input.lower[0])],
            hi: vec![Num(r.input.upper[0])],
            method: "bab-crown".into(),
            claims: vec![Claim {
                atom: 0,
                bound: Num(bound),
                weights: weights.map(|w| w.into_iter().map(Num).collect()),
            }],
        };
        let mut c = Certificate::new(vec![RegionCert::new(
            &r.input.lower,
            &r.input.upper,
            vec![leaf],
        )]);
        c.model_sha256 = "m".into();
        c.spec_sha256 = "s".into();
        c
    }

    fn decide(c: &Certificate) -> Decision {
        let (g, spec) = problem();
        check(&g, &spec, c, "m", "s", &|_| {}).unwrap()
    }

    #[test]
    fn a_weighted_claim_is_accepted_when_true_and_rejected_otherwise() {
        let (_, spec) = problem();
        assert!(decide(&cert(&spec, Some(vec![0.5, 0.5]), 0.05)).accepted());
        // The combination is exactly 0.1: a larger claim is false.
        assert!(!decide(&cert(&spec, Some(vec![0.5, 0.5]), 0.2)).accepted());
        // One atom alone is not excluded, with or without weights.
        assert!(!decide(&cert(&spec, Some(vec![1.0, 0.0]), 0.05)).accepted());
        assert!(!decide(&cert(&spec, None, 0.05)).accepted());
        // Malformed weights.
        for w in [
            vec![0.5],
            vec![-0.5, 1.5],
            vec![0.0, 0.0],
            vec![f64::NAN, 1.0],
        ] {
            assert!(!decide(&cert(&spec, Some(w), 0.05)).accepted());
        }
    }
}
