//! Constant folding at import: Constant, ConstantOfShape, Gather, Concat, Slice and Cast.
//!
//! In: constant inputs (initializers, `Constant` nodes, the results of `Shape` of static
//! shapes). Out: new constants bound to the node's output; nothing enters the graph. These ops
//! on computed tensors are refused, except Cast to FLOAT or DOUBLE, which is the identity on
//! the real numbers beacons works with. Slice reads attributes before opset 10 and inputs
//! from 10; `Constant` accepts `value`, `value_float(s)` and `value_int(s)`. Folded results
//! are size-limited so a small file cannot demand a huge allocation.

use std::rc::Rc;

use ndarray::{ArrayD, Axis, IxDyn};

use super::context::{bounded, Ctx, NodeRef, Val};
use super::shape::ints_param;
use super::tensor::{checked_product, dtype, dtype_name, map_const, Const, MAX_COMPUTED_ELEMENTS};
use crate::error::Result;
pub fn constant(ctx: &mut Ctx, node: &NodeRef) -> Result<()> {
    ctx.single_output(node)?;
    let scalar_f = |v: f64| Const::Float(ArrayD::from_elem(IxDyn(&[]), v));
    let c = if let Some(t) = ctx.tensor_attr(node, "value")? {
        t
    } else if node.has_attr("value_float") {
        scalar_f(ctx.float_or(node, "value_float", 0.0)?)
    } else if let Some(v) = ctx.floats_attr(node, "value_floats")? {
        Const::Float(
            ArrayD::from_shape_vec(IxDyn(&[v.len()]), v)
                .map_err(|e| ctx.err(node, e.to_string()))?,
        )
    } else if let Some(v) = ctx.int_attr(node, "value_int")? {
        Const::Int(ArrayD::from_elem(IxDyn(&[]), v))
    } else if let Some(v) = ctx.ints_attr(node, "value_ints")? {
        Const::Int(
            ArrayD::from_shape_vec(IxDyn(&[v.len()]), v)
                .map_err(|e| ctx.err(node, e.to_string()))?,
        )
    } else {
        return Err(ctx.err(
            node,
            "Constant needs one of value, value_float, value_floats, value_int, value_ints",
        ));
    };
    ctx.set_const(node, c);
    Ok(())
}

fn constant_data(ctx: &Ctx, node: &NodeRef) -> Result<Rc<Const>> {
    match ctx.required(node, 0)? {
        Val::Const(c) => Ok(c),
        Val::Dyn(_) => Err(ctx.err(
            node,
            format!(
                "{} of a computed tensor is not supported (only of constants)",
                node.node.op_type
            ),
        )),
    }
}

fn gather_array<T: Clone>(
    a: &ArrayD<T>,
    axis: usize,
    idx: &[usize],
    idx_shape: &[usize],
) -> Result<ArrayD<T>, String> {
    let s = a.shape();
    let outer: usize = s[..axis].iter().product();
    let inner: usize = s[axis + 1..].iter().product();
    let n = s[axis];
    let flat: Vec<T> = a.iter().cloned().collect();
    let mut out = Vec::with_capacity(outer * idx.len() * inner);
    for o in 0..outer {
        for &j in idx {
            let base = (o * n + j) * inner;
            out.extend_from_slice(&flat[base..base + inner]);
        }
    }
    let shape: Vec<usize> = s[..axis]
        .iter()
        .chain(idx_shape)
        .chain(&s[axis + 1..])
        .copied()
        .collect();
    ArrayD::from_shape_vec(IxDyn(&shape), out).map_err(|e| e.to_string())
}

pub fn gather(ctx: &mut Ctx, node: &NodeRef) -> Result<()> {
    ctx.single_output(node)?;
    let data = constant_data(ctx, node)?;
    let indices = ctx.required_constant(node, 1)?;
    let s = data.shape().to_vec();
    let axis = ctx.int_or(node, "axis", 0)?;
    let axis = ctx.axis(node, axis, s.len())?;
    let n = s[axis] as i64;
    let idx = indices
        .to_i64_vec()
        .map_err(|e| ctx.err(node, e))?
        .into_iter()
        .map(|i| {
            let j = if i < 0 { i + n } else { i };
            if (0..n).contains(&j) {
                Ok(j as usize)
            } else {
                Err(ctx.err(
                    node,
                    format!("index {i} is out of range for axis {axis} of {s:?}"),
                ))
            }
        })
        .collect::<Result<Vec<_>>>()?;
    let total = checked_product(&s)
        .ok()
        .and_then(|t| (t / n.max(1) as usize).checked_mul(idx.len()));
    if total.is_none_or(|t| t > MAX_COMPUTED_ELEMENTS) {
        return Err(ctx.err(node, "gathered constant is too large"));
    }
    let r = map_const!(data.as_ref(), a => gather_array(a, axis, &idx, indices.shape()).map_err(|e| ctx.err(node, e))?);
    ctx.set_const(node, r);
    Ok(())
}

