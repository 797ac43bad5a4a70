//! Error-bound certificates: the leaves of the final partition with the bound each proves,
//! written as versioned JSON, and the checker that re-derives them.
//!
//! A certificate says: over the region of the reference, `sup |N − f| ≤ upper`, because the
//! leaves cover the region and on every leaf `sup |N − f| ≤ bound ≤ upper`. [`check`] trusts
//! none of the engine's work. It
//!
//! 1. compares the recorded reference (inputs, output, expression text, region) with the one
//!    given, so a certificate cannot be replayed against another model or region;
//! 2. confirms the leaves cover the region exactly: each leaf lies inside the region, no two
//!    leaves share interior points (an exact comparison of `f64` ends), and the leaves'
//!    volumes add up to the region's in exact rational arithmetic. A finite union of closed
//!    boxes inside the region with the region's volume is the whole region (its complement
//!    would be relatively open and of measure zero, hence empty). Sides of zero width in the
//!    region are left out of both tests and must be the same point in every leaf;
//! 3. re-derives every leaf's bound with its own enclosure of the network ([`net`], forward
//!    interval arithmetic with the interval Jacobian, sharing no code with the bound engines)
//!    and of the expression: the mean-value form over the leaf, and where that alone does not
//!    reach the recorded bound, over halves of the leaf (bisection up to [`MAX_DEPTH`] levels);
//! 4. re-evaluates the witness and confirms `lower` does not exceed its rigorous error.

pub mod net;

use std::path::Path;

use num_rational::BigRational;
use num_traits::Zero;
use serde::{Deserialize, Serialize};

use super::bab::{Leaf, Outcome, Witness};
use super::enclose;
use super::interval::Iv;
use super::reference::Reference;
use crate::error::{Error, Result};
use crate::ir::Graph;

/// The format version written and accepted.
pub const VERSION: u32 = 1;
/// The `kind` field of error-bound certificates.
pub const KIND: &str = "beacons-error-bound";
/// Deepest bisection of one leaf the checker tries.
pub const MAX_DEPTH: usize = 12;

/// What a certificate records of the reference model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReferenceRecord {
    pub name: String,
    pub inputs: Vec<String>,
    pub output: usize,
    pub expression: String,
    pub region: Vec<[f64; 2]>,
}

impl ReferenceRecord {
    pub fn of(r: &Reference) -> ReferenceRecord {
        ReferenceRecord {
            name: r.name.clone(),
            inputs: r.inputs.clone(),
            output: r.output,
            expression: r.expression.clone(),
            region: r.region.iter().map(|i| [i.lo, i.hi]).collect(),
        }
    }
}

/// An error-bound certificate (serde, versioned; keys in a fixed order).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Certificate {
    pub version: u32,
    pub kind: String,
    pub reference: ReferenceRecord,
    pub upper: f64,
    pub lower: f64,
    pub witness: Option<Witness>,
    pub leaves: Vec<Leaf>,
}

impl Certificate {
    pub fn new(reference: &Reference, outcome: &Outcome) -> Certificate {
        Certificate {
            version: VERSION,
            kind: KIND.into(),
            reference: ReferenceRecord::of(reference),
            upper: outcome.upper,
            lower: outcome.lower,
            witness: outcome.witness.clone(),
            leaves: outcome.leaf_boxes.clone(),
        }
    }

    pub fn write(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string(self).map_err(|e| Error::Invalid(e.to_string()))?;
        std::fs::write(path, text + "\n").map_err(|e| Error::io(path, e))
    }

    pub fn read(path: &Path) -> Result<Certificate> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        serde_json::from_str(&text).map_err(|e| {
            Error::parse(
                path,
                crate::error::Location {
                    line: e.line(),
                    column: e.column(),
                },
                e.to_string(),
            )
        })
    }
}

/// What a successful check established.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Checked {
    pub upper: f64,
    pub leaves: usize,
    /// Leaves the checker had to bisect to reach their recorded bound.
    pub subdivided: usize,
}

fn reject<T>(why: String) -> Result<T> {
    Err(Error::Invalid(format!("certificate rejected: {why}")))
}

