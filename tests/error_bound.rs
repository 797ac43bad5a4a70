//! `errbound` end to end: known answers (ReLU networks that are exactly the piecewise-linear
//! interpolant of a smooth function, whose worst error is known in closed form per segment),
//! soundness at random points (network exact, reference enclosed), the shipped trained
//! surrogate, and certificates (accepted, and mutated ones rejected).

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use beacons::errbound::bab::{certify, Options, Outcome};
use beacons::errbound::cert::{self, Certificate};
use beacons::errbound::{self, reference, Reference};
use beacons::ir::passes::{canonicalize, Level};
use beacons::ir::{load_model, Graph, Op};
use ndarray::{Array1, Array2};
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// A smooth 1-D function with a closed-form point of largest interpolation error per segment.
#[derive(Clone, Copy, Debug)]
enum Smooth {
    /// `exp(-a x)`, convex.
    Exp { a: f64 },
    /// `hill(x, emax, ec50, 1) = emax x / (ec50 + x)`, concave for x ≥ 0.
    Hill { emax: f64, ec50: f64 },
}

impl Smooth {
    fn f64(self, x: f64) -> f64 {
        match self {
            Smooth::Exp { a } => (-a * x).exp(),
            Smooth::Hill { emax, ec50 } => emax * x / (ec50 + x),
        }
    }

    /// The expression over the variable `v` (all constants are dyadic, so exact).
    fn expr(self, v: &str) -> String {
        match self {
            Smooth::Exp { a } => format!("exp(-{a} * {v})"),
            Smooth::Hill { emax, ec50 } => format!("hill({v}, {emax}, {ec50}, 1)"),
        }
    }

    /// Where the derivative equals `slope` (the extremum of line − f on a segment).
    fn tangent_point(self, slope: f64) -> f64 {
        match self {
            Smooth::Exp { a } => -(-slope / a).ln() / a,
            Smooth::Hill { emax, ec50 } => (emax * ec50 / slope).sqrt() - ec50,
        }
    }
}

/// Hidden units `relu(x_dim − t_k)` and their output weights: on `[t_0, t_n]` the sum
/// `f(t_0) + Σ c_k relu(x − t_k)` is the interpolant of `f` on the knots.
struct Pl {
    dim: usize,
    knots: Vec<f64>,
    coef: Vec<f64>,
    offset: f64,
    f: Smooth,
}

impl Pl {
    fn new(f: Smooth, dim: usize, knots: Vec<f64>) -> Pl {
        let slopes: Vec<f64> = knots
            .windows(2)
            .map(|w| (f.f64(w[1]) - f.f64(w[0])) / (w[1] - w[0]))
            .collect();
        let mut coef = vec![slopes[0]];
        for k in 1..slopes.len() {
            coef.push(slopes[k] - slopes[k - 1]);
        }
        Pl {
            dim,
            offset: f.f64(knots[0]),
            knots,
            coef,
            f,
        }
    }

    /// The point of largest error on each segment (closed form, clamped into the segment)
    /// and the network's slope there.
    fn tangent_points(&self) -> Vec<f64> {
        let mut slope = 0.0;
        (0..self.coef.len())
            .map(|k| {
                slope += self.coef[k];
                self.f
                    .tangent_point(slope)
                    .clamp(self.knots[k], self.knots[k + 1])
            })
            .collect()
    }
}

/// The network `Σ_parts PL_part(x_dim)` with input `[1, d]`.
fn network(parts: &[Pl], d: usize) -> Graph {
    let hidden: usize = parts.iter().map(|p| p.coef.len()).sum();
    let mut w1 = Array2::zeros((hidden, d));
    let mut b1 = Array1::zeros(hidden);
    let mut w2 = Array2::zeros((1, hidden));
    let mut b2 = 0.0;
    let mut h = 0;
    for p in parts {
        b2 += p.offset;
        for k in 0..p.coef.len() {
            w1[(h, p.dim)] = 1.0;
            b1[h] = -p.knots[k];
            w2[(0, h)] = p.coef[k];
            h += 1;
        }
    }
    let mut g = Graph::new();
    let x = g.add_input("x", vec![1, d]);
    let z = g
        .add_node(
            "fc1",
            Op::Linear {
                weight: w1,
                bias: Some(b1),
            },
            vec![x],
            "z",
        )
        .unwrap();
    let a = g.add_node("relu", Op::Relu, vec![z], "a").unwrap();
    let y = g
        .add_node(
            "fc2",
            Op::Linear {
                weight: w2,
                bias: Some(Array1::from_vec(vec![b2])),
            },
            vec![a],
            "y",
        )
        .unwrap();
    g.add_output(y);
    g
}

