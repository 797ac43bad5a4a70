//! Certificates of ACAS Xu `holds` verdicts and the independent checker.
//!
//! - A deterministic subset of the instances whose `resolved` answer in `acasxu/expected.csv`
//!   is `holds`: verify, take the certificate, and the checker accepts it. With
//!   `BEACONS_CERT_FULL=1`, every such instance (instances verify cannot decide within the
//!   timeout are listed, they have no certificate).
//! - A property test mutates real certificates (a leaf removed, a side shrunk, even by one
//!   ulp, a claimed bound nudged above the margin the network actually reaches or to ≤ 0, a
//!   leaf moved outside the region, a hash changed): every mutation is rejected.
//! - False properties: a certificate re-stamped for a violated variant of its property, and
//!   a hand-made certificate for a violated instance, are rejected.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use beacons::cert::check::{check, Decision};
use beacons::cert::{sha256_hex, Certificate, Claim, Leaf, Num, RegionCert};
use beacons::ir::passes::{canonicalize, Level};
use beacons::ir::Graph;
use beacons::spec::Spec;
use beacons::verify::{verify, Options, Verdict};
use proptest::prelude::*;

/// Holds instances run on every test run: several properties, small and large trees.
const SUBSET: &[(&str, &str)] = &[
    ("1_1", "prop_1"),
    ("1_5", "prop_1"),
    ("4_7", "prop_1"),
    ("1_1", "prop_2"),
    ("1_2", "prop_3"),
    ("2_1", "prop_3"),
    ("1_1", "prop_3"),
    ("2_1", "prop_4"),
    ("1_1", "prop_4"),
    ("3_3", "prop_9"),
    ("4_5", "prop_10"),
];

struct Instance {
    graph: Graph,
    spec: Spec,
    model_sha: String,
    spec_sha: String,
}

fn load(onnx: &Path, vnnlib: &Path) -> Instance {
    let mut graph = beacons::ir::load_model(onnx).expect("model").graph;
    canonicalize(&mut graph, Level::Exact);
    let spec = beacons::spec::load(vnnlib).expect("property");
    Instance {
        graph,
        spec,
        model_sha: sha256_hex(&std::fs::read(onnx).expect("model bytes")),
        spec_sha: sha256_hex(&std::fs::read(vnnlib).expect("property bytes")),
    }
}

fn paths(dir: &Path, net: &str, prop: &str) -> (PathBuf, PathBuf) {
    (
        dir.join(format!("onnx/ACASXU_run2a_{net}_batch_2000.onnx")),
        dir.join(format!("vnnlib/{prop}.vnnlib")),
    )
}

/// The stamped certificate of a holds verdict (`None` when verify does not say holds).
fn certify(inst: &Instance, timeout: u64) -> (Verdict, Option<Certificate>) {
    let opts = Options {
        timeout: Duration::from_secs(timeout),
        ..Options::default()
    };
    let out = verify(&inst.graph, &inst.spec, &opts).expect("verify");
    let cert = out.certificate.map(|mut c| {
        c.model_sha256 = inst.model_sha.clone();
        c.spec_sha256 = inst.spec_sha.clone();
        c
    });
    (out.verdict, cert)
}

fn run_check(inst: &Instance, cert: &Certificate) -> Option<Decision> {
    check(
        &inst.graph,
        &inst.spec,
        cert,
        &inst.model_sha,
        &inst.spec_sha,
        &|_| {},
    )
    .ok()
}

fn holds_instances(dir: &Path) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(dir.join("expected.csv")).expect("expected.csv");
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f.get(3) == Some(&"holds")).then(|| {
                let net = f[0]
                    .trim_start_matches("onnx/ACASXU_run2a_")
                    .trim_end_matches("_batch_2000.onnx");
                let prop = f[1]
                    .trim_start_matches("vnnlib/")
                    .trim_end_matches(".vnnlib");
                (net.to_string(), prop.to_string())
            })
        })
        .collect()
}

