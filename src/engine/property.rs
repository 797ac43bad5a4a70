//! Bounds on a property's atoms: for each input box of a `Spec`, the output bounds and, for
//! every atom `a·Y ≤ b` of every unsafe disjunct, a sound lower bound of the *margin* `a·Y − b`.
//! A margin lower bound `> 0` proves the atom (hence its disjunct) infeasible on the box.
//!
//! The atom rows are stacked into one specification matrix and propagated directly. The `f64`
//! right-hand sides are already rounded up by the parser (a larger unsafe region); coefficients
//! that are not exactly `f64` numbers are handled by subtracting `Σ |a_k − ã_k| · |y_k|`, with
//! `|y_k|` from the output bounds.

use ndarray::Array2;
use num_traits::Signed;

use super::{compute, BoxBounds, Method};
use crate::bounds::rounding::{abs_dot_up, sub_down};
use crate::bounds::Interval;
use crate::error::Result;
use crate::eval::exact::round_up_f64;
use crate::ir::Graph;
use crate::spec::{Region, Spec};

/// Bounds over one input box of a property.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct RegionBounds {
    pub lower: Vec<f64>,
    pub upper: Vec<f64>,
    /// `margins[d][a]`: lower bound of `a·Y − b` for atom `a` of disjunct `d`.
    pub margins: Vec<Vec<f64>>,
}

impl RegionBounds {
    /// Whether every disjunct has an atom with a positive margin: no point of the box is unsafe.
    pub fn proved(&self) -> bool {
        self.margins.iter().all(|d| d.iter().any(|m| *m > 0.0))
    }
}

/// The input box of a region as an interval (the outward-rounded `f64` view).
pub fn region_box(region: &Region) -> Interval {
    Interval::new(region.input.lower.clone(), region.input.upper.clone())
}

/// Bounds of one region with `method`.
pub fn region_bounds(graph: &Graph, method: Method, region: &Region) -> Result<RegionBounds> {
    region_bounds_by(graph, region, |input, c| compute(graph, method, input, c))
}

/// Bounds of one region from `bound`, a sound bound of the outputs and of the rows of `C`
/// over an input box (one of the engines).
pub fn region_bounds_by(
    graph: &Graph,
    region: &Region,
    bound: impl FnOnce(&Interval, Option<&Array2<f64>>) -> Result<BoxBounds>,
) -> Result<RegionBounds> {
    let atoms: Vec<_> = region
        .unsafe_outputs
        .iter()
        .flat_map(|c| c.atoms.iter())
        .collect();
    let n_out = graph.output_size();
    let c = Array2::from_shape_fn((atoms.len(), n_out), |(i, j)| atoms[i].coeffs[j]);
    let b = bound(&region_box(region), Some(&c))?;
    let magnitude = b.outputs.magnitude();
    let mut k = 0;
    let mut margins = Vec::with_capacity(region.unsafe_outputs.len());
    for conj in &region.unsafe_outputs {
        let mut row = Vec::with_capacity(conj.atoms.len());
        for atom in &conj.atoms {
            let mut m = sub_down(b.rows[k], atom.rhs);
            if !atom.is_exact_in_f64() {
                let slack: Vec<f64> = atom
                    .coeffs_exact
                    .iter()
                    .zip(&atom.coeffs)
                    .map(|(e, f)| {
                        let d =
                            (e - num_rational::BigRational::from_float(*f).expect("finite")).abs();
                        round_up_f64(&d)
                    })
                    .collect();
                m = sub_down(m, abs_dot_up(&slack, &magnitude));
            }
            row.push(m);
            k += 1;
        }
        margins.push(row);
    }
    Ok(RegionBounds {
        lower: b.outputs.lo,
        upper: b.outputs.hi,
        margins,
    })
}

/// Bounds of every region of a property.
pub fn spec_bounds(graph: &Graph, method: Method, spec: &Spec) -> Result<Vec<RegionBounds>> {
    spec.regions
        .iter()
        .map(|r| region_bounds(graph, method, r))
        .collect()
}
