//! Normalisation: the conjunction of all asserts, turned into input boxes with an unsafe DNF.
//!
//! Input: [`Parsed`] (formula trees whose leaves are input bounds or output atoms). The
//! conjunction of every `assert` is expanded into disjunctive normal form; each disjunct is
//! split into its input part (single-variable bounds, intersected into a box) and its output
//! part (a conjunction of `a·Y <= b` atoms). Disjuncts with identical exact boxes are grouped
//! into one [`Region`], in order of first appearance. Output: a [`Spec`].
//!
//! Rules, all reported with a location: every input must end with a finite lower and upper
//! bound in every disjunct (the error points at the input's declaration), a lower bound above
//! the upper bound is an error (an empty box is almost always a typo), and the expansion may
//! not exceed [`MAX_DISJUNCTS`] disjuncts or [`MAX_LEAF_REFS`] atom occurrences. A constant
//! atom that is true is dropped; a disjunct containing a false constant (or an empty `or`) is
//! dropped — a property whose every disjunct is dropped has no region and holds trivially.

use std::collections::{HashMap, HashSet};

use num_rational::BigRational;
use num_traits::Zero;

use super::model::{Atom, Conjunction, InputBox, Region, Spec};
use super::rational;
use super::sexpr::{LocatedError, Span};
use super::vnnlib::{Leaf, Node, Parsed};

/// Most disjuncts the DNF of a property may have.
pub const MAX_DISJUNCTS: usize = 100_000;
/// Most atom occurrences, summed over all disjuncts, the DNF may hold.
pub const MAX_LEAF_REFS: usize = 10_000_000;

type Conj = Vec<u32>;

fn too_big(span: Span) -> LocatedError {
    LocatedError {
        offset: span.start,
        message: format!(
            "the property expands to more than {MAX_DISJUNCTS} disjuncts (or {MAX_LEAF_REFS} \
             atoms) in disjunctive normal form; split it into several properties"
        ),
    }
}

/// The DNF of `node`: a list of disjuncts, each a list of leaf ids (`[]` is false, `[[]]` true).
fn dnf(node: &Node) -> Result<Vec<Conj>, LocatedError> {
    match node {
        Node::Leaf(id, _) => Ok(vec![vec![*id]]),
        Node::Const(true, _) => Ok(vec![Vec::new()]),
        Node::Const(false, _) => Ok(Vec::new()),
        Node::Or(children, _) => {
            let mut out = Vec::new();
            let mut refs = 0usize;
            for child in children {
                let d = dnf(child)?;
                refs += d.iter().map(Vec::len).sum::<usize>();
                if out.len() + d.len() > MAX_DISJUNCTS || refs > MAX_LEAF_REFS {
                    return Err(too_big(child.span()));
                }
                out.extend(d);
            }
            Ok(out)
        }
        Node::And(children, _) => conjoin(children),
    }
}

/// The DNF of the conjunction of `children`, by distributing left to right.
fn conjoin(children: &[Node]) -> Result<Vec<Conj>, LocatedError> {
    let mut acc: Vec<Conj> = vec![Vec::new()];
    // Kept up to date so that a file of many top-level asserts stays linear.
    let mut acc_refs = 0usize;
    for child in children {
        let d = dnf(child)?;
        if d.is_empty() {
            return Ok(Vec::new());
        }
        let d_refs: usize = d.iter().map(Vec::len).sum();
        let count = acc.len().saturating_mul(d.len());
        let refs = acc_refs
            .saturating_mul(d.len())
            .saturating_add(d_refs.saturating_mul(acc.len()));
        if count > MAX_DISJUNCTS || refs > MAX_LEAF_REFS {
            return Err(too_big(child.span()));
        }
        if d.len() == 1 {
            for a in &mut acc {
                a.extend_from_slice(&d[0]);
            }
        } else {
            let mut next = Vec::with_capacity(count);
            for a in &acc {
                for b in &d {
                    let mut c = Vec::with_capacity(a.len() + b.len());
                    c.extend_from_slice(a);
                    c.extend_from_slice(b);
                    next.push(c);
                }
            }
            acc = next;
        }
        acc_refs = refs;
    }
    Ok(acc)
}