pub fn concat(ctx: &mut Ctx, node: &NodeRef) -> Result<()> {
    ctx.single_output(node)?;
    let mut parts = Vec::new();
    for i in 0..node.node.input.len() {
        match ctx.input(node, i)? {
            Some(Val::Const(c)) => parts.push(c),
            Some(Val::Dyn(_)) => {
                return Err(ctx.err(
                    node,
                    "Concat of computed tensors is not supported (only of constants)",
                ))
            }
            None => {}
        }
    }
    let first = parts
        .first()
        .ok_or_else(|| ctx.err(node, "Concat without inputs"))?;
    let rank = first.shape().len();
    if parts.iter().any(|p| p.shape().len() != rank) {
        return Err(ctx.err(node, "Concat inputs differ in rank"));
    }
    let axis = ctx
        .int_attr(node, "axis")?
        .ok_or_else(|| ctx.err(node, "Concat needs an axis"))?;
    let axis = Axis(ctx.axis(node, axis, rank)?);
    let bad = |e: ndarray::ShapeError| ctx.err(node, format!("inputs do not concatenate: {e}"));
    let r = if parts.iter().all(|p| matches!(p.as_ref(), Const::Int(_))) {
        let v: Vec<ArrayD<i64>> = parts
            .iter()
            .filter_map(|p| match p.as_ref() {
                Const::Int(a) => Some(a.clone()),
                Const::Float(_) => None,
            })
            .collect();
        let views: Vec<_> = v.iter().map(|a| a.view()).collect();
        Const::Int(ndarray::concatenate(axis, &views).map_err(bad)?)
    } else {
        let v = parts
            .iter()
            .map(|p| p.to_f64())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ctx.err(node, e))?;
        let views: Vec<_> = v.iter().map(|a| a.view()).collect();
        Const::Float(ndarray::concatenate(axis, &views).map_err(bad)?)
    };
    ctx.set_const(node, r);
    Ok(())
}

pub fn cast(ctx: &mut Ctx, node: &NodeRef) -> Result<()> {
    ctx.single_output(node)?;
    let to = ctx
        .int_attr(node, "to")?
        .ok_or_else(|| ctx.err(node, "Cast needs `to`"))? as i32;
    let floating = to == dtype::FLOAT || to == dtype::DOUBLE;
    let c = match ctx.required(node, 0)? {
        Val::Dyn(x) if floating => {
            ctx.set(node, 0, Val::Dyn(x));
            return Ok(());
        }
        Val::Dyn(_) => {
            return Err(ctx.err(
                node,
                format!(
                    "Cast of a computed tensor to {} is not supported",
                    dtype_name(to)
                ),
            ))
        }
        Val::Const(c) => c,
    };
    let r = match (to, c.as_ref()) {
        (dtype::FLOAT, Const::Float(a)) => Const::Float(a.mapv(|v| v as f32 as f64)),
        (dtype::FLOAT, Const::Int(a)) => Const::Float(a.mapv(|v| v as f32 as f64)),
        (dtype::DOUBLE, Const::Float(a)) => Const::Float(a.clone()),
        (dtype::DOUBLE, Const::Int(a)) => Const::Float(a.mapv(|v| v as f64)),
        (
            dtype::INT64 | dtype::INT32 | dtype::INT16 | dtype::INT8 | dtype::UINT8 | dtype::BOOL,
            c,
        ) => {
            let ints = match c {
                Const::Int(a) => a.clone(),
                Const::Float(a) => a.mapv(|v| v.trunc() as i64),
            };
            Const::Int(ints.mapv(|v| match to {
                dtype::INT32 => v as i32 as i64,
                dtype::INT16 => v as i16 as i64,
                dtype::INT8 => v as i8 as i64,
                dtype::UINT8 => v as u8 as i64,
                dtype::BOOL => (v != 0) as i64,
                _ => v,
            }))
        }
        _ => return Err(ctx.err(node, format!("Cast to {} is not supported", dtype_name(to)))),
    };
    ctx.set_const(node, r);
    Ok(())
}