fn reference_of(parts: &[Pl], names: &[&str]) -> Reference {
    let expr: Vec<String> = parts.iter().map(|p| p.f.expr(names[p.dim])).collect();
    let mut text = format!(
        "name = \"known\"\ninputs = [{}]\noutput = 0\nexpression = \"{}\"\n[region]\n",
        names
            .iter()
            .map(|n| format!("\"{n}\""))
            .collect::<Vec<_>>()
            .join(", "),
        expr.join(" + ")
    );
    for (d, n) in names.iter().enumerate() {
        let p = parts.iter().find(|p| p.dim == d).unwrap();
        text += &format!(
            "{n} = [{:?}, {:?}]\n",
            p.knots[0],
            p.knots[p.knots.len() - 1]
        );
    }
    reference::parse(&text, Path::new("known.toml")).unwrap()
}

/// A rigorous lower bound of the true worst error: the certified error at the closed-form
/// worst point (every part's worst points combined; the parts' errors share a sign).
fn truth(g: &Graph, r: &Reference, parts: &[Pl], d: usize) -> f64 {
    let per_part: Vec<Vec<f64>> = parts.iter().map(Pl::tangent_points).collect();
    // The parts' worst points are independent: take each part's best segment by f64 error.
    let mut x = vec![0.0; d];
    for (p, pts) in parts.iter().zip(&per_part) {
        let err = |t: f64| {
            let mut v = p.offset;
            for k in 0..p.coef.len() {
                v += p.coef[k] * (t - p.knots[k]).max(0.0);
            }
            (v - p.f.f64(t)).abs()
        };
        x[p.dim] = *pts
            .iter()
            .max_by(|a, b| err(**a).total_cmp(&err(**b)))
            .unwrap();
    }
    certify(g, 0, &r.expr, &x).unwrap().0
}

fn run(g: &Graph, r: &Reference, tolerance: f64, timeout: f64, keep: bool) -> Outcome {
    errbound::check_fits(g, r, Path::new("net")).unwrap();
    errbound::run(
        g,
        r,
        &Options {
            tolerance,
            timeout: Duration::from_secs_f64(timeout),
            max_error: None,
            progress: false,
            keep_leaves: keep,
        },
    )
    .unwrap()
}

fn exp_knots(n: usize, lo: f64, hi: f64) -> Vec<f64> {
    (0..=n)
        .map(|k| lo + (hi - lo) * k as f64 / n as f64)
        .collect()
}

#[test]
fn known_answer_1d_within_5_percent() {
    let parts = [Pl::new(Smooth::Exp { a: 1.0 }, 0, exp_knots(8, 0.0, 4.0))];
    let g = network(&parts, 1);
    let r = reference_of(&parts, &["x"]);
    let t = truth(&g, &r, &parts, 1);
    let start = Instant::now();
    let o = run(&g, &r, 0.05, 60.0, false);
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "1-D exp(-x), 8 segments: truth {t:.6e} upper {:.6e} ({:+.3}%) lower {:.6e} leaves {} {secs:.2} s",
        o.upper,
        100.0 * (o.upper / t - 1.0),
        o.lower,
        o.leaves
    );
    assert!(o.upper >= t);
    assert!(o.upper <= 1.05 * t, "{} vs {t}", o.upper);
    assert!(o.lower <= t * (1.0 + 1e-12));
    assert!(secs < 60.0);
}

#[test]
fn known_answer_1d_hill_within_5_percent() {
    let f = Smooth::Hill {
        emax: 100.0,
        ec50: 4.0,
    };
    let parts = [Pl::new(f, 0, vec![0.0, 0.5, 1.5, 3.0, 6.0, 12.0, 20.0])];
    let g = network(&parts, 1);
    let r = reference_of(&parts, &["c"]);
    let t = truth(&g, &r, &parts, 1);
    let o = run(&g, &r, 0.05, 60.0, false);
    eprintln!(
        "1-D hill: truth {t:.6e} upper {:.6e} leaves {} {:.2} s",
        o.upper, o.leaves, o.seconds
    );
    assert!(o.upper >= t && o.upper <= 1.05 * t, "{} vs {t}", o.upper);
}

