//! The certificate checker's own enclosure of a network over a box: forward interval
//! arithmetic carrying the interval Jacobian, in `Iv` (outward-rounded `f64`). It shares no
//! code with the bound engines (`engine`, `bounds::ops`, `bounds::relax`).
//!
//! For a box `B` with centre `c`, [`error_bound`] encloses `N(x) − f(x)` by the mean-value form
//! `(N(c) − f(c)) + Σ_i (J_i(B) − G_i(B)) · (x_i − c_i)`, where `J(B)` encloses the network's
//! (Clarke) gradient and `G(B)` the reference expression's, intersected with the natural
//! enclosure `N(B) − f(B)`. The mean-value theorem for Lipschitz functions (Clarke) makes this
//! sound for ReLU networks too: at a neuron whose pre-activation interval holds 0, the
//! derivative enclosure is `[0, 1]` (`[min(α,1), max(α,1)]` for LeakyReLU).
//!
//! Supported operators (a feed-forward MLP): Linear (one sample row), AddConst, MulConst,
//! DivConst, Add, Sub, Relu, LeakyRelu, Tanh, Sigmoid, Reshape. Anything else is an error.

use ndarray::ArrayD;

use crate::errbound::enclose::{self, Undefined};
use crate::errbound::expr::Expr;
use crate::errbound::interval::{Iv, ENTIRE};
use crate::error::{Error, Result};
use crate::ir::{Graph, Op};

/// Values and (optionally) Jacobian rows of every scalar of a value.
#[derive(Clone)]
struct Val {
    v: Vec<Iv>,
    /// `j[k][i]` encloses `∂ v_k / ∂ x_i`; empty without Jacobian.
    j: Vec<Vec<Iv>>,
}

/// Checks that the checker can evaluate `graph` (one input, every op supported).
pub fn supported(graph: &Graph) -> Result<()> {
    if graph.inputs.len() != 1 {
        return Err(Error::Invalid(
            "error bounds need a model with exactly one input".into(),
        ));
    }
    for node in &graph.nodes {
        let ok = match &node.op {
            Op::Linear { weight, .. } => graph.value(node.inputs[0]).size() == weight.ncols(),
            Op::AddConst(_)
            | Op::MulConst(_)
            | Op::DivConst(_)
            | Op::Add
            | Op::Sub
            | Op::Relu
            | Op::LeakyRelu { .. }
            | Op::Tanh
            | Op::Sigmoid
            | Op::Reshape { .. } => true,
            _ => false,
        };
        if !ok {
            return Err(Error::Invalid(format!(
                "error bounds support feed-forward networks (Linear, Relu, LeakyRelu, Tanh, \
                 Sigmoid, elementwise constants); node `{}` is {}",
                node.name,
                node.op.kind()
            )));
        }
    }
    Ok(())
}

fn konst(c: &ArrayD<f64>, shape: &[usize]) -> Result<Vec<f64>> {
    let b = c
        .broadcast(ndarray::IxDyn(shape))
        .ok_or_else(|| Error::Invalid("a constant does not broadcast to its value".into()))?;
    Ok(b.iter().copied().collect())
}