pub fn constant_of_shape(ctx: &mut Ctx, node: &NodeRef) -> Result<()> {
    ctx.single_output(node)?;
    let spec = ctx
        .required_constant(node, 0)?
        .to_i64_vec()
        .map_err(|e| ctx.err(node, e))?;
    let shape = spec
        .iter()
        .map(|&d| bounded(d, MAX_COMPUTED_ELEMENTS, "dimension"))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ctx.err(node, e))?;
    if checked_product(&shape).map_or(true, |n| n > MAX_COMPUTED_ELEMENTS) {
        return Err(ctx.err(node, format!("constant of shape {shape:?} is too large")));
    }
    let value = ctx
        .tensor_attr(node, "value")?
        .unwrap_or(Const::Float(ArrayD::zeros(IxDyn(&[1]))));
    if value.len() != 1 {
        return Err(ctx.err(node, "the value attribute must hold one element"));
    }
    let r = map_const!(&value, a => ArrayD::from_elem(IxDyn(&shape), a.iter().next().cloned().unwrap_or_default()));
    ctx.set_const(node, r);
    Ok(())
}

/// The indices ONNX Slice selects along an axis of length `dim`.
fn slice_indices(dim: usize, start: i64, end: i64, step: i64) -> Vec<usize> {
    if dim == 0 {
        return Vec::new();
    }
    let d = dim as i64;
    let norm = |v: i64| if v < 0 { v.saturating_add(d) } else { v };
    let (start, end) = (norm(start), norm(end));
    if step > 0 {
        let (s, e) = (start.clamp(0, d), end.clamp(0, d));
        (s..e).step_by(step as usize).map(|i| i as usize).collect()
    } else {
        let (s, e) = (start.clamp(0, d - 1), end.clamp(-1, d - 1));
        let mut out = Vec::new();
        let mut i = s;
        while i > e {
            out.push(i as usize);
            i = i.saturating_sub(step.unsigned_abs().min(i64::MAX as u64) as i64);
        }
        out
    }
}

pub fn slice(ctx: &mut Ctx, node: &NodeRef) -> Result<()> {
    ctx.single_output(node)?;
    let data = constant_data(ctx, node)?;
    let s = data.shape().to_vec();
    let param = |input: usize, attr: &str| ints_param(ctx, node, input, attr, 10);
    let starts = param(1, "starts")?.ok_or_else(|| ctx.err(node, "Slice needs starts"))?;
    let ends = param(2, "ends")?.ok_or_else(|| ctx.err(node, "Slice needs ends"))?;
    let axes = param(3, "axes")?.unwrap_or_else(|| (0..starts.len() as i64).collect());
    let steps = if ctx.opset >= 10 {
        ctx.constant(node, 4)?
    } else {
        None
    };
    let steps = match steps {
        Some(c) => c.to_i64_vec().map_err(|e| ctx.err(node, e))?,
        None => vec![1; starts.len()],
    };
    if ends.len() != starts.len() || axes.len() != starts.len() || steps.len() != starts.len() {
        return Err(ctx.err(node, "starts, ends, axes and steps differ in length"));
    }
    let mut r = data.as_ref().clone();
    let mut seen = vec![false; s.len()];
    for i in 0..starts.len() {
        let axis = ctx.axis(node, axes[i], s.len())?;
        if std::mem::replace(&mut seen[axis], true) || steps[i] == 0 {
            return Err(ctx.err(node, "Slice repeats an axis or has a zero step"));
        }
        let idx = slice_indices(s[axis], starts[i], ends[i], steps[i]);
        r = map_const!(&r, a => a.select(Axis(axis), &idx));
    }
    ctx.set_const(node, r);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_follow_onnx() {
        assert_eq!(slice_indices(5, 1, 4, 1), vec![1, 2, 3]);
        assert_eq!(slice_indices(5, -1, i64::MIN, -2), vec![4, 2, 0]);
        assert_eq!(slice_indices(5, 0, i64::MAX, 2), vec![0, 2, 4]);
        assert!(slice_indices(5, 3, 1, 1).is_empty());
    }
}
