//! Canonicalisation passes: rewrites of a [`Graph`] that preserve the function it computes.
//!
//! Each pass lives in its own file and exposes `pub fn run(&mut Graph, &mut Ctx) -> Changed`;
//! [`PASSES`] lists them in the order [`canonicalize`] applies them, repeatedly, until none
//! changes the graph. Every pass keeps nodes in topological order, keeps the graph inputs and
//! outputs (and their value names), never merges through a value that has another reader
//! (another node or a graph output), and prunes the nodes it leaves dead.
//!
//! Two levels:
//!
//! - [`Level::Exact`]: only rewrites after which every stored number is exactly what real
//!   arithmetic on the file's numbers gives: identity ops removed, reshape and transpose
//!   chains composed, constants merged when the merged constant is exactly an `f64`, and
//!   constants or layers folded into a neighbouring Linear/Conv when every new weight and
//!   bias is exactly an `f64` (checked in rationals, see `arith.rs`) — e.g. scaling by a
//!   power of two or by −1. **The verifier runs on `Exact` graphs: they compute the same
//!   real function as the file, so bounds on them are sound by construction.**
//! - [`Level::Full`]: additionally rewrites that are exact in real arithmetic but round the
//!   new weights to `f64`: batch norm folded into a neighbouring Conv/Linear, Linear∘Linear
//!   merged, constants (including input normalisation) folded into the first affine layer.
//!   The [`Report`] records, for every layer holding rounded numbers, a rigorous bound on the
//!   distance of each stored weight and bias from the exact real value it stands for (ball
//!   arithmetic, see `arith.rs`). `Full` graphs are for fast evaluation (stress testing) and
//!   display; an engine using one for a proof must account for these perturbations.
//!
//! Why a constant *shift* cannot move into a Conv with padding: the convolution pads its
//! input with zeros. `conv(pad(x + t))` sees `t` at real cells but `0` at padded cells, while
//! folding would compute `conv(pad(x)) + conv_of(t)`, which adds `t`'s contribution at padded
//! cells too. The border outputs would differ, so shifts (AddConst, the shift part of a batch
//! norm) fold into a *following* Conv only when its pads are zero. Per-channel *scales*
//! commute with zero padding (`pad(s·x) = s·pad(x)`) and always fold.
//!
//! Rounding bounds are keyed by node name, so [`canonicalize`] first makes node names unique.

mod affine;
pub(crate) mod arith;
pub mod const_merge;
pub mod fold_batchnorm;
pub mod fold_const;
pub mod identity;
pub mod merge_linear;
mod rewrite;
pub mod shape_chain;

use std::collections::{BTreeMap, BTreeSet};

use super::graph::Graph;

/// Whether a pass changed the graph.
pub type Changed = bool;

/// How far canonicalisation may go. See the module docs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub enum Level {
    Exact,
    Full,
}

/// Distance bounds of a layer's stored parameters from the exact real values they stand for.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct ParamError {
    /// Max over the weights of |stored − exact|.
    pub weight: f64,
    /// Max over the biases of |stored − exact|.
    pub bias: f64,
}

impl ParamError {
    pub fn is_zero(&self) -> bool {
        self.weight == 0.0 && self.bias == 0.0
    }
}

/// One applied rewrite.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Rewrite {
    pub pass: &'static str,
    /// What was rewritten, naming the nodes.
    pub what: String,
    /// The rounding this rewrite left in the surviving layer (cumulative), if any.
    pub rounding: Option<ParamError>,
}

/// State shared by the passes of one canonicalisation.
#[derive(Clone, Debug)]
pub struct Ctx {
    pub level: Level,
    /// Per node name: how far its stored parameters are from the exact ones (absent = exact).
    pub errors: BTreeMap<String, ParamError>,
    pub rewrites: Vec<Rewrite>,
}

impl Ctx {
    pub fn new(level: Level) -> Ctx {
        Ctx {
            level,
            errors: BTreeMap::new(),
            rewrites: Vec::new(),
        }
    }

