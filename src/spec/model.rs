//! The normalised property: input boxes, each with an unsafe DNF over the outputs.
//!
//! A [`Spec`] follows the VNN-COMP reading of a VNN-LIB file: the conjunction of all asserts
//! describes the *unsafe* region. The property is violated iff for some [`Region`] there is an
//! `x` in its [`InputBox`] such that `N(x)` satisfies some [`Conjunction`] of its
//! `unsafe_outputs`. Every number is held exactly (`*_exact`, the truth) and as an `f64` view
//! rounded in the sound direction: box lower bounds down and upper bounds up (the `f64` box
//! contains the true box), atom right-hand sides up (the `f64` unsafe region contains the true
//! one when the coefficients are exact). Coefficients are rounded to nearest; they are almost
//! always ±1 and exact, but an engine must check [`Atom::is_exact_in_f64`] (or
//! [`Spec::has_exact_coefficients`]) and, when it is false, either work from the exact fields
//! or widen the atom by a rigorous bound on `Σ |a_k - ã_k| · |y_k|`.

use std::fmt;

use num_rational::BigRational;
use num_traits::{Signed, Zero};

use super::rational;

/// A normalised VNN-LIB property.
#[derive(Clone, Debug, PartialEq)]
pub struct Spec {
    pub num_inputs: usize,
    pub num_outputs: usize,
    /// The property is violated iff for SOME region r: ∃x in r.input with N(x) satisfying SOME
    /// conjunction of r.unsafe_outputs.
    pub regions: Vec<Region>,
}

/// One input box and the unsafe output region over it, a DNF of linear atoms.
#[derive(Clone, Debug, PartialEq)]
pub struct Region {
    pub input: InputBox,
    pub unsafe_outputs: Vec<Conjunction>,
}

/// A box of inputs: exact bounds and the outward-rounded `f64` bounds that contain them.
#[derive(Clone, Debug, PartialEq)]
pub struct InputBox {
    pub lower: Vec<f64>,
    pub upper: Vec<f64>,
    pub lower_exact: Vec<BigRational>,
    pub upper_exact: Vec<BigRational>,
}

/// A conjunction of atoms over the outputs; an empty conjunction is true (every output).
#[derive(Clone, Debug, PartialEq)]
pub struct Conjunction {
    pub atoms: Vec<Atom>,
}

/// a · Y <= b
#[derive(Clone, Debug, PartialEq)]
pub struct Atom {
    /// `coeffs_exact` rounded to nearest.
    pub coeffs: Vec<f64>,
    /// `rhs_exact` rounded up (towards a larger unsafe region).
    pub rhs: f64,
    pub coeffs_exact: Vec<BigRational>,
    pub rhs_exact: BigRational,
}

impl Atom {
    /// The atom `coeffs_exact · Y <= rhs_exact` with its `f64` views.
    pub fn new(coeffs_exact: Vec<BigRational>, rhs_exact: BigRational) -> Atom {
        Atom {
            coeffs: coeffs_exact.iter().map(rational::nearest).collect(),
            rhs: rational::round_up(&rhs_exact),
            coeffs_exact,
            rhs_exact,
        }
    }

    /// Whether every coefficient is exactly its `f64` view. When true, the `f64` atom
    /// `coeffs · Y <= rhs` contains the exact one (its `rhs` is rounded up); when false an
    /// engine must treat the atom conservatively (see the module documentation).
    pub fn is_exact_in_f64(&self) -> bool {
        self.coeffs
            .iter()
            .zip(&self.coeffs_exact)
            .all(|(c, e)| rational::from_f64(*c).is_some_and(|v| v == *e))
    }

    /// Exact truth of the atom at `y` (`false` on a length mismatch).
    pub fn holds_exact(&self, y: &[BigRational]) -> bool {
        if y.len() != self.coeffs_exact.len() {
            return false;
        }
        let lhs = self
            .coeffs_exact
            .iter()
            .zip(y)
            .filter(|(c, _)| !c.is_zero())
            .fold(BigRational::zero(), |acc, (c, v)| acc + c * v);
        lhs <= self.rhs_exact
    }

