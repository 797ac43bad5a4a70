//! Proof certificates of `holds` verdicts: the format, the writer's helpers, and (in
//! [`check`]) the independent checker behind `beacons check-cert`.
//!
//! In: what [`verify`](crate::verify::verify) learned while proving a property — per region of
//! the [`Spec`](crate::spec::Spec), the boxes (leaves) on which it closed every unsafe
//! disjunct, with, per disjunct, the atom whose margin `a·Y − b` it bounded below by a
//! positive number. Out: a versioned, deterministic JSON document ([`Certificate`]).
//!
//! A certificate claims: the leaves of each region cover the region's (outward-rounded `f64`)
//! input box, and on every leaf, for every disjunct `d`, `a·N(x) − b ≥ bound > 0` for all `x`
//! in the leaf, where `a·Y <= b` is atom `claims[d].atom` of disjunct `d`. Together these say
//! no input of the region reaches the unsafe outputs: the property holds. The claimed bound
//! is half of the engine's (still positive), so that the checker's simpler relaxation, with a
//! few bisections, can reproduce it; it is a statement, and a false one is rejected.
//!
//! Every `f64` (box ends, bounds) is written as a decimal string in Rust's shortest
//! round-trip form (`"0.1"`, `"-3e-300"`), which parses back to exactly the same `f64`
//! independently of the JSON library's float parsing. Keys are in a fixed order and leaves in
//! the order they were proved; nothing in the content depends on time.

pub mod check;
pub mod cover;
pub mod net;

use std::path::Path;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

use crate::error::{Error, Location, Result};

/// The format version written and accepted.
pub const VERSION: u32 = 1;
/// The `kind` field of holds certificates.
pub const KIND: &str = "beacons-holds";
/// The share of the engine's margin bound a certificate claims (see the module docs).
pub const CLAIM_SHARE: f64 = 0.5;

/// An `f64` written as its shortest round-trip decimal string.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Num(pub f64);

impl Serialize for Num {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{:?}", self.0))
    }
}

impl<'de> Deserialize<'de> for Num {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Num, D::Error> {
        let s = String::deserialize(d)?;
        s.parse::<f64>()
            .map(Num)
            .map_err(|_| serde::de::Error::custom(format!("`{s}` is not a number")))
    }
}

fn nums(v: &[f64]) -> Vec<Num> {
    v.iter().copied().map(Num).collect()
}

/// A certificate of a `holds` verdict.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Certificate {
    pub version: u32,
    pub kind: String,
    /// The beacons version that wrote it.
    pub tool: String,
    /// SHA-256 (hex) of the model file's bytes (empty until [`Certificate::stamp`]).
    pub model_sha256: String,
    /// SHA-256 (hex) of the property file's bytes (empty until [`Certificate::stamp`]).
    pub spec_sha256: String,
    /// One entry per region of the property, in order.
    pub regions: Vec<RegionCert>,
}

/// The leaves of one region.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RegionCert {
    /// The region's `f64` input box, which the leaves must cover.
    pub lower: Vec<Num>,
    pub upper: Vec<Num>,
    /// Empty when the region is vacuous (no disjunct, or an empty exact box).
    pub leaves: Vec<Leaf>,
}

/// A sub-box on which every disjunct is refuted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Leaf {
    pub lo: Vec<Num>,
    pub hi: Vec<Num>,
    /// The bound method that proved it: `crown` (the whole region) or `bab-crown`.
    pub method: String,
    /// One claim per disjunct, in order.
    pub claims: Vec<Claim>,
}

/// On a leaf, atom `atom` of a disjunct has margin `a·Y − b ≥ bound` (> 0); or, when
/// `weights` is present (one non-negative weight per atom of the disjunct), the weighted sum
/// of the disjunct's margins `Σ_j w_j (a_j·Y − b_j) ≥ bound` (> 0), so that at every input
/// some atom's margin is positive (`atom` then names the atom of largest weight).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Claim {
    pub atom: usize,
    pub bound: Num,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<Vec<Num>>,
}

impl Leaf {
    /// The leaf `[lo, hi]` proved by `method` with the engine's margin lower bounds
    /// `margins[d][a]`, claiming for each disjunct its best atom; `None` when some disjunct
    /// has no positive margin (not proved).
    pub fn proved(lo: &[f64], hi: &[f64], method: &str, margins: &[Vec<f64>]) -> Option<Leaf> {
        Leaf::proved_joint(lo, hi, method, margins, &[])
    }