    /// The parameter error of node `name` (zero unless a rewrite rounded it).
    pub fn error_of(&self, name: &str) -> ParamError {
        self.errors.get(name).copied().unwrap_or_default()
    }

    /// Records a rewrite and the cumulative parameter error of the surviving node `survivor`.
    pub(crate) fn record(
        &mut self,
        pass: &'static str,
        what: String,
        survivor: Option<(&str, ParamError)>,
    ) {
        let mut rounding = None;
        if let Some((name, err)) = survivor {
            if err.is_zero() {
                self.errors.remove(name);
            } else {
                self.errors.insert(name.to_string(), err);
                rounding = Some(err);
            }
        }
        self.rewrites.push(Rewrite {
            pass,
            what,
            rounding,
        });
    }
}

/// A canonicalisation pass.
pub trait Pass {
    fn name(&self) -> &'static str;
    /// Applies the pass until it no longer fires; whether anything changed.
    fn run(&self, g: &mut Graph, ctx: &mut Ctx) -> Changed;
}

/// A pass given by its `run` function.
pub struct FnPass {
    pub name: &'static str,
    pub run: fn(&mut Graph, &mut Ctx) -> Changed,
}

impl Pass for FnPass {
    fn name(&self) -> &'static str {
        self.name
    }
    fn run(&self, g: &mut Graph, ctx: &mut Ctx) -> Changed {
        (self.run)(g, ctx)
    }
}

/// All passes, in the order `canonicalize` applies them. Each decides from `ctx.level`
/// which of its rewrites are allowed.
pub const PASSES: &[FnPass] = &[
    FnPass {
        name: identity::NAME,
        run: identity::run,
    },
    FnPass {
        name: shape_chain::NAME,
        run: shape_chain::run,
    },
    FnPass {
        name: const_merge::NAME,
        run: const_merge::run,
    },
    FnPass {
        name: fold_const::NAME,
        run: fold_const::run,
    },
    FnPass {
        name: fold_batchnorm::NAME,
        run: fold_batchnorm::run,
    },
    FnPass {
        name: merge_linear::NAME,
        run: merge_linear::run,
    },
];

/// What canonicalisation did.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Report {
    pub level: Level,
    pub nodes_before: usize,
    pub nodes_after: usize,
    pub rewrites: Vec<Rewrite>,
    /// Per node name of the result: bounds on |stored − exact| of its weights and biases.
    /// Empty at `Level::Exact`.
    pub rounding: BTreeMap<String, ParamError>,
    /// The largest weight error over all nodes (0 when nothing was rounded).
    pub max_weight_error: f64,
    /// The largest bias error over all nodes.
    pub max_bias_error: f64,
}

impl Report {
    /// How many rewrites each pass made.
    pub fn counts(&self) -> BTreeMap<&'static str, usize> {
        let mut c = BTreeMap::new();
        for r in &self.rewrites {
            *c.entry(r.pass).or_insert(0) += 1;
        }
        c
    }
}

/// Renames nodes so that names are unique (rounding bounds are keyed by node name).
pub fn uniquify_node_names(g: &mut Graph) {
    let mut seen = BTreeSet::new();
    for i in 0..g.nodes.len() {
        let base = g.nodes[i].name.clone();
        let mut name = base.clone();
        let mut k = 1;
        while !seen.insert(name.clone()) {
            name = format!("{base}#{k}");
            k += 1;
        }
        g.nodes[i].name = name;
    }
}