#[test]
fn known_answer_2d_within_5_percent() {
    let parts = [
        Pl::new(Smooth::Exp { a: 1.0 }, 0, exp_knots(6, 0.0, 3.0)),
        Pl::new(Smooth::Exp { a: 0.5 }, 1, exp_knots(5, 0.0, 5.0)),
    ];
    let g = network(&parts, 2);
    let r = reference_of(&parts, &["x", "y"]);
    let t = truth(&g, &r, &parts, 2);
    let start = Instant::now();
    let o = run(&g, &r, 0.05, 60.0, false);
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "2-D exp(-x) + exp(-y/2): truth {t:.6e} upper {:.6e} ({:+.3}%) lower {:.6e} leaves {} {secs:.2} s",
        o.upper,
        100.0 * (o.upper / t - 1.0),
        o.lower,
        o.leaves
    );
    assert!(o.upper >= t);
    assert!(o.upper <= 1.05 * t, "{} vs {t}", o.upper);
    assert!(secs < 60.0);
}

fn smooth() -> impl Strategy<Value = Smooth> {
    prop_oneof![
        (1u32..24).prop_map(|k| Smooth::Exp { a: k as f64 / 8.0 }),
        (1u32..16, 1u32..32).prop_map(|(e, c)| Smooth::Hill {
            emax: e as f64 * 8.0,
            ec50: c as f64 / 4.0
        }),
    ]
}

fn knots() -> impl Strategy<Value = Vec<f64>> {
    (0u32..16, prop::collection::vec(1u32..64, 1..7)).prop_map(|(start, steps)| {
        let mut t = vec![start as f64 / 8.0];
        for s in steps {
            let last = *t.last().unwrap();
            t.push(last + s as f64 / 16.0);
        }
        t
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// `upper` is never below the true worst error, whenever the search stops (short
    /// timeouts included), for random functions, knot sets and regions in 1-D and 2-D.
    #[test]
    fn upper_is_never_below_the_known_answer(
        f1 in smooth(), k1 in knots(), f2 in smooth(), k2 in knots(), two in any::<bool>(),
        timeout in 0.05f64..0.5,
    ) {
        // Two parts share an error sign only when both are convex or both concave.
        let same = matches!((f1, f2), (Smooth::Exp { .. }, Smooth::Exp { .. })
            | (Smooth::Hill { .. }, Smooth::Hill { .. }));
        let parts = if two && same {
            vec![Pl::new(f1, 0, k1), Pl::new(f2, 1, k2)]
        } else {
            vec![Pl::new(f1, 0, k1)]
        };
        let d = parts.len();
        let g = network(&parts, d);
        let r = reference_of(&parts, &["x", "y"][..d]);
        let t = truth(&g, &r, &parts, d);
        let o = run(&g, &r, 0.05, timeout, false);
        prop_assert!(o.upper >= t, "upper {} below the truth {t}", o.upper);
        prop_assert!(o.lower <= o.upper);
    }
}

/// `upper` ≥ |N(x) − f(x)| at random points, N exact (rationals), f enclosed.
fn check_points(g: &Graph, r: &Reference, upper: f64, n: usize, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    for _ in 0..n {
        let x: Vec<f64> = r
            .region
            .iter()
            .map(|i| (i.lo + rng.random::<f64>() * (i.hi - i.lo)).min(i.hi))
            .collect();
        let (e, _) = certify(g, r.output, &r.expr, &x).unwrap();
        assert!(e <= upper, "error {e} at {x:?} above upper {upper}");
    }
}

#[test]
fn upper_holds_at_thousands_of_random_points() {
    let parts = [
        Pl::new(Smooth::Exp { a: 1.0 }, 0, exp_knots(3, 0.0, 3.0)),
        Pl::new(Smooth::Exp { a: 2.0 }, 1, vec![0.0, 0.25, 1.0, 2.0]),
    ];
    let g = network(&parts, 2);
    let r = reference_of(&parts, &["x", "y"]);
    // A loose, early bound is the hardest test of soundness.
    for tol in [10.0, 0.05] {
        let o = run(&g, &r, tol, 20.0, false);
        check_points(&g, &r, o.upper, 2000, 7);
    }
}

fn shipped(model: &str, reference: &str) -> (Graph, Reference) {
    let root = common::root();
    let mut g = load_model(&root.join(model)).unwrap().graph;
    canonicalize(&mut g, Level::Exact);
    let r = reference::load(&root.join(reference)).unwrap();
    (g, r)
}

/// The shipped 3-input tanh surrogate of the one-compartment PK model
/// (`models/train_one_compartment.py`): `upper ≤ 1.1 × lower` within 120 s.
#[test]
fn trained_pk_surrogate_closes_to_10_percent() {
    let (g, r) = shipped(
        "models/one_compartment.onnx",
        "specs/references/one_compartment_iv_bolus.toml",
    );
    let start = Instant::now();
    let o = run(&g, &r, 0.05, 120.0, false);
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "one_compartment: upper {:.6e} lower {:.6e} (ratio {:.4}) leaves {} {secs:.2} s witness {:?}",
        o.upper,
        o.lower,
        o.upper / o.lower,
        o.leaves,
        o.witness
    );
    assert!(o.upper <= 1.1 * o.lower, "{} vs {}", o.upper, o.lower);
    assert!(secs < 120.0);
    check_points(&g, &r, o.upper, 1000, 13);
}

/// The shipped 2-input tanh surrogate of the one-compartment PK → Emax model: the acceptance asks
/// for `upper ≤ 1.1 × lower` within 120 s on 2 cores (timed in release by CI).
#[test]
fn trained_surrogate_closes_to_10_percent() {
    let (g, r) = shipped(
        "models/dose_response.onnx",
        "specs/references/dose_response.toml",
    );
    let start = Instant::now();
    let o = run(&g, &r, 0.05, 120.0, false);
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "dose_response: upper {:.6e} lower {:.6e} (ratio {:.4}) leaves {} {secs:.2} s witness {:?}",
        o.upper,
        o.lower,
        o.upper / o.lower,
        o.leaves,
        o.witness
    );
    assert!(o.upper <= 1.1 * o.lower, "{} vs {}", o.upper, o.lower);
    assert!(secs < 120.0);
    check_points(&g, &r, o.upper, 1000, 11);
}

