//! Random small networks for property tests.
//!
//! `random_graph` builds a valid [`Graph`] from a random source and a [`RandomGraphConfig`]:
//! MLPs, CNNs (convolutions with random stride, padding, dilation and groups, batch norm,
//! pooling, flattening), residual blocks, broadcast elementwise constants, transposes, and
//! the chains the canonicalisation passes look for (Linear→Linear, Conv→BatchNorm,
//! BatchNorm→Linear, input normalisation, reshape chains, identity-ish constants).
//!
//! Tests draw a `u64` seed (from proptest) and build the graph from
//! `StdRng::seed_from_u64(seed)`, so a failing case shrinks to a seed that reproduces it.
//! Parameters are either short dyadic numbers (so exact rewrites have something to fire on)
//! or random `f32` values widened to `f64`, scaled by `weight_scale`.

use ndarray::{Array1, Array2, Array4, ArrayD, IxDyn};
use rand::Rng;

use super::graph::{Graph, ValueId};
use super::op::{window_output_len, Conv2d, Op, Pool2d};

/// The kinds of networks `random_graph` can build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// Linear layers and activations on a `[1, n]` input.
    Mlp,
    /// Convolutions, batch norm, pooling, then flatten and linear layers.
    Cnn,
    /// MLP or CNN with `Add`/`Sub` residual blocks.
    Residual,
    /// Broadcast elementwise constants, transposes and reshapes between layers.
    Elementwise,
    /// The patterns the canonicalisation passes rewrite, densely packed.
    Chains,
}

/// What `random_graph` may generate.
#[derive(Clone, Debug)]
pub struct RandomGraphConfig {
    /// Families to pick from, uniformly.
    pub families: Vec<Family>,
    /// Upper bound on feature widths and channel counts (at least 1).
    pub max_width: usize,
    /// Upper bound on the number of layers (blocks) drawn after the input.
    pub max_layers: usize,
    /// Magnitude of weights and biases (tests use 1e-6 ..= 1e6).
    pub weight_scale: f64,
    /// Probability that a parameter tensor holds short dyadic numbers instead of f32 values.
    pub dyadic_prob: f64,
    /// Whether Sigmoid and Tanh may appear (their exact evaluation is an enclosure).
    pub smooth_activations: bool,
    /// Probability that an intermediate value is also declared a graph output.
    pub extra_output_prob: f64,
}

impl Default for RandomGraphConfig {
    fn default() -> Self {
        RandomGraphConfig {
            families: vec![
                Family::Mlp,
                Family::Cnn,
                Family::Residual,
                Family::Elementwise,
                Family::Chains,
            ],
            max_width: 5,
            max_layers: 5,
            weight_scale: 1.0,
            dyadic_prob: 0.4,
            smooth_activations: true,
            extra_output_prob: 0.1,
        }
    }
}

/// Builds a random valid network (validated before it is returned).
pub fn random_graph(rng: &mut impl Rng, cfg: &RandomGraphConfig) -> Graph {
    let family = if cfg.families.is_empty() {
        Family::Mlp
    } else {
        cfg.families[rng.random_range(0..cfg.families.len())]
    };
    let mut b = Builder {
        rng,
        cfg,
        g: Graph::new(),
        count: 0,
    };
    let w = cfg.max_width.max(1);
    let layers = b.rng.random_range(1..=cfg.max_layers.max(1));
    let conv_input = match family {
        Family::Cnn => true,
        Family::Mlp => false,
        _ => b.rng.random_bool(0.5),
    };
    let mut cur = if conv_input {
        let c = b.rng.random_range(1..=w.min(3));
        let h = b.rng.random_range(3..=6);
        let wd = b.rng.random_range(3..=6);
        b.g.add_input("x", vec![1, c, h, wd])
    } else {
        let n = b.rng.random_range(1..=w);
        b.g.add_input("x", vec![1, n])
    };
    if b.rng.random_bool(0.3) || family == Family::Chains {
        cur = b.input_normalisation(cur);
    }
    for _ in 0..layers {
        cur = match family {
            Family::Mlp => b.dense_block(cur),
            Family::Cnn => b.conv_or_dense_block(cur),
            Family::Residual => {
                if b.rng.random_bool(0.6) {
                    b.residual(cur)
                } else {
                    b.conv_or_dense_block(cur)
                }
            }
            Family::Elementwise => match b.rng.random_range(0..4) {
                0 => b.elementwise(cur),
                1 => b.transpose(cur),
                2 => b.reshape_chain(cur),
                _ => b.conv_or_dense_block(cur),
            },
            Family::Chains => b.chain(cur),
        };
        if b.rng.random_bool(cfg.extra_output_prob) && !b.g.outputs.contains(&cur) {
            b.g.add_output(cur);
        }
    }
    // Finish with a small linear head so outputs are few.
    let cur = b.flatten(cur);
    let out = b.rng.random_range(1..=3);
    let y = b.linear(cur, out);
    b.g.add_output(y);
    debug_assert!(b.g.validate().is_ok(), "{:?}", b.g.validate());
    b.g
}