    /// The atom evaluated in `f64` arithmetic with the `f64` views (`false` on a mismatch).
    pub fn holds_f64(&self, y: &[f64]) -> bool {
        y.len() == self.coeffs.len()
            && self.coeffs.iter().zip(y).map(|(c, v)| c * v).sum::<f64>() <= self.rhs
    }
}

impl Conjunction {
    pub fn holds_exact(&self, y: &[BigRational]) -> bool {
        self.atoms.iter().all(|a| a.holds_exact(y))
    }

    pub fn holds_f64(&self, y: &[f64]) -> bool {
        self.atoms.iter().all(|a| a.holds_f64(y))
    }
}

impl InputBox {
    pub fn dim(&self) -> usize {
        self.lower_exact.len()
    }

    /// Whether `x` lies in the exact (closed) box.
    pub fn contains_exact(&self, x: &[BigRational]) -> bool {
        x.len() == self.dim()
            && x.iter()
                .zip(self.lower_exact.iter().zip(&self.upper_exact))
                .all(|(v, (lo, hi))| lo <= v && v <= hi)
    }

    /// Whether `x` lies in the `f64` box (which contains the exact box).
    pub fn contains_f64(&self, x: &[f64]) -> bool {
        x.len() == self.dim()
            && x.iter()
                .zip(self.lower.iter().zip(&self.upper))
                .all(|(v, (lo, hi))| lo <= v && v <= hi)
    }
}

impl Spec {
    /// Whether `(x, y)` is a counterexample, exactly: `x` lies in some region's box and `y`
    /// satisfies some conjunction of that region. `false` when a length does not match.
    pub fn evaluate_exact(&self, x: &[BigRational], y: &[BigRational]) -> bool {
        self.regions
            .iter()
            .any(|r| r.input.contains_exact(x) && r.unsafe_outputs.iter().any(|c| c.holds_exact(y)))
    }

    /// The same test on the `f64` views in `f64` arithmetic: a fast filter, not a proof. It
    /// may accept points up to rounding error outside the exact regions; confirm with
    /// [`Spec::evaluate_exact`] (e.g. on `rational::from_f64` of the values).
    pub fn evaluate_f64(&self, x: &[f64], y: &[f64]) -> bool {
        self.regions
            .iter()
            .any(|r| r.input.contains_f64(x) && r.unsafe_outputs.iter().any(|c| c.holds_f64(y)))
    }

    /// Whether every atom's coefficients are exact in `f64`.
    pub fn has_exact_coefficients(&self) -> bool {
        self.regions
            .iter()
            .flat_map(|r| &r.unsafe_outputs)
            .flat_map(|c| &c.atoms)
            .all(Atom::is_exact_in_f64)
    }

    /// Counts for `beacons inspect --spec`.
    pub fn summary(&self) -> SpecSummary {
        let mut input_ranges: Vec<InputRange> = (0..self.num_inputs)
            .map(|_| InputRange {
                lower: f64::INFINITY,
                upper: f64::NEG_INFINITY,
            })
            .collect();
        for r in &self.regions {
            for (i, range) in input_ranges.iter_mut().enumerate() {
                if let (Some(lo), Some(hi)) = (r.input.lower.get(i), r.input.upper.get(i)) {
                    range.lower = range.lower.min(*lo);
                    range.upper = range.upper.max(*hi);
                }
            }
        }
        SpecSummary {
            num_inputs: self.num_inputs,
            num_outputs: self.num_outputs,
            num_regions: self.regions.len(),
            regions: self
                .regions
                .iter()
                .map(|r| RegionSummary {
                    disjuncts: r.unsafe_outputs.len(),
                    atoms: r.unsafe_outputs.iter().map(|c| c.atoms.len()).sum(),
                })
                .collect(),
            exact_coefficients: self.has_exact_coefficients(),
            input_ranges,
        }
    }
}