#[test]
fn acasxu_holds_certificates_are_accepted() {
    let Some(bench) = common::benchmarks("cert_acasxu") else {
        return;
    };
    let dir = bench.join("acasxu");
    let holds = holds_instances(&dir);
    let full = std::env::var_os("BEACONS_CERT_FULL").is_some();
    let list: Vec<(String, String)> = if full {
        holds.clone()
    } else {
        SUBSET
            .iter()
            .map(|(n, p)| (n.to_string(), p.to_string()))
            .filter(|i| holds.contains(i))
            .collect()
    };
    assert!(
        full || list.len() == SUBSET.len(),
        "the subset lost its holds instances"
    );
    let mut undecided = Vec::new();
    let (mut checked, mut leaves, mut secs) = (0, 0, 0.0);
    for (net, prop) in &list {
        let (onnx, vnnlib) = paths(&dir, net, prop);
        let inst = load(&onnx, &vnnlib);
        let (verdict, cert) = certify(&inst, if full { 120 } else { 60 });
        let Some(cert) = cert else {
            assert!(full, "{net} {prop}: {} instead of holds", verdict.name());
            undecided.push(format!("{net} {prop}: {}", verdict.name()));
            continue;
        };
        // Through the file format, as check-cert reads it.
        let text = cert.to_json().expect("json");
        let cert = Certificate::parse(&text, Path::new("cert.json")).expect("parses back");
        let t = Instant::now();
        let d = run_check(&inst, &cert).expect("no input error");
        let s = t.elapsed().as_secs_f64();
        eprintln!(
            "{net} {prop}: {} leaves, checked in {s:.3} s: {d:?}",
            cert.leaf_count()
        );
        assert!(d.accepted(), "{net} {prop}: {d:?}");
        checked += 1;
        leaves += cert.leaf_count();
        secs += s;
    }
    eprintln!(
        "{checked} certificates accepted, {leaves} leaves, {secs:.1} s of checking; \
         undecided by verify: {undecided:?}"
    );
}

/// The base certificates of the mutation test (verified once).
fn bases() -> &'static Option<Vec<(Instance, Certificate)>> {
    static BASES: OnceLock<Option<Vec<(Instance, Certificate)>>> = OnceLock::new();
    BASES.get_or_init(|| {
        let bench = common::benchmarks("cert_acasxu mutations")?;
        let dir = bench.join("acasxu");
        Some(
            [("1_5", "prop_1"), ("1_2", "prop_3")]
                .iter()
                .map(|(n, p)| {
                    let (onnx, vnnlib) = paths(&dir, n, p);
                    let inst = load(&onnx, &vnnlib);
                    let cert = certify(&inst, 60).1.expect("holds");
                    assert!(run_check(&inst, &cert).expect("checks").accepted());
                    (inst, cert)
                })
                .collect(),
        )
    })
}

#[derive(Clone, Debug)]
enum Mutation {
    RemoveLeaf(usize),
    /// Move one face of a leaf inwards by `frac` of its width (0: by one ulp).
    Shrink {
        leaf: usize,
        side: usize,
        upper: bool,
        frac: f64,
    },
    /// Claim more than the margin the network reaches at a point of the leaf.
    NudgeAbove {
        leaf: usize,
        disjunct: usize,
    },
    /// A claimed bound of 0 or below.
    NonPositive {
        leaf: usize,
        disjunct: usize,
        neg: bool,
    },
    /// A leaf reaching outside the region.
    Outside {
        leaf: usize,
        side: usize,
    },
    /// A flipped hex digit of the model's hash.
    ModelHash(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::RemoveLeaf),
        (
            any::<usize>(),
            0..5usize,
            any::<bool>(),
            prop_oneof![Just(0.0), 0.001..0.5f64]
        )
            .prop_map(|(leaf, side, upper, frac)| Mutation::Shrink {
                leaf,
                side,
                upper,
                frac
            }),
        (any::<usize>(), any::<usize>())
            .prop_map(|(leaf, disjunct)| Mutation::NudgeAbove { leaf, disjunct }),
        (any::<usize>(), any::<usize>(), any::<bool>()).prop_map(|(leaf, disjunct, neg)| {
            Mutation::NonPositive {
                leaf,
                disjunct,
                neg,
            }
        }),
        (any::<usize>(), 0..5usize).prop_map(|(leaf, side)| Mutation::Outside { leaf, side }),
        (0..64usize).prop_map(Mutation::ModelHash),
    ]
}