struct Builder<'a, R: Rng> {
    rng: &'a mut R,
    cfg: &'a RandomGraphConfig,
    g: Graph,
    count: usize,
}

impl<R: Rng> Builder<'_, R> {
    /// Appends a node; the generator only builds shape-correct ops, so failure is a bug here.
    fn node(&mut self, op: Op, inputs: Vec<ValueId>) -> ValueId {
        self.count += 1;
        let name = format!("{}_{}", op.kind().to_ascii_lowercase(), self.count);
        let out = format!("v{}", self.count);
        match self.g.add_node(name, op, inputs, out) {
            Ok(v) => v,
            Err(e) => panic!("random_graph built an inconsistent node: {e}"),
        }
    }

    fn shape(&self, v: ValueId) -> Vec<usize> {
        self.g.value(v).shape.clone()
    }

    /// `n` parameters of magnitude about `scale`: dyadic or f32, one mode per tensor.
    fn params(&mut self, n: usize, scale: f64) -> Vec<f64> {
        if self.rng.random_bool(self.cfg.dyadic_prob.clamp(0.0, 1.0)) {
            let p = 2f64.powi(scale.log2().round() as i32);
            (0..n)
                .map(|_| f64::from(self.rng.random_range(-16i32..=16)) / 8.0 * p)
                .collect()
        } else {
            (0..n)
                .map(|_| {
                    let u: f64 = self.rng.random_range(-1.0..1.0);
                    f64::from((u * scale) as f32)
                })
                .collect()
        }
    }

    /// Nonzero constants of magnitude in [1/4, 4]: dyadic or f32.
    fn nonzero(&mut self, n: usize) -> Vec<f64> {
        let dyadic = self.rng.random_bool(self.cfg.dyadic_prob.clamp(0.0, 1.0));
        (0..n)
            .map(|_| {
                let sign = if self.rng.random_bool(0.5) { 1.0 } else { -1.0 };
                if dyadic {
                    sign * 2f64.powi(self.rng.random_range(-2..=2))
                } else {
                    sign * f64::from(self.rng.random_range(0.25f32..4.0))
                }
            })
            .collect()
    }

    fn linear(&mut self, x: ValueId, out: usize) -> ValueId {
        let inp = self.shape(x).last().copied().unwrap_or(1);
        let s = self.cfg.weight_scale;
        let weight = Array2::from_shape_vec((out, inp), self.params(out * inp, s))
            .unwrap_or_else(|_| Array2::zeros((out, inp)));
        let bias = self
            .rng
            .random_bool(0.8)
            .then(|| Array1::from(self.params(out, s)));
        self.node(Op::Linear { weight, bias }, vec![x])
    }

    fn activation(&mut self, x: ValueId) -> ValueId {
        let k = if self.cfg.smooth_activations { 5 } else { 3 };
        let op = match self.rng.random_range(0..k) {
            0 | 1 => Op::Relu,
            2 => Op::LeakyRelu {
                alpha: [0.01, 0.125, 0.2, -0.5][self.rng.random_range(0..4)],
            },
            3 => Op::Sigmoid,
            _ => Op::Tanh,
        };
        self.node(op, vec![x])
    }

    fn dense_block(&mut self, x: ValueId) -> ValueId {
        let x = self.flatten(x);
        let out = self.rng.random_range(1..=self.cfg.max_width.max(1));
        let h = self.linear(x, out);
        if self.rng.random_bool(0.8) {
            self.activation(h)
        } else {
            h
        }
    }

    fn conv_or_dense_block(&mut self, x: ValueId) -> ValueId {
        if self.shape(x).len() != 4 {
            return self.dense_block(x);
        }
        match self.rng.random_range(0..6) {
            0..=2 => {
                let y = self.conv(x, false);
                let y = if self.rng.random_bool(0.4) {
                    self.batchnorm(y)
                } else {
                    y
                };
                self.activation(y)
            }
            3 => self.pool(x),
            4 => self.batchnorm(x),
            _ => self.dense_block(x),
        }
    }

    /// A convolution; `same` keeps the shape (for residual branches).
    fn conv(&mut self, x: ValueId, same: bool) -> ValueId {
        let [_, c, h, w] = four(&self.shape(x));
        let divisors: Vec<usize> = (1..=c).filter(|d| c % d == 0).collect();
        let group = divisors[self.rng.random_range(0..divisors.len())];
        let (out, kernel, strides, pads, dilations) = if same {
            let k = if self.rng.random_bool(0.5) { 1 } else { 3 };
            (c, [k, k], [1, 1], [k / 2; 4], [1, 1])
        } else {
            let mult = self
                .rng
                .random_range(1..=(self.cfg.max_width.max(1) / group).max(1));
            let k = [self.rng.random_range(1..=3), self.rng.random_range(1..=3)];
            let pads = [0; 4].map(|_| self.rng.random_range(0..=1usize));
            let s = [self.rng.random_range(1..=2), self.rng.random_range(1..=2)];
            let d = [self.rng.random_range(1..=2), self.rng.random_range(1..=2)];
            // Shrink the kernel or dilation until the window fits.
            let mut k = k;
            let mut d = d;
            for (axis, len) in [(0, h), (1, w)] {
                while window_output_len(
                    len,
                    k[axis],
                    s[axis],
                    pads[axis],
                    pads[axis + 2],
                    d[axis],
                    false,
                )
                .is_err()
                {
                    if d[axis] > 1 {
                        d[axis] -= 1;
                    } else {
                        k[axis] -= 1;
                    }
                }
            }
            (group * mult, k, s, pads, d)
        };
        let n = out * (c / group) * kernel[0] * kernel[1];
        let weight = Array4::from_shape_vec(
            (out, c / group, kernel[0], kernel[1]),
            self.params(n, self.cfg.weight_scale),
        )
        .unwrap_or_else(|_| Array4::zeros((out, c / group, kernel[0], kernel[1])));
        let bias = self
            .rng
            .random_bool(0.7)
            .then(|| Array1::from(self.params(out, self.cfg.weight_scale)));
        self.node(
            Op::Conv(Conv2d {
                weight,
                bias,
                strides,
                pads,
                dilations,
                group,
            }),
            vec![x],
        )
    }

    fn batchnorm(&mut self, x: ValueId) -> ValueId {
        let c = self.shape(x).get(1).copied().unwrap_or(1);
        let scale = Array1::from(self.nonzero(c));
        let bias = Array1::from(self.params(c, 1.0));
        let mean = Array1::from(self.params(c, 1.0));
        let var = Array1::from(self.nonzero(c)).mapv(f64::abs);
        let epsilon = if self.rng.random_bool(0.5) { 1e-5 } else { 0.0 };
        self.node(
            Op::BatchNorm {
                scale,
                bias,
                mean,
                var,
                epsilon,
            },
            vec![x],
        )
    }

    fn pool(&mut self, x: ValueId) -> ValueId {
        let [_, _, h, w] = four(&self.shape(x));
        if self.rng.random_bool(0.25) {
            return self.node(Op::GlobalAveragePool, vec![x]);
        }
        let k = [
            self.rng.random_range(1..=2.min(h)),
            self.rng.random_range(1..=2.min(w)),
        ];
        let pads = [k[0] - 1, k[1] - 1, k[0] - 1, k[1] - 1].map(|p| self.rng.random_range(0..=p));
        let p = Pool2d {
            kernel: k,
            strides: [self.rng.random_range(1..=2), self.rng.random_range(1..=2)],
            pads,
            dilations: [1, 1],
            ceil_mode: self.rng.random_bool(0.2),
            count_include_pad: self.rng.random_bool(0.5),
        };
        if self.rng.random_bool(0.5) {
            self.node(Op::MaxPool(p), vec![x])
        } else {
            self.node(Op::AveragePool(p), vec![x])
        }
    }

    fn flatten(&mut self, x: ValueId) -> ValueId {
        let s = self.shape(x);
        if s.len() == 2 && s[0] == 1 {
            return x;
        }
        let n = s.iter().product();
        self.node(Op::Reshape { shape: vec![1, n] }, vec![x])
    }

    /// A shape `c` broadcasts against without growing `shape`: some axes set to 1, maybe
    /// fewer leading axes.
    fn broadcast_shape(&mut self, shape: &[usize]) -> Vec<usize> {
        let drop = self.rng.random_range(0..=shape.len());
        shape[drop..]
            .iter()
            .map(|&d| if self.rng.random_bool(0.4) { 1 } else { d })
            .collect()
    }

    fn elementwise(&mut self, x: ValueId) -> ValueId {
        let cs = self.broadcast_shape(&self.shape(x));
        let n = cs.iter().product();
        let op = match self.rng.random_range(0..6) {
            0 => Op::AddConst(arr(&cs, self.params(n, 1.0))),
            1 => Op::AddConst(ArrayD::zeros(IxDyn(&cs))),
            2 => Op::MulConst(arr(&cs, self.nonzero(n))),
            3 => Op::MulConst(ArrayD::ones(IxDyn(&cs))),
            4 => Op::DivConst(arr(&cs, self.nonzero(n))),
            _ => Op::MulConst(ArrayD::from_elem(IxDyn(&cs), -1.0)),
        };
        self.node(op, vec![x])
    }

    fn transpose(&mut self, x: ValueId) -> ValueId {
        let r = self.shape(x).len();
        let mut perm: Vec<usize> = (0..r).collect();
        for i in (1..r).rev() {
            let j = self.rng.random_range(0..=i);
            perm.swap(i, j);
        }
        let y = self.node(Op::Transpose { perm: perm.clone() }, vec![x]);
        if self.rng.random_bool(0.5) {
            // Undo it (sometimes in two steps), so later layers see the old layout.
            let mut inv = vec![0; r];
            for (i, &p) in perm.iter().enumerate() {
                inv[p] = i;
            }
            self.node(Op::Transpose { perm: inv }, vec![y])
        } else {
            y
        }
    }

    fn reshape_chain(&mut self, x: ValueId) -> ValueId {
        let s = self.shape(x);
        let n: usize = s.iter().product();
        let y = self.node(
            Op::Reshape {
                shape: vec![1, n, 1],
            },
            vec![x],
        );
        let y = self.node(Op::Reshape { shape: vec![n] }, vec![y]);
        let last = if self.rng.random_bool(0.5) {
            s
        } else {
            vec![1, n]
        };
        let y = self.node(
            Op::Reshape {
                shape: last.clone(),
            },
            vec![y],
        );
        if self.rng.random_bool(0.3) {
            self.node(Op::Reshape { shape: last }, vec![y])
        } else {
            y
        }
    }

    fn residual(&mut self, x: ValueId) -> ValueId {
        let s = self.shape(x);
        let branch = |b: &mut Self, v: ValueId| -> ValueId {
            if s.len() == 4 {
                let y = b.conv(v, true);
                b.activation(y)
            } else {
                let n = s.last().copied().unwrap_or(1);
                let y = b.linear(v, n);
                b.activation(y)
            }
        };
        let a = branch(self, x);
        let other = if self.rng.random_bool(0.5) {
            x
        } else {
            branch(self, x)
        };
        let op = if self.rng.random_bool(0.8) {
            Op::Add
        } else {
            Op::Sub
        };
        self.node(op, vec![a, other])
    }

    /// `(x − mean) / std` on the input, as importers see it in the wild.
    fn input_normalisation(&mut self, x: ValueId) -> ValueId {
        let s = self.shape(x);
        let cs = if s.len() == 4 {
            vec![s[1], 1, 1]
        } else {
            vec![s[1]]
        };
        let n = cs.iter().product();
        let mean = self.params(n, 1.0).into_iter().map(|m| -m).collect();
        let y = self.node(Op::AddConst(arr(&cs, mean)), vec![x]);
        let std = self.nonzero(n).into_iter().map(f64::abs).collect();
        if self.rng.random_bool(0.5) {
            self.node(Op::DivConst(arr(&cs, std)), vec![y])
        } else {
            self.node(Op::MulConst(arr(&cs, std)), vec![y])
        }
    }

    /// One of the patterns the canonicalisation passes look for.
    fn chain(&mut self, x: ValueId) -> ValueId {
        let conv = self.shape(x).len() == 4;
        match self.rng.random_range(0..7) {
            0 if conv => {
                let y = self.conv(x, false);
                self.batchnorm(y)
            }
            1 if conv => {
                let y = self.batchnorm(x);
                self.conv(y, false)
            }
            0 | 1 => {
                let x = self.flatten(x);
                let y = self.batchnorm(x);
                let n = self.rng.random_range(1..=self.cfg.max_width.max(1));
                self.linear(y, n)
            }
            2 => {
                let x = self.flatten(x);
                let n = self.rng.random_range(1..=self.cfg.max_width.max(1));
                let y = self.linear(x, n);
                let n = self.rng.random_range(1..=self.cfg.max_width.max(1));
                self.linear(y, n)
            }
            3 => {
                let y = self.elementwise(x);
                self.conv_or_dense_block(y)
            }
            4 => {
                let y = self.conv_or_dense_block(x);
                self.elementwise(y)
            }
            5 => self.reshape_chain(x),
            _ => {
                let y = self.transpose(x);
                self.elementwise(y)
            }
        }
    }
}