    /// [`Leaf::proved`] where a disjunct `d` with `joint[d] = Some(weights)` has one more
    /// margin after its atoms' (`margins[d]` is one longer): the bound of that weighted sum.
    pub fn proved_joint(
        lo: &[f64],
        hi: &[f64],
        method: &str,
        margins: &[Vec<f64>],
        joint: &[Option<Vec<f64>>],
    ) -> Option<Leaf> {
        let mut claims = Vec::with_capacity(margins.len());
        for (d, ms) in margins.iter().enumerate() {
            let (atom, m) = ms
                .iter()
                .copied()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(&b.1))?;
            let weights = joint
                .get(d)
                .and_then(|w| w.as_ref())
                .filter(|w| atom == w.len() && ms.len() == w.len() + 1);
            if m.is_nan() || m <= 0.0 {
                return None;
            }
            // Half of a positive normal number is positive and exact; below that, keep it.
            let claim = if m * CLAIM_SHARE > 0.0 {
                m * CLAIM_SHARE
            } else {
                m
            };
            let (atom, weights) = match weights {
                Some(w) => {
                    let top = (0..w.len())
                        .max_by(|&a, &b| w[a].total_cmp(&w[b]))
                        .unwrap_or(0);
                    (top, Some(nums(w)))
                }
                None => (atom, None),
            };
            claims.push(Claim {
                atom,
                bound: Num(claim),
                weights,
            });
        }
        Some(Leaf {
            lo: nums(lo),
            hi: nums(hi),
            method: method.into(),
            claims,
        })
    }
}

impl RegionCert {
    pub fn new(lower: &[f64], upper: &[f64], leaves: Vec<Leaf>) -> RegionCert {
        RegionCert {
            lower: nums(lower),
            upper: nums(upper),
            leaves,
        }
    }
}

/// SHA-256 of `bytes`, in lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Certificate {
    /// A certificate for `regions`, not yet bound to files (see [`Certificate::stamp`]).
    pub fn new(regions: Vec<RegionCert>) -> Certificate {
        Certificate {
            version: VERSION,
            kind: KIND.into(),
            tool: format!("beacons {}", env!("CARGO_PKG_VERSION")),
            model_sha256: String::new(),
            spec_sha256: String::new(),
            regions,
        }
    }

    /// Binds the certificate to the model and property files it was made from.
    pub fn stamp(&mut self, model_bytes: &[u8], spec_bytes: &[u8]) {
        self.model_sha256 = sha256_hex(model_bytes);
        self.spec_sha256 = sha256_hex(spec_bytes);
    }

    /// Leaves over all regions.
    pub fn leaf_count(&self) -> usize {
        self.regions.iter().map(|r| r.leaves.len()).sum()
    }

    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string(self)
            .map(|s| s + "\n")
            .map_err(|e| Error::Invalid(e.to_string()))
    }

    pub fn write(&self, path: &Path) -> Result<()> {
        std::fs::write(path, self.to_json()?).map_err(|e| Error::io(path, e))
    }

    /// Parses a certificate; a malformed one is a parse error with line and column.
    pub fn parse(text: &str, path: &Path) -> Result<Certificate> {
        serde_json::from_str(text).map_err(|e| {
            Error::parse(
                path,
                Location {
                    line: e.line(),
                    column: e.column(),
                },
                format!("not a beacons certificate: {e}"),
            )
        })
    }

    pub fn read(path: &Path) -> Result<Certificate> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Certificate::parse(&text, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_round_trip_exactly() {
        let vals = [
            0.1,
            -3e-300,
            5e-324,
            1.0 / 3.0,
            f64::MAX,
            -0.0,
            12345.678901234567,
        ];
        let leaf = Leaf {
            lo: nums(&vals),
            hi: nums(&vals),
            method: "crown".into(),
            claims: vec![Claim {
                atom: 0,
                bound: Num(0.1 + 0.2),
                weights: None,
            }],
        };
        let text = serde_json::to_string(&leaf).unwrap();
        let back: Leaf = serde_json::from_str(&text).unwrap();
        for (a, b) in back.lo.iter().zip(&vals) {
            assert_eq!(a.0.to_bits(), b.to_bits());
        }
        assert_eq!(back, leaf);
    }

    #[test]
    fn a_leaf_claims_half_of_the_best_positive_margin() {
        let l = Leaf::proved(&[0.0], &[1.0], "crown", &[vec![-1.0, 0.5], vec![2.0]]).unwrap();
        assert_eq!(
            l.claims[0],
            Claim {
                atom: 1,
                bound: Num(0.25),
                weights: None,
            }
        );
        assert_eq!(
            l.claims[1],
            Claim {
                atom: 0,
                bound: Num(1.0),
                weights: None,
            }
        );
        assert!(Leaf::proved(&[0.0], &[1.0], "crown", &[vec![0.0]]).is_none());
        assert!(Leaf::proved(&[0.0], &[1.0], "crown", &[vec![]]).is_none());
    }
}
