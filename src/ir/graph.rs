//! `Graph`: a network as a list of nodes in topological order over typed values.
//!
//! Values are numbered (`ValueId`) and carry a name and a per-sample shape. Each node applies
//! one `Op` to computed values and produces exactly one new value. Graph inputs are values no
//! node produces; outputs are any values. Constants are not values: they live inside the ops
//! (see `op.rs`), so everything a node reads is computed from the inputs.
//!
//! The constructor methods check shapes as nodes are added, so a `Graph` that exists is
//! consistent: every node's inputs exist and come before it, and every shape is inferred.

use std::collections::BTreeMap;
use std::fmt;

use super::op::Op;

/// The index of a value in `Graph::values`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ValueId(pub usize);

/// A tensor flowing through the graph.
#[derive(Clone, Debug, PartialEq)]
pub struct Value {
    pub name: String,
    /// Per-sample shape (symbolic dimensions pinned to 1).
    pub shape: Vec<usize>,
}

impl Value {
    /// Number of scalars in one sample of this value.
    pub fn size(&self) -> usize {
        self.shape.iter().product()
    }
}

/// One operation: `output = op(inputs...)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub name: String,
    pub op: Op,
    pub inputs: Vec<ValueId>,
    pub output: ValueId,
}

/// A network. Nodes are kept in topological order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Graph {
    pub values: Vec<Value>,
    pub nodes: Vec<Node>,
    pub inputs: Vec<ValueId>,
    pub outputs: Vec<ValueId>,
}

impl Graph {
    pub fn new() -> Graph {
        Graph::default()
    }

    /// Declares a graph input with its per-sample shape.
    pub fn add_input(&mut self, name: impl Into<String>, shape: Vec<usize>) -> ValueId {
        let id = self.push_value(name.into(), shape);
        self.inputs.push(id);
        id
    }

    /// Appends a node after all existing ones, inferring its output shape.
    /// The output value is named `output_name`.
    pub fn add_node(
        &mut self,
        name: impl Into<String>,
        op: Op,
        inputs: Vec<ValueId>,
        output_name: impl Into<String>,
    ) -> Result<ValueId, String> {
        let name = name.into();
        for v in &inputs {
            if v.0 >= self.values.len() {
                return Err(format!("node `{name}` reads an unknown value #{}", v.0));
            }
        }
        let shapes: Vec<&[usize]> = inputs
            .iter()
            .map(|v| self.values[v.0].shape.as_slice())
            .collect();
        let shape = op
            .output_shape(&shapes)
            .map_err(|e| format!("node `{name}` ({}): {e}", op.kind()))?;
        let output = self.push_value(output_name.into(), shape);
        self.nodes.push(Node {
            name,
            op,
            inputs,
            output,
        });
        Ok(output)
    }

    /// Marks a value as a graph output.
    pub fn add_output(&mut self, v: ValueId) {
        self.outputs.push(v);
    }

    fn push_value(&mut self, name: String, shape: Vec<usize>) -> ValueId {
        self.values.push(Value { name, shape });
        ValueId(self.values.len() - 1)
    }

    pub fn value(&self, v: ValueId) -> &Value {
        &self.values[v.0]
    }

    /// Total number of input scalars per sample (all inputs, in order).
    pub fn input_size(&self) -> usize {
        self.inputs.iter().map(|&v| self.value(v).size()).sum()
    }

    /// Total number of output scalars per sample (all outputs, in order).
    pub fn output_size(&self) -> usize {
        self.outputs.iter().map(|&v| self.value(v).size()).sum()
    }

    /// The node producing `v`, if any (graph inputs have none).
    pub fn producer(&self, v: ValueId) -> Option<usize> {
        self.nodes.iter().position(|n| n.output == v)
    }

    /// For each value, the indices of the nodes that read it.
    pub fn consumers(&self) -> Vec<Vec<usize>> {
        let mut c = vec![Vec::new(); self.values.len()];
        for (i, n) in self.nodes.iter().enumerate() {
            for v in &n.inputs {
                c[v.0].push(i);
            }
        }
        c
    }

    /// How many times each value is read, counting graph outputs as readers.
    pub fn use_counts(&self) -> Vec<usize> {
        let mut c = vec![0; self.values.len()];
        for n in &self.nodes {
            for v in &n.inputs {
                c[v.0] += 1;
            }
        }
        for v in &self.outputs {
            c[v.0] += 1;
        }
        c
    }

