//! Shape operators and the static shapes PyTorch's shape plumbing reads.
//!
//! Reshape, Flatten, Squeeze, Unsqueeze and Transpose of a computed tensor become
//! `Op::Reshape` / `Op::Transpose` with static shapes (an identity reshape emits nothing); of a
//! constant they are folded. Shape of a computed value is a constant because per-sample shapes
//! are static (symbolic dimensions are pinned to 1), so `Shape → Gather → Unsqueeze → Concat →
//! Reshape` chains fold into a constant target shape (the folding ops live in `fold`).
//! Opset differences handled here: Reshape `allowzero` (14), Squeeze/Unsqueeze `axes` as an
//! attribute before 13 and an input from 13, Shape `start`/`end` (15).

use ndarray::{ArrayD, IxDyn};

use super::context::{bounded, Ctx, NodeRef, Val};
use super::tensor::{checked_product, map_const, Const};
use crate::error::Result;
use crate::ir::{Op, ValueId};

/// Largest dimension a shape computed at import may have.
const MAX_DIM: usize = 1 << 40;

/// Binds the node's output to `x` reshaped to `shape` (no node when the shape is unchanged).
fn emit_reshape(ctx: &mut Ctx, node: &NodeRef, x: ValueId, shape: Vec<usize>) -> Result<()> {
    let xs = &ctx.graph.value(x).shape;
    if *xs == shape {
        ctx.set(node, 0, Val::Dyn(x));
        return Ok(());
    }
    let n = checked_product(&shape).map_err(|e| ctx.err(node, e))?;
    if n != ctx.graph.value(x).size() {
        return Err(ctx.err(
            node,
            format!("cannot reshape {xs:?} to {shape:?}: the element counts differ"),
        ));
    }
    let y = ctx.push(node, Op::Reshape { shape }, vec![x], node.output(0))?;
    ctx.set(node, 0, Val::Dyn(y));
    Ok(())
}

/// Reshapes input 0 (computed or constant) to `shape`.
fn reshape_input(ctx: &mut Ctx, node: &NodeRef, data: Val, shape: Vec<usize>) -> Result<()> {
    match data {
        Val::Dyn(x) => emit_reshape(ctx, node, x, shape),
        Val::Const(c) => {
            let r = c.reshaped(&shape).map_err(|e| ctx.err(node, e))?;
            ctx.set_const(node, r);
            Ok(())
        }
    }
}

/// An integer list from a constant input (opset ≥ `since`) or an attribute (before).
pub fn ints_param(
    ctx: &Ctx,
    node: &NodeRef,
    input: usize,
    attr: &str,
    since: i64,
) -> Result<Option<Vec<i64>>> {
    if ctx.opset >= since || node.node.input.len() > input {
        if let Some(c) = ctx.constant(node, input)? {
            return c.to_i64_vec().map(Some).map_err(|e| ctx.err(node, e));
        }
    }
    ctx.ints_attr(node, attr)
}

/// ONNX Reshape target resolution: `0` copies the input dimension (unless `allowzero`), one
/// `-1` is inferred.
fn resolve_reshape(input: &[usize], spec: &[i64], allowzero: bool) -> Result<Vec<usize>, String> {
    let total = checked_product(input)?;
    let mut out = Vec::with_capacity(spec.len());
    let mut infer = None;
    for (i, &d) in spec.iter().enumerate() {
        out.push(match d {
            -1 if infer.is_none() => {
                infer = Some(i);
                1
            }
            -1 => return Err(format!("shape {spec:?} has more than one -1")),
            0 if !allowzero => *input
                .get(i)
                .ok_or_else(|| format!("shape {spec:?} copies axis {i}, which {input:?} lacks"))?,
            d => bounded(d, MAX_DIM, "dimension")?,
        });
    }
    let known = checked_product(&out)?;
    if let Some(i) = infer {
        if known == 0 || total % known != 0 {
            return Err(format!(
                "cannot infer the -1 in {spec:?} for input shape {input:?}"
            ));
        }
        out[i] = total / known;
    }
    Ok(out)
}

pub fn reshape(ctx: &mut Ctx, node: &NodeRef) -> Result<()> {
    ctx.single_output(node)?;
    let data = ctx.required(node, 0)?;
    let spec = ints_param(ctx, node, 1, "shape", 5)?
        .ok_or_else(|| ctx.err(node, "Reshape needs a constant shape input"))?;
    let allowzero = ctx.int_or(node, "allowzero", 0)? != 0;
    let shape =
        resolve_reshape(&ctx.shape_of(&data), &spec, allowzero).map_err(|e| ctx.err(node, e))?;
    reshape_input(ctx, node, data, shape)
}