fn four(s: &[usize]) -> [usize; 4] {
    match s {
        [n, c, h, w] => [*n, *c, *h, *w],
        _ => [1, 1, 1, 1],
    }
}

fn arr(shape: &[usize], data: Vec<f64>) -> ArrayD<f64> {
    ArrayD::from_shape_vec(IxDyn(shape), data).unwrap_or_else(|_| ArrayD::zeros(IxDyn(shape)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn every_family_builds_valid_graphs() {
        for family in [
            Family::Mlp,
            Family::Cnn,
            Family::Residual,
            Family::Elementwise,
            Family::Chains,
        ] {
            let cfg = RandomGraphConfig {
                families: vec![family],
                ..RandomGraphConfig::default()
            };
            for seed in 0..200 {
                let g = random_graph(&mut StdRng::seed_from_u64(seed), &cfg);
                assert!(g.validate().is_ok(), "{family:?} seed {seed}: {g}");
                assert!(!g.outputs.is_empty() && !g.nodes.is_empty());
            }
        }
    }

    #[test]
    fn seeds_reproduce_and_scale_applies() {
        let cfg = RandomGraphConfig {
            weight_scale: 1e6,
            dyadic_prob: 0.0,
            ..RandomGraphConfig::default()
        };
        let a = random_graph(&mut StdRng::seed_from_u64(7), &cfg);
        let b = random_graph(&mut StdRng::seed_from_u64(7), &cfg);
        assert_eq!(a, b);
        let big = a.nodes.iter().any(|n| match &n.op {
            Op::Linear { weight, .. } => weight.iter().any(|w| w.abs() > 1e3),
            _ => false,
        });
        assert!(big, "{a}");
    }

    #[test]
    fn families_cover_the_pass_patterns() {
        let cfg = RandomGraphConfig::default();
        let mut kinds = std::collections::BTreeSet::new();
        for seed in 0..300 {
            let g = random_graph(&mut StdRng::seed_from_u64(seed), &cfg);
            kinds.extend(g.op_histogram().into_keys());
        }
        for k in [
            "Linear",
            "Conv",
            "BatchNorm",
            "AddConst",
            "MulConst",
            "DivConst",
            "Add",
            "Sub",
            "Relu",
            "LeakyRelu",
            "Sigmoid",
            "Tanh",
            "Reshape",
            "Transpose",
            "MaxPool",
            "AveragePool",
            "GlobalAveragePool",
        ] {
            assert!(kinds.contains(k), "{k} never generated");
        }
    }
}
