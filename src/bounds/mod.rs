//! Sound bound propagation rules, per operator.
//!
//! What comes in: a `Graph` (exact canonical level) and intervals on its values. What goes out:
//! (a) interval images of each op (`ops::interval`), and (b) one step of backward linear-bound
//! propagation through each op (`ops::backward`), with the linear relaxations of the
//! nonlinearities in `relax`. Every floating-point step is made sound by the rules argued once
//! in `rounding`. The engines in `crate::engine` drive these rules over a whole graph.

pub mod ops;
pub mod relax;
pub mod rounding;

/// A box: `lo[i] ≤ x[i] ≤ hi[i]` for every scalar of a value (flattened row-major).
#[derive(Clone, Debug, PartialEq)]
pub struct Interval {
    pub lo: Vec<f64>,
    pub hi: Vec<f64>,
}

impl Interval {
    pub fn new(lo: Vec<f64>, hi: Vec<f64>) -> Interval {
        debug_assert_eq!(lo.len(), hi.len());
        Interval { lo, hi }
    }

    pub fn len(&self) -> usize {
        self.lo.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lo.is_empty()
    }

    /// `max(|lo|, |hi|)` per scalar: the magnitude bound used by rounding error terms.
    pub fn magnitude(&self) -> Vec<f64> {
        self.lo
            .iter()
            .zip(&self.hi)
            .map(|(l, h)| l.abs().max(h.abs()))
            .collect()
    }

    /// The tighter of two sound enclosures of the same set (elementwise intersection).
    pub fn intersect(&self, other: &Interval) -> Interval {
        Interval {
            lo: self
                .lo
                .iter()
                .zip(&other.lo)
                .map(|(a, b)| a.max(*b))
                .collect(),
            hi: self
                .hi
                .iter()
                .zip(&other.hi)
                .map(|(a, b)| a.min(*b))
                .collect(),
        }
    }
}