/// Encloses output `out` of the network over the box `x` (and its gradient with `jac`).
fn forward(graph: &Graph, x: &[Iv], out: usize, jac: bool) -> Result<(Iv, Vec<Iv>)> {
    let d = x.len();
    let mut vals: Vec<Option<Val>> = vec![None; graph.values.len()];
    let input = graph.inputs[0];
    vals[input.0] = Some(Val {
        v: x.to_vec(),
        j: if jac {
            (0..d)
                .map(|k| {
                    (0..d)
                        .map(|i| Iv::point(if i == k { 1.0 } else { 0.0 }))
                        .collect()
                })
                .collect()
        } else {
            Vec::new()
        },
    });
    let scale_rows = |a: &Val, f: &dyn Fn(usize, Iv) -> (Iv, Iv)| -> Val {
        let mut v = Vec::with_capacity(a.v.len());
        let mut j = Vec::new();
        for (k, &z) in a.v.iter().enumerate() {
            let (val, der) = f(k, z);
            v.push(val);
            if jac {
                j.push(a.j[k].iter().map(|g| der.mul(*g)).collect());
            }
        }
        Val { v, j }
    };
    for node in &graph.nodes {
        let get = |i: usize| {
            vals[node.inputs[i].0].as_ref().ok_or_else(|| {
                Error::Invalid(format!("node `{}` reads an unknown value", node.name))
            })
        };
        let a = get(0)?;
        let shape = &graph.value(node.output).shape;
        let out_val = match &node.op {
            Op::Linear { weight, bias } => {
                let mut v = Vec::with_capacity(weight.nrows());
                let mut j = Vec::new();
                for (o, row) in weight.rows().into_iter().enumerate() {
                    let mut s = Iv::point(bias.as_ref().map_or(0.0, |b| b[o]));
                    let mut g = vec![Iv::zero(); if jac { d } else { 0 }];
                    for (k, &w) in row.iter().enumerate() {
                        if w == 0.0 {
                            continue;
                        }
                        let w = Iv::point(w);
                        s = s.add(w.mul(a.v[k]));
                        for (gi, aj) in g.iter_mut().zip(a.j.get(k).into_iter().flatten()) {
                            *gi = gi.add(w.mul(*aj));
                        }
                    }
                    v.push(s);
                    if jac {
                        j.push(g);
                    }
                }
                Val { v, j }
            }
            Op::AddConst(c) => {
                let c = konst(c, shape)?;
                scale_rows(a, &|k, z| (z.add(Iv::point(c[k])), Iv::point(1.0)))
            }
            Op::MulConst(c) => {
                let c = konst(c, shape)?;
                scale_rows(a, &|k, z| (z.mul(Iv::point(c[k])), Iv::point(c[k])))
            }
            Op::DivConst(c) => {
                let c = konst(c, shape)?;
                scale_rows(a, &|k, z| {
                    let ck = Iv::point(c[k]);
                    (z.div(ck), Iv::point(1.0).div(ck))
                })
            }
            Op::Add | Op::Sub => {
                let b = get(1)?;
                if b.v.len() != a.v.len() {
                    return Err(Error::Invalid(format!(
                        "node `{}`: broadcasting Add/Sub is not supported by error bounds",
                        node.name
                    )));
                }
                let sub = matches!(node.op, Op::Sub);
                let comb = |p: Iv, q: Iv| if sub { p.sub(q) } else { p.add(q) };
                Val {
                    v: a.v.iter().zip(&b.v).map(|(p, q)| comb(*p, *q)).collect(),
                    j: a.j
                        .iter()
                        .zip(&b.j)
                        .map(|(p, q)| p.iter().zip(q).map(|(s, t)| comb(*s, *t)).collect())
                        .collect(),
                }
            }
            Op::Relu => scale_rows(a, &|_, z| leaky(z, 0.0)),
            Op::LeakyRelu { alpha } => scale_rows(a, &|_, z| leaky(z, *alpha)),
            Op::Tanh => scale_rows(a, &|_, z| {
                let t = z.tanh();
                (t, Iv::point(1.0).sub(t.sqr()).max(Iv::zero()))
            }),
            Op::Sigmoid => scale_rows(a, &|_, z| {
                let s = z.sigmoid();
                (s, s.mul(Iv::point(1.0).sub(s)).max(Iv::zero()))
            }),
            Op::Reshape { .. } => a.clone(),
            other => {
                return Err(Error::Invalid(format!(
                    "error bounds cannot evaluate node `{}` ({})",
                    node.name,
                    other.kind()
                )))
            }
        };
        vals[node.output.0] = Some(out_val);
    }
    let o = graph
        .outputs
        .first()
        .and_then(|o| vals[o.0].as_ref())
        .ok_or_else(|| Error::Invalid("the network output is never computed".into()))?;
    let v =
        *o.v.get(out)
            .ok_or_else(|| Error::Invalid(format!("the network has no output {out}")))?;
    let g = if jac { o.j[out].clone() } else { Vec::new() };
    Ok((v, g))
}

/// `max(α z, z)` (α ≤ 1) or `min` for α > 1, as LeakyReLU's two pieces, and its derivative.
fn leaky(z: Iv, alpha: f64) -> (Iv, Iv) {
    let a = Iv::point(alpha);
    let f = |t: f64| if t >= 0.0 { t } else { a.mul(Iv::point(t)).lo };
    let f_up = |t: f64| if t >= 0.0 { t } else { a.mul(Iv::point(t)).hi };
    let v = Iv::new(f(z.lo), f_up(z.hi));
    let der = if z.lo >= 0.0 {
        Iv::point(1.0)
    } else if z.hi <= 0.0 {
        a
    } else {
        Iv::new(alpha.min(1.0), alpha.max(1.0))
    };
    // For α > 1 the map is still increasing, so the end values enclose it.
    (v, der)
}

/// A sound upper bound on `sup_{x ∈ B} |N_out(x) − f(x)|` by the checker's own mean-value form
/// (see the module docs); +∞ where `f` may be undefined on the box.
pub fn error_bound(graph: &Graph, out: usize, expr: &Expr, b: &[Iv]) -> Result<f64> {
    let (nb, jn) = forward(graph, b, out, true)?;
    let c: Vec<Iv> = b.iter().map(|i| Iv::point(enclose::mid(*i))).collect();
    let (nc, _) = forward(graph, &c, out, false)?;
    let f = match (enclose::eval(expr, b, true), enclose::eval(expr, &c, false)) {
        (Ok(f), Ok(fc)) => (f, fc),
        (Err(Undefined(_)), _) | (_, Err(Undefined(_))) => return Ok(f64::INFINITY),
    };
    let (fb, fc) = f;
    let mut mv = nc.sub(fc.v);
    for i in 0..b.len() {
        let slope = jn[i].sub(fb.g[i]);
        mv = mv.add(slope.mul(b[i].sub(c[i])));
    }
    let natural = nb.sub(fb.v);
    let e = mv.meet(natural).unwrap_or(natural);
    let e = if e.lo.is_nan() || e.hi.is_nan() {
        ENTIRE
    } else {
        e
    };
    Ok(e.hi.max(-e.lo))
}

/// Encloses the network output `out` at one point (used to report and check witnesses).
pub fn at_point(graph: &Graph, out: usize, x: &[f64]) -> Result<Iv> {
    let p: Vec<Iv> = x.iter().map(|&v| Iv::point(v)).collect();
    Ok(forward(graph, &p, out, false)?.0)
}