pub fn flatten(ctx: &mut Ctx, node: &NodeRef) -> Result<()> {
    ctx.single_output(node)?;
    let data = ctx.required(node, 0)?;
    let s = ctx.shape_of(&data);
    let axis = ctx.int_or(node, "axis", 1)?;
    let axis = if axis == s.len() as i64 {
        s.len()
    } else {
        ctx.axis(node, axis, s.len())?
    };
    let outer = checked_product(&s[..axis]).map_err(|e| ctx.err(node, e))?;
    let inner = checked_product(&s[axis..]).map_err(|e| ctx.err(node, e))?;
    reshape_input(ctx, node, data, vec![outer, inner])
}

pub fn squeeze(ctx: &mut Ctx, node: &NodeRef) -> Result<()> {
    ctx.single_output(node)?;
    let data = ctx.required(node, 0)?;
    let s = ctx.shape_of(&data);
    let axes = ints_param(ctx, node, 1, "axes", 13)?;
    let shape = if node.node.op_type == "Unsqueeze" {
        let axes = axes.ok_or_else(|| ctx.err(node, "Unsqueeze needs axes"))?;
        let rank = s.len() + axes.len();
        let mut marked = vec![false; rank];
        for &a in &axes {
            let a = ctx.axis(node, a, rank)?;
            if std::mem::replace(&mut marked[a], true) {
                return Err(ctx.err(node, format!("axis {a} is listed twice")));
            }
        }
        let mut dims = s.iter();
        marked
            .iter()
            .map(|&m| {
                if m {
                    1
                } else {
                    dims.next().copied().unwrap_or(1)
                }
            })
            .collect()
    } else {
        let drop: Vec<usize> = match axes {
            None => (0..s.len()).filter(|&i| s[i] == 1).collect(),
            Some(axes) => {
                let mut d = Vec::new();
                for a in axes {
                    let a = ctx.axis(node, a, s.len())?;
                    if s[a] != 1 {
                        return Err(ctx.err(node, format!("cannot squeeze axis {a} of {s:?}")));
                    }
                    d.push(a);
                }
                d
            }
        };
        (0..s.len())
            .filter(|i| !drop.contains(i))
            .map(|i| s[i])
            .collect()
    };
    reshape_input(ctx, node, data, shape)
}

pub fn transpose(ctx: &mut Ctx, node: &NodeRef) -> Result<()> {
    ctx.single_output(node)?;
    let data = ctx.required(node, 0)?;
    let rank = ctx.shape_of(&data).len();
    let perm: Vec<usize> = match ctx.ints_attr(node, "perm")? {
        None => (0..rank).rev().collect(),
        Some(p) => p
            .iter()
            .map(|&v| bounded(v, rank.saturating_sub(1), "perm entry"))
            .collect::<Result<_, _>>()
            .map_err(|e| ctx.err(node, e))?,
    };
    let mut seen = vec![false; rank];
    if perm.len() != rank || perm.iter().any(|&p| std::mem::replace(&mut seen[p], true)) {
        return Err(ctx.err(
            node,
            format!("perm {perm:?} is not a permutation of {rank} axes"),
        ));
    }
    match data {
        Val::Dyn(x) if perm.iter().enumerate().all(|(i, &p)| i == p) => {
            ctx.set(node, 0, Val::Dyn(x))
        }
        Val::Dyn(x) => {
            let y = ctx.push(node, Op::Transpose { perm }, vec![x], node.output(0))?;
            ctx.set(node, 0, Val::Dyn(y));
        }
        Val::Const(c) => {
            let t = map_const!(c.as_ref(), a => a.clone().permuted_axes(IxDyn(&perm)).as_standard_layout().to_owned());
            ctx.set_const(node, t);
        }
    }
    Ok(())
}

pub fn int_vector(v: Vec<i64>) -> Const {
    let n = v.len();
    Const::Int(
        ArrayD::from_shape_vec(IxDyn(&[n]), v).unwrap_or_else(|_| ArrayD::zeros(IxDyn(&[0]))),
    )
}

pub fn shape(ctx: &mut Ctx, node: &NodeRef) -> Result<()> {
    ctx.single_output(node)?;
    let data = ctx.required(node, 0)?;
    let s = ctx.shape_of(&data);
    let r = s.len() as i64;
    let clamp = |v: i64| (if v < 0 { v.saturating_add(r) } else { v }).clamp(0, r) as usize;
    let start = clamp(ctx.int_or(node, "start", 0)?);
    let end = clamp(ctx.int_or(node, "end", r)?);
    let dims = s[start..end.max(start)].iter().map(|&d| d as i64).collect();
    ctx.set_const(node, int_vector(dims));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reshape_targets_follow_onnx() {
        assert_eq!(
            resolve_reshape(&[1, 2, 3], &[0, -1], false).unwrap(),
            vec![1, 6]
        );
        assert_eq!(resolve_reshape(&[1, 6], &[3, 0], true).unwrap(), vec![3, 0]);
        assert!(resolve_reshape(&[1, 6], &[0, -1], true).is_err());
        assert!(resolve_reshape(&[1, 6], &[-1, -1], false).is_err());
        assert!(resolve_reshape(&[1, 6], &[4, -1], false).is_err());
        assert!(resolve_reshape(&[1, 6], &[-2], false).is_err());
    }
}