#[test]
fn certificates_are_accepted_and_mutations_rejected() {
    let parts = [Pl::new(Smooth::Exp { a: 1.0 }, 0, exp_knots(4, 0.0, 4.0))];
    let g = network(&parts, 1);
    let r = reference_of(&parts, &["x"]);
    let o = run(&g, &r, 0.05, 60.0, true);
    let c = Certificate::new(&r, &o);
    let ok = cert::check(&g, &r, &c).unwrap();
    assert_eq!(ok.leaves, o.leaves);
    // Round trip through JSON.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("c.json");
    c.write(&p).unwrap();
    assert_eq!(Certificate::read(&p).unwrap(), c);

    type Mutation = Box<dyn Fn(&mut Certificate)>;
    let mutations: Vec<(&str, Mutation)> = vec![
        // Below the true worst error, which lies in some leaf.
        (
            "every leaf bound halved",
            Box::new(|c| {
                for l in &mut c.leaves {
                    l.bound *= 0.5;
                }
            }),
        ),
        (
            "a leaf removed",
            Box::new(|c| {
                c.leaves.remove(0);
            }),
        ),
        (
            "a leaf widened into its neighbour",
            Box::new(|c| {
                let l = &mut c.leaves[0];
                if l.hi[0] < 4.0 {
                    l.hi[0] = l.hi[0].next_up();
                } else {
                    l.lo[0] = l.lo[0].next_down();
                }
            }),
        ),
        ("upper lowered", Box::new(|c| c.upper *= 0.5)),
        (
            "lower above the witness error",
            Box::new(|c| c.lower *= 2.0),
        ),
        (
            "another expression",
            Box::new(|c| c.reference.expression = "exp(-2 * x)".into()),
        ),
        (
            "another region",
            Box::new(|c| c.reference.region[0][1] = 5.0),
        ),
        ("another version", Box::new(|c| c.version = 99)),
    ];
    for (what, m) in mutations {
        let mut bad = c.clone();
        m(&mut bad);
        let e = cert::check(&g, &r, &bad);
        assert!(e.is_err(), "{what}: accepted");
        assert!(
            e.unwrap_err().to_string().contains("certificate rejected"),
            "{what}"
        );
    }
}
