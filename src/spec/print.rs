//! Writing a [`Spec`] back as VNN-LIB text that parses to the same `Spec`.
//!
//! Used by the round-trip tests and by anything that generates properties (the stress
//! generators, shrinking a counterexample's region). Numbers are written exactly: as decimals
//! when they have a finite decimal expansion, as `(/ p q)` otherwise. A spec with one region is
//! written in the common VNN-COMP shape (one assert per bound, then the output DNF); several
//! regions become one `(assert (or (and <box> <output DNF>) ...))`. A region without any
//! conjunction is empty and is written as an empty `(or)`, which the parser drops again.

use std::fmt::Write;

use num_rational::BigRational;
use num_traits::Zero;

use super::model::{Conjunction, InputBox, Spec};
use super::rational;

fn number(q: &BigRational) -> String {
    match rational::decimal_digits(q) {
        Some(s) => s,
        None => format!("(/ {} {})", q.numer(), q.denom()),
    }
}

fn conjunction(c: &Conjunction) -> String {
    let mut out = String::from("(and");
    for a in &c.atoms {
        let terms: Vec<String> = a
            .coeffs_exact
            .iter()
            .enumerate()
            .filter(|(_, c)| !c.is_zero())
            .map(|(j, c)| format!("(* {} Y_{j})", number(c)))
            .collect();
        let lhs = match terms.len() {
            0 => "0".to_string(),
            1 => terms[0].clone(),
            _ => format!("(+ {})", terms.join(" ")),
        };
        let _ = write!(out, " (<= {lhs} {})", number(&a.rhs_exact));
    }
    out.push(')');
    out
}

fn dnf(conjunctions: &[Conjunction]) -> String {
    let parts: Vec<String> = conjunctions.iter().map(conjunction).collect();
    format!("(or {})", parts.join(" "))
}

fn box_atoms(b: &InputBox) -> Vec<String> {
    let mut out = Vec::new();
    for (i, (lo, hi)) in b.lower_exact.iter().zip(&b.upper_exact).enumerate() {
        out.push(format!("(>= X_{i} {})", number(lo)));
        out.push(format!("(<= X_{i} {})", number(hi)));
    }
    out
}

impl Spec {
    /// This property as VNN-LIB text; `parse` of the result gives back an equal `Spec`.
    pub fn to_vnnlib(&self) -> String {
        let mut out = String::from("; written by beacons\n");
        for i in 0..self.num_inputs {
            let _ = writeln!(out, "(declare-const X_{i} Real)");
        }
        for j in 0..self.num_outputs {
            let _ = writeln!(out, "(declare-const Y_{j} Real)");
        }
        match self.regions.as_slice() {
            [] => {
                // No region: any box with a false output formula says the same.
                for i in 0..self.num_inputs {
                    let _ = writeln!(out, "(assert (>= X_{i} 0))\n(assert (<= X_{i} 0))");
                }
                out.push_str("(assert false)\n");
            }
            [region] => {
                for atom in box_atoms(&region.input) {
                    let _ = writeln!(out, "(assert {atom})");
                }
                let _ = writeln!(out, "(assert {})", dnf(&region.unsafe_outputs));
            }
            regions => {
                out.push_str("(assert (or\n");
                for r in regions {
                    let _ = writeln!(
                        out,
                        "  (and {} {})",
                        box_atoms(&r.input).join(" "),
                        dnf(&r.unsafe_outputs)
                    );
                }
                out.push_str("))\n");
            }
        }
        out
    }
}