/// The least margin of atom `atom` of disjunct `d` at the centre and corners of a leaf,
/// evaluated in `f64` (an upper bound of the true minimum up to rounding, ~1e-12 here).
fn sampled_margin(inst: &Instance, leaf: &Leaf, d: usize, atom: usize) -> f64 {
    let n = leaf.lo.len();
    let mut pts = Vec::new();
    for mask in 0..(1usize << n) {
        pts.extend((0..n).map(|i| {
            if mask >> i & 1 == 1 {
                leaf.hi[i].0
            } else {
                leaf.lo[i].0
            }
        }));
    }
    pts.extend((0..n).map(|i| 0.5 * (leaf.lo[i].0 + leaf.hi[i].0)));
    let rows = pts.len() / n;
    let x = ndarray::Array2::from_shape_vec((rows, n), pts).expect("points");
    let y = beacons::eval::forward_f64(&inst.graph, x.view()).expect("eval");
    let atoms = &inst.spec.regions[0].unsafe_outputs[d].atoms;
    let margin = |r: ndarray::ArrayView1<f64>, a: &beacons::spec::Atom| {
        r.iter().zip(&a.coeffs).map(|(v, c)| v * c).sum::<f64>() - a.rhs
    };
    // A weighted claim bounds the weighted sum of the disjunct's margins, not one atom's.
    let weights = leaf.claims[d].weights.as_ref();
    y.rows()
        .into_iter()
        .map(|r| match weights {
            Some(w) => atoms.iter().zip(w).map(|(a, w)| w.0 * margin(r, a)).sum(),
            None => margin(r, &atoms[atom]),
        })
        .fold(f64::INFINITY, f64::min)
}

/// Applies `m`; `None` when it does not apply (e.g. a side of zero width).
fn mutate(inst: &Instance, cert: &Certificate, m: &Mutation) -> Option<Certificate> {
    let mut c = cert.clone();
    let region = &mut c.regions[0];
    let n = region.leaves.len();
    match *m {
        Mutation::RemoveLeaf(k) => {
            region.leaves.remove(k % n);
        }
        Mutation::Shrink {
            leaf,
            side,
            upper,
            frac,
        } => {
            let l = &mut region.leaves[leaf % n];
            let (lo, hi) = (l.lo[side].0, l.hi[side].0);
            if lo >= hi {
                return None;
            }
            let w = hi - lo;
            if upper {
                l.hi[side] = Num(if frac == 0.0 {
                    hi.next_down()
                } else {
                    hi - frac * w
                });
            } else {
                l.lo[side] = Num(if frac == 0.0 {
                    lo.next_up()
                } else {
                    lo + frac * w
                });
            }
        }
        Mutation::NudgeAbove { leaf, disjunct } => {
            let l = &mut region.leaves[leaf % n];
            let d = disjunct % l.claims.len();
            let m = sampled_margin(inst, l, d, l.claims[d].atom);
            l.claims[d].bound = Num(m + 1e-6 * (1.0 + m.abs()));
        }
        Mutation::NonPositive {
            leaf,
            disjunct,
            neg,
        } => {
            let l = &mut region.leaves[leaf % n];
            let d = disjunct % l.claims.len();
            l.claims[d].bound = Num(if neg { -l.claims[d].bound.0 } else { 0.0 });
        }
        Mutation::Outside { leaf, side } => {
            let up = region.upper[side].0;
            region.leaves[leaf % n].hi[side] = Num(up + 0.25);
        }
        Mutation::ModelHash(i) => {
            let mut b = c.model_sha256.into_bytes();
            b[i] = if b[i] == b'0' { b'1' } else { b'0' };
            c.model_sha256 = String::from_utf8(b).expect("hex");
        }
    }
    Some(c)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn every_mutated_certificate_is_rejected(which in 0..2usize, m in mutation()) {
        let Some(bases) = bases() else { return Ok(()) };
        let (inst, cert) = &bases[which];
        let Some(bad) = mutate(inst, cert, &m) else { return Ok(()) };
        let d = run_check(inst, &bad);
        prop_assert!(
            !d.as_ref().is_some_and(Decision::accepted),
            "accepted after {m:?}: {d:?}"
        );
    }
}