    /// Operator histogram, sorted by op name.
    pub fn op_histogram(&self) -> BTreeMap<&'static str, usize> {
        let mut h = BTreeMap::new();
        for n in &self.nodes {
            *h.entry(n.op.kind()).or_insert(0) += 1;
        }
        h
    }

    /// Number of stored parameters over all nodes.
    pub fn parameter_count(&self) -> usize {
        self.nodes.iter().map(|n| n.op.parameter_count()).sum()
    }

    /// Checks the invariants every pass must keep: nodes in topological order, each value
    /// produced at most once, shapes consistent, outputs reachable.
    pub fn validate(&self) -> Result<(), String> {
        let mut defined = vec![false; self.values.len()];
        for &v in &self.inputs {
            if v.0 >= self.values.len() {
                return Err(format!("input #{} is not a value", v.0));
            }
            defined[v.0] = true;
        }
        for n in &self.nodes {
            for v in &n.inputs {
                if !defined.get(v.0).copied().unwrap_or(false) {
                    return Err(format!(
                        "node `{}` reads value #{} before it is computed",
                        n.name, v.0
                    ));
                }
            }
            if n.output.0 >= self.values.len() || defined[n.output.0] {
                return Err(format!(
                    "node `{}` writes value #{} twice",
                    n.name, n.output.0
                ));
            }
            let shapes: Vec<&[usize]> = n
                .inputs
                .iter()
                .map(|v| self.values[v.0].shape.as_slice())
                .collect();
            let shape =
                n.op.output_shape(&shapes)
                    .map_err(|e| format!("node `{}`: {e}", n.name))?;
            if shape != self.values[n.output.0].shape {
                return Err(format!(
                    "node `{}` produces shape {shape:?} but its value says {:?}",
                    n.name, self.values[n.output.0].shape
                ));
            }
            defined[n.output.0] = true;
        }
        for v in &self.outputs {
            if !defined.get(v.0).copied().unwrap_or(false) {
                return Err(format!("output #{} is never computed", v.0));
            }
        }
        Ok(())
    }

    /// Drops nodes whose results no output needs, and renumbers values densely.
    /// Returns whether anything was removed.
    pub fn prune(&mut self) -> bool {
        let mut live = vec![false; self.values.len()];
        for v in &self.outputs {
            live[v.0] = true;
        }
        for n in self.nodes.iter().rev() {
            if live[n.output.0] {
                for v in &n.inputs {
                    live[v.0] = true;
                }
            }
        }
        for v in &self.inputs {
            live[v.0] = true;
        }
        let before = (self.nodes.len(), self.values.len());
        self.nodes.retain(|n| live[n.output.0]);
        let mut map = vec![usize::MAX; self.values.len()];
        let mut values = Vec::new();
        for (i, v) in self.values.drain(..).enumerate() {
            if live[i] {
                map[i] = values.len();
                values.push(v);
            }
        }
        self.values = values;
        let remap = |v: &mut ValueId| v.0 = map[v.0];
        self.inputs.iter_mut().for_each(remap);
        self.outputs.iter_mut().for_each(remap);
        for n in &mut self.nodes {
            n.inputs.iter_mut().for_each(remap);
            remap(&mut n.output);
        }
        before != (self.nodes.len(), self.values.len())
    }
}

impl fmt::Display for Graph {
    /// The canonical listing: one line per input, node and output.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &v in &self.inputs {
            writeln!(
                f,
                "input  %{} {:?} ({})",
                v.0,
                self.value(v).shape,
                self.value(v).name
            )?;
        }
        for n in &self.nodes {
            let args: Vec<String> = n.inputs.iter().map(|v| format!("%{}", v.0)).collect();
            let detail = match &n.op {
                Op::Linear { weight, bias } => format!(
                    " {}x{}{}",
                    weight.nrows(),
                    weight.ncols(),
                    if bias.is_some() { " +bias" } else { "" }
                ),
                Op::Conv(c) => format!(
                    " {}x{}x{}x{} stride {:?} pads {:?} dil {:?} group {}",
                    c.weight.shape()[0],
                    c.weight.shape()[1],
                    c.weight.shape()[2],
                    c.weight.shape()[3],
                    c.strides,
                    c.pads,
                    c.dilations,
                    c.group
                ),
                Op::AddConst(c) | Op::MulConst(c) | Op::DivConst(c) => {
                    format!(" const{:?}", c.shape())
                }
                Op::LeakyRelu { alpha } => format!(" alpha={alpha}"),
                Op::Reshape { shape } => format!(" {shape:?}"),
                Op::Transpose { perm } => format!(" perm {perm:?}"),
                Op::AveragePool(p) | Op::MaxPool(p) => {
                    format!(
                        " kernel {:?} stride {:?} pads {:?}",
                        p.kernel, p.strides, p.pads
                    )
                }
                Op::Softmax { axis } => format!(" axis {axis}"),
                _ => String::new(),
            };
            writeln!(
                f,
                "%{} = {}{}({}) -> {:?}",
                n.output.0,
                n.op.kind(),
                detail,
                args.join(", "),
                self.value(n.output).shape
            )?;
        }
        for &v in &self.outputs {
            writeln!(
                f,
                "output %{} {:?} ({})",
                v.0,
                self.value(v).shape,
                self.value(v).name
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    fn tiny() -> Graph {
        let mut g = Graph::new();
        let x = g.add_input("x", vec![1, 2]);
        let h = g
            .add_node(
                "fc",
                Op::Linear {
                    weight: Array2::eye(2),
                    bias: None,
                },
                vec![x],
                "h",
            )
            .unwrap();
        let _dead = g.add_node("dead", Op::Tanh, vec![x], "d").unwrap();
        let y = g.add_node("relu", Op::Relu, vec![h], "y").unwrap();
        g.add_output(y);
        g
    }

    #[test]
    fn shapes_are_inferred_and_checked() {
        let mut g = tiny();
        assert!(g.validate().is_ok());
        let x = g.inputs[0];
        let bad = Op::Linear {
            weight: Array2::zeros((2, 3)),
            bias: None,
        };
        assert!(g
            .add_node("bad", bad, vec![x], "z")
            .unwrap_err()
            .contains("last axis of 3"));
    }

    #[test]
    fn prune_removes_dead_nodes_and_renumbers() {
        let mut g = tiny();
        assert!(g.prune());
        assert_eq!(g.nodes.len(), 2);
        assert_eq!(g.values.len(), 3);
        assert!(g.validate().is_ok());
        assert!(!g.prune());
    }
}