/// Applies every pass allowed at `level` until none fires (at most 64 rounds).
pub fn canonicalize(g: &mut Graph, level: Level) -> Report {
    uniquify_node_names(g);
    let nodes_before = g.nodes.len();
    let mut ctx = Ctx::new(level);
    for _ in 0..64 {
        let mut changed = false;
        for p in PASSES {
            changed |= p.run(g, &mut ctx);
            debug_assert_valid(g, p.name);
        }
        if !changed {
            break;
        }
    }
    // Errors of nodes that no longer exist (merged away) are not part of the result.
    let live: BTreeSet<&str> = g.nodes.iter().map(|n| n.name.as_str()).collect();
    ctx.errors.retain(|k, _| live.contains(k.as_str()));
    let max_weight_error = ctx.errors.values().map(|e| e.weight).fold(0.0, f64::max);
    let max_bias_error = ctx.errors.values().map(|e| e.bias).fold(0.0, f64::max);
    Report {
        level,
        nodes_before,
        nodes_after: g.nodes.len(),
        rewrites: ctx.rewrites,
        rounding: ctx.errors,
        max_weight_error,
        max_bias_error,
    }
}

/// Largest number of multiply-adds a rewrite may spend in exact rational arithmetic.
pub(crate) const EXACT_BUDGET: usize = 250_000;

/// Computes a rewrite's new parameters: exactly (rationals) when the inputs are exact and the
/// work fits [`EXACT_BUDGET`]; otherwise, at `Level::Full` only, in ball arithmetic.
pub(crate) fn compute<T>(
    ctx: &Ctx,
    inputs_exact: bool,
    cost: usize,
    exact: impl FnOnce() -> Option<T>,
    ball: impl FnOnce() -> Option<T>,
) -> Option<T> {
    if inputs_exact && cost <= EXACT_BUDGET {
        if let Some(r) = exact() {
            return Some(r);
        }
    }
    match ctx.level {
        Level::Full => ball(),
        Level::Exact => None,
    }
}

/// In debug builds, panics (a pass bug) if `g` breaks a graph invariant.
pub(crate) fn debug_assert_valid(g: &Graph, pass: &str) {
    if cfg!(debug_assertions) {
        if let Err(e) = g.validate() {
            panic!("pass `{pass}` produced an invalid graph: {e}\n{g}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::op::Op;
    use ndarray::arr1;

    #[test]
    fn canonicalize_dedupes_names_and_reports() {
        let mut g = Graph::new();
        let x = g.add_input("x", vec![1, 2]);
        let lin = |w: &[f64]| Op::Linear {
            weight: ndarray::Array2::from_shape_vec((1, w.len()), w.to_vec()).unwrap(),
            bias: Some(arr1(&[0.1])),
        };
        let a = g.add_node("fc", lin(&[0.5, 0.25]), vec![x], "a").unwrap();
        let b = g
            .add_node("fc", Op::Reshape { shape: vec![1, 1] }, vec![a], "b")
            .unwrap();
        let y = g.add_node("fc", lin(&[2.0]), vec![b], "y").unwrap();
        g.add_output(y);

        let mut e = g.clone();
        let re = canonicalize(&mut e, Level::Exact);
        assert_eq!(re.counts().get("identity"), Some(&1));
        assert_eq!((re.nodes_before, re.nodes_after), (3, 2));
        assert!(re.rounding.is_empty());
        let names: BTreeSet<_> = e.nodes.iter().map(|n| n.name.clone()).collect();
        assert_eq!(names.len(), 2, "{e}");

        let rf = canonicalize(&mut g, Level::Full);
        assert_eq!(rf.nodes_after, 1);
        assert_eq!(rf.counts().get("merge_linear"), Some(&1));
        // 2·0.1 + 0.1 = 3·0.1 is not a double: the bias is rounded and the bound says so.
        assert!(
            rf.max_bias_error > 0.0 && rf.max_bias_error < 1e-15,
            "{rf:?}"
        );
        // The weights 2·[0.5, 0.25] are exact, but the whole merge was computed in ball
        // arithmetic, whose bound is conservative.
        assert!(rf.max_weight_error < 1e-15);
        assert_eq!(rf.rounding.len(), 1);
        assert_eq!(g.value(g.outputs[0]).name, "y");
    }
}