#[test]
fn a_certificate_restamped_for_a_violated_property_is_rejected() {
    let Some(bases) = bases() else { return };
    let (inst, cert) = &bases[0];
    // prop_1's unsafe set made reachable: Y_0 >= -1000 instead of Y_0 >= 3.99…
    let dir = common::benchmarks("cert_acasxu")
        .expect("present")
        .join("acasxu");
    let text = std::fs::read_to_string(paths(&dir, "1_5", "prop_1").1).expect("prop_1");
    let line = "(assert (>= Y_0 3.991125645861615))";
    assert!(text.contains(line), "prop_1 changed");
    let body = text.replace(line, "(assert (>= Y_0 -1000.0))");
    let spec = beacons::spec::parse(&body, Path::new("weak.vnnlib")).expect("parses");
    assert_eq!(spec.regions[0].input, inst.spec.regions[0].input);
    let spec_sha = sha256_hex(body.as_bytes());
    let mut forged = cert.clone();
    forged.spec_sha256 = spec_sha.clone();
    let d = check(
        &inst.graph,
        &spec,
        &forged,
        &inst.model_sha,
        &spec_sha,
        &|_| {},
    )
    .expect("runs");
    match d {
        Decision::Rejected(r) => assert!(r.leaf.is_some(), "{r}"),
        Decision::Accepted(c) => panic!("a violated property was certified: {c:?}"),
    }
}

#[test]
fn a_handmade_certificate_for_a_violated_instance_is_rejected() {
    let Some(bench) = common::benchmarks("cert_acasxu violated") else {
        return;
    };
    let dir = bench.join("acasxu");
    let (onnx, vnnlib) = paths(&dir, "2_1", "prop_2");
    let inst = load(&onnx, &vnnlib);
    let opts = Options {
        timeout: Duration::from_secs(60),
        ..Options::default()
    };
    let out = verify(&inst.graph, &inst.spec, &opts).expect("verify");
    assert_eq!(out.verdict, Verdict::Violated);
    assert!(out.certificate.is_none());
    // Sixteen leaves tiling the region, each claiming a tiny positive margin for every atom
    // choice in turn: none can be true at the counterexample.
    let r = &inst.spec.regions[0];
    for atom in 0..r.unsafe_outputs[0].atoms.len() {
        let mut leaves = Vec::new();
        for mask in 0..16usize {
            let (mut lo, mut hi) = (r.input.lower.clone(), r.input.upper.clone());
            for i in 0..4 {
                let mid = lo[i] + 0.5 * (hi[i] - lo[i]);
                if mask >> i & 1 == 1 {
                    lo[i] = mid;
                } else {
                    hi[i] = mid;
                }
            }
            leaves.push(Leaf {
                lo: lo.into_iter().map(Num).collect(),
                hi: hi.into_iter().map(Num).collect(),
                method: "crown".into(),
                claims: r
                    .unsafe_outputs
                    .iter()
                    .map(|_| Claim {
                        atom,
                        bound: Num(1e-12),
                        weights: None,
                    })
                    .collect(),
            });
        }
        let mut cert = Certificate::new(vec![RegionCert::new(
            &r.input.lower,
            &r.input.upper,
            leaves,
        )]);
        cert.model_sha256 = inst.model_sha.clone();
        cert.spec_sha256 = inst.spec_sha.clone();
        let d = run_check(&inst, &cert).expect("runs");
        assert!(!d.accepted(), "atom {atom}: {d:?}");
    }
}

#[test]
fn the_subset_is_holds_in_expected_csv() {
    let Some(bench) = common::benchmarks("cert_acasxu expected") else {
        return;
    };
    let holds: HashMap<(String, String), ()> = holds_instances(&bench.join("acasxu"))
        .into_iter()
        .map(|k| (k, ()))
        .collect();
    for (n, p) in SUBSET {
        assert!(
            holds.contains_key(&(n.to_string(), p.to_string())),
            "{n} {p}"
        );
    }
}
