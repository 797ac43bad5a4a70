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

use super::net::{down, Enclosure, Net};
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
    let atoms: Vec<&crate::spec::Atom> = pending
        .iter()
        .map(|&j| &r.unsafe_outputs[j].atoms[leaf.claims[j].atom])
        .collect();
    let rows = Array2::from_shape_fn((pending.len(), n_out), |(i, k)| atoms[i].coeffs[k]);
    let e = net.bounds(lo, hi, inherited);
    let (b, coeffs) = net.lower_rows_in(&e, rows);
    let mut open = Vec::new();
    let mut steer: Option<Vec<f64>> = None;
    for (i, &j) in pending.iter().enumerate() {
        // a·N(x) − rhs ≥ b − rhs, and rhs is the exact right-hand side rounded up.
        let m = down(b[i] - atoms[i].rhs);
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