/// Builds the [`Spec`] from the parsed asserts. `text` is only used to print locations.
pub fn normalize(text: &str, parsed: &Parsed) -> Result<Spec, LocatedError> {
    let disjuncts = conjoin(&parsed.asserts)?;
    let n = parsed.num_inputs;
    let mut regions: Vec<Region> = Vec::new();
    let mut region_of: HashMap<(Vec<BigRational>, Vec<BigRational>), usize> = HashMap::new();
    let mut atoms: Vec<Option<Atom>> = vec![None; parsed.leaves.len()];
    for conj in &disjuncts {
        let mut lower: Vec<Option<(&BigRational, Span)>> = vec![None; n];
        let mut upper: Vec<Option<(&BigRational, Span)>> = vec![None; n];
        let mut outputs: Vec<u32> = Vec::new();
        let mut seen: HashSet<u32> = HashSet::new();
        for &id in conj {
            match &parsed.leaves[id as usize] {
                Leaf::Bound {
                    var,
                    upper: is_upper,
                    value,
                    span,
                } => {
                    let slot = if *is_upper {
                        &mut upper[*var]
                    } else {
                        &mut lower[*var]
                    };
                    let tighter = match slot {
                        None => true,
                        Some((old, _)) if *is_upper => value < *old,
                        Some((old, _)) => value > *old,
                    };
                    if tighter {
                        *slot = Some((value, *span));
                    }
                }
                Leaf::Output { .. } => {
                    if seen.insert(id) {
                        outputs.push(id);
                    }
                }
            }
        }
        let input = make_box(text, parsed, &lower, &upper, disjuncts.len())?;
        let key = (input.lower_exact.clone(), input.upper_exact.clone());
        let index = *region_of.entry(key).or_insert_with(|| {
            regions.push(Region {
                input,
                unsafe_outputs: Vec::new(),
            });
            regions.len() - 1
        });
        let conjunction = Conjunction {
            atoms: outputs
                .iter()
                .map(|&id| {
                    atoms[id as usize]
                        .get_or_insert_with(|| make_atom(&parsed.leaves[id as usize], parsed))
                        .clone()
                })
                .collect(),
        };
        regions[index].unsafe_outputs.push(conjunction);
    }
    Ok(Spec {
        num_inputs: parsed.num_inputs,
        num_outputs: parsed.num_outputs,
        regions,
    })
}

type BoundSlot<'a> = Option<(&'a BigRational, Span)>;

fn make_box(
    text: &str,
    parsed: &Parsed,
    lower: &[BoundSlot<'_>],
    upper: &[BoundSlot<'_>],
    disjuncts: usize,
) -> Result<InputBox, LocatedError> {
    let n = parsed.num_inputs;
    let mut b = InputBox {
        lower: Vec::with_capacity(n),
        upper: Vec::with_capacity(n),
        lower_exact: Vec::with_capacity(n),
        upper_exact: Vec::with_capacity(n),
    };
    let scope = if disjuncts > 1 {
        format!(" in one of the {disjuncts} disjuncts of the property")
    } else {
        String::new()
    };
    for i in 0..n {
        let decl = parsed.input_decls[i];
        let missing = |side: &str, example: &str| LocatedError {
            offset: decl.start,
            message: format!(
                "X_{i} has no {side} bound{scope}; add e.g. `(assert ({example} X_{i} 0))`"
            ),
        };
        let (lo, lo_span) = lower[i].ok_or_else(|| missing("lower", ">="))?;
        let (hi, hi_span) = upper[i].ok_or_else(|| missing("upper", "<="))?;
        if lo > hi {
            let at = super::location(text, hi_span.start);
            return Err(LocatedError {
                offset: lo_span.start,
                message: format!(
                    "X_{i} has lower bound {} above its upper bound {} (set at {at}){scope}; \
                     the input region is empty",
                    rational::to_decimal(lo),
                    rational::to_decimal(hi)
                ),
            });
        }
        b.lower.push(rational::round_down(lo));
        b.upper.push(rational::round_up(hi));
        b.lower_exact.push(lo.clone());
        b.upper_exact.push(hi.clone());
    }
    Ok(b)
}

fn make_atom(leaf: &Leaf, parsed: &Parsed) -> Atom {
    let mut coeffs_exact = vec![BigRational::zero(); parsed.num_outputs];
    let rhs_exact = match leaf {
        Leaf::Output { coeffs, rhs } => {
            for (j, c) in coeffs {
                coeffs_exact[*j] = c.clone();
            }
            rhs.clone()
        }
        // Only output leaves are turned into atoms.
        Leaf::Bound { .. } => BigRational::zero(),
    };
    Atom::new(coeffs_exact, rhs_exact)
}