/// Checks `cert` against the network and the reference (see the module docs).
pub fn check(graph: &Graph, reference: &Reference, cert: &Certificate) -> Result<Checked> {
    if cert.version != VERSION || cert.kind != KIND {
        return reject(format!(
            "expected kind `{KIND}` version {VERSION}, found `{}` version {}",
            cert.kind, cert.version
        ));
    }
    if cert.reference != ReferenceRecord::of(reference) {
        return reject("it was made for another reference model or region".into());
    }
    net::supported(graph)?;
    let region = &reference.region;
    let d = region.len();
    if graph.input_size() != d || reference.output >= graph.output_size() {
        return reject(format!(
            "the model has {} inputs and {} outputs; the reference needs {d} inputs and output {}",
            graph.input_size(),
            graph.output_size(),
            reference.output
        ));
    }
    if cert.upper.is_nan() || cert.upper < 0.0 {
        return reject(format!("upper = {} is not a bound", cert.upper));
    }
    for (k, leaf) in cert.leaves.iter().enumerate() {
        let inside = leaf.lo.len() == d
            && leaf.hi.len() == d
            && (0..d).all(|i| {
                region[i].lo <= leaf.lo[i] && leaf.lo[i] <= leaf.hi[i] && leaf.hi[i] <= region[i].hi
            });
        if !inside {
            return reject(format!("leaf {k} is not a box inside the region"));
        }
        if leaf.bound.is_nan() || leaf.bound > cert.upper {
            return reject(format!(
                "leaf {k} bound {} exceeds upper {}",
                leaf.bound, cert.upper
            ));
        }
    }
    check_cover(region, &cert.leaves)?;
    let mut subdivided = 0;
    for (k, leaf) in cert.leaves.iter().enumerate() {
        let b: Vec<Iv> = (0..d).map(|i| Iv::new(leaf.lo[i], leaf.hi[i])).collect();
        match proves(graph, reference, &b, leaf.bound, 0)? {
            0 => {
                return reject(format!(
                    "leaf {k}: cannot re-derive its bound {}",
                    leaf.bound
                ))
            }
            1 => {}
            _ => subdivided += 1,
        }
    }
    if let Some(w) = &cert.witness {
        if w.input.len() != d || !(0..d).all(|i| region[i].contains(w.input[i])) {
            return reject("the witness is not a point of the region".into());
        }
        let n = net::at_point(graph, reference.output, &w.input)?;
        let p: Vec<Iv> = w.input.iter().map(|&v| Iv::point(v)).collect();
        let f = enclose::eval(&reference.expr, &p, false)
            .map_err(|u| Error::Invalid(format!("certificate rejected: the witness: {}", u.0)))?
            .v;
        let most = n.sub(f).abs().hi;
        if cert.lower > most {
            return reject(format!(
                "lower = {} exceeds the error {most} at the witness",
                cert.lower
            ));
        }
    } else if cert.lower > 0.0 {
        return reject("lower > 0 without a witness".into());
    }
    Ok(Checked {
        upper: cert.upper,
        leaves: cert.leaves.len(),
        subdivided,
    })
}

/// How many boxes it took to prove `bound` on `b` (0: could not within the depth limit).
fn proves(graph: &Graph, r: &Reference, b: &[Iv], bound: f64, depth: usize) -> Result<usize> {
    if net::error_bound(graph, r.output, &r.expr, b)? <= bound {
        return Ok(1);
    }
    if depth >= MAX_DEPTH {
        return Ok(0);
    }
    let i = super::bound::widest(b);
    let m = enclose::mid(b[i]);
    if !(m > b[i].lo && m < b[i].hi) {
        return Ok(0);
    }
    let mut total = 0;
    for half in [Iv::new(b[i].lo, m), Iv::new(m, b[i].hi)] {
        let mut c = b.to_vec();
        c[i] = half;
        let n = proves(graph, r, &c, bound, depth + 1)?;
        if n == 0 {
            return Ok(0);
        }
        total += n;
    }
    Ok(total)
}

/// Confirms the leaves (already known to lie inside `region`) cover it with disjoint
/// interiors and the region's total volume (module docs, point 2).
fn check_cover(region: &[Iv], leaves: &[Leaf]) -> Result<()> {
    let dims: Vec<usize> = (0..region.len())
        .filter(|&i| region[i].hi > region[i].lo)
        .collect();
    for (k, l) in leaves.iter().enumerate() {
        for (i, r) in region.iter().enumerate() {
            if !(dims.contains(&i) || l.lo[i] == r.lo && l.hi[i] == r.hi) {
                return reject(format!("leaf {k} leaves the region's fixed input {i}"));
            }
        }
    }
    if leaves.is_empty() {
        return reject("no leaves".into());
    }
    let q = |v: f64| BigRational::from_float(v).unwrap_or_default();
    let vol = |lo: &dyn Fn(usize) -> f64, hi: &dyn Fn(usize) -> f64| {
        dims.iter()
            .fold(BigRational::from_integer(1.into()), |acc, &i| {
                acc * (q(hi(i)) - q(lo(i)))
            })
    };
    let want = vol(&|i| region[i].lo, &|i| region[i].hi);
    let mut have = BigRational::zero();
    for l in leaves {
        have += vol(&|i| l.lo[i], &|i| l.hi[i]);
    }
    if have != want {
        return reject(format!(
            "the leaves' volume is {:.17e} of the region's (gaps or overlaps)",
            num_traits::ToPrimitive::to_f64(&(have / want)).unwrap_or(f64::NAN)
        ));
    }
    // Pairwise interior-disjointness, sweeping along the first free side.
    let Some(&s) = dims.first() else {
        return if leaves.len() == 1 {
            Ok(())
        } else {
            reject("several leaves on a one-point region".into())
        };
    };
    let mut order: Vec<usize> = (0..leaves.len()).collect();
    order.sort_by(|&a, &b| leaves[a].lo[s].total_cmp(&leaves[b].lo[s]));
    for (pos, &a) in order.iter().enumerate() {
        let la = &leaves[a];
        for &b in &order[pos + 1..] {
            let lb = &leaves[b];
            if lb.lo[s] >= la.hi[s] {
                break;
            }
            if dims
                .iter()
                .all(|&i| la.lo[i] < lb.hi[i] && lb.lo[i] < la.hi[i])
            {
                return reject(format!("leaves {a} and {b} overlap"));
            }
        }
    }
    Ok(())
}