/// What `beacons inspect --spec` shows.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SpecSummary {
    pub num_inputs: usize,
    pub num_outputs: usize,
    /// Number of input boxes (one region per distinct box).
    pub num_regions: usize,
    pub regions: Vec<RegionSummary>,
    /// Whether every output coefficient is exactly representable in `f64`.
    pub exact_coefficients: bool,
    /// Per input: the smallest lower and largest upper `f64` bound over all boxes.
    pub input_ranges: Vec<InputRange>,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct RegionSummary {
    /// Conjunctions in the region's unsafe DNF.
    pub disjuncts: usize,
    /// Atoms summed over those conjunctions.
    pub atoms: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct InputRange {
    pub lower: f64,
    pub upper: f64,
}

impl fmt::Display for Atom {
    /// `Y_1 - Y_0 <= 0`, `2*Y_0 + 0.5*Y_3 <= 1.25`, with exact numbers.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (j, c) in self.coeffs_exact.iter().enumerate() {
            if c.is_zero() {
                continue;
            }
            let sign = if c.is_negative() { "-" } else { "+" };
            match (first, sign) {
                (true, "-") => write!(f, "-")?,
                (true, _) => {}
                (false, s) => write!(f, " {s} ")?,
            }
            let magnitude = c.abs();
            if magnitude == BigRational::from_integer(1.into()) {
                write!(f, "Y_{j}")?;
            } else {
                write!(f, "{}*Y_{j}", rational::to_decimal(&magnitude))?;
            }
            first = false;
        }
        if first {
            write!(f, "0")?;
        }
        write!(f, " <= {}", rational::to_decimal(&self.rhs_exact))
    }
}

impl fmt::Display for Spec {
    /// A readable, exact listing: every box and every conjunction of every region.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
        writeln!(
            f,
            "{}, {}, {}",
            plural(self.num_inputs, "input"),
            plural(self.num_outputs, "output"),
            plural(self.regions.len(), "region")
        )?;
        for (k, r) in self.regions.iter().enumerate() {
            writeln!(f, "region {}:", k + 1)?;
            for (i, (lo, hi)) in r
                .input
                .lower_exact
                .iter()
                .zip(&r.input.upper_exact)
                .enumerate()
            {
                writeln!(
                    f,
                    "  X_{i} in [{}, {}]",
                    rational::to_decimal(lo),
                    rational::to_decimal(hi)
                )?;
            }
            writeln!(
                f,
                "  unsafe if any of {}:",
                plural(r.unsafe_outputs.len(), "conjunction")
            )?;
            for c in &r.unsafe_outputs {
                if c.atoms.is_empty() {
                    writeln!(f, "    true")?;
                } else {
                    let atoms: Vec<String> = c.atoms.iter().map(|a| a.to_string()).collect();
                    writeln!(f, "    {}", atoms.join(" and "))?;
                }
            }
        }
        Ok(())
    }
}

impl fmt::Display for SpecSummary {
    /// A few indented lines for `beacons inspect`; long lists are shortened.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 10;
        writeln!(f, "  inputs      {}", self.num_inputs)?;
        writeln!(f, "  outputs     {}", self.num_outputs)?;
        writeln!(f, "  input boxes {}", self.num_regions)?;
        for (k, r) in self.regions.iter().enumerate().take(SHOWN) {
            writeln!(
                f,
                "  box {:<7} unsafe if any of {} conjunction{} ({} atoms)",
                k + 1,
                r.disjuncts,
                if r.disjuncts == 1 { "" } else { "s" },
                r.atoms
            )?;
        }
        if self.regions.len() > SHOWN {
            writeln!(f, "  …           {} more boxes", self.regions.len() - SHOWN)?;
        }
        if self.input_ranges.len() <= SHOWN {
            for (i, r) in self.input_ranges.iter().enumerate() {
                writeln!(f, "  X_{i:<9} in [{}, {}]", r.lower, r.upper)?;
            }
        } else {
            let lo = self
                .input_ranges
                .iter()
                .map(|r| r.lower)
                .fold(f64::INFINITY, f64::min);
            let hi = self
                .input_ranges
                .iter()
                .map(|r| r.upper)
                .fold(f64::NEG_INFINITY, f64::max);
            writeln!(
                f,
                "  X_0..X_{}  within [{lo}, {hi}]",
                self.input_ranges.len() - 1
            )?;
        }
        if !self.exact_coefficients {
            writeln!(
                f,
                "  note        some output coefficients are not exact in f64"
            )?;
        }
        Ok(())
    }
}
