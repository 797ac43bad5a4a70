//! End-to-end tests of the VNN-LIB parser: the shared VNN-COMP benchmark properties parse and
//! their normalised form is pinned by snapshots; error messages are pinned too; property tests
//! show that no mutated or random input panics or reports a location outside the text, and that
//! printing a random `Spec` as VNN-LIB and parsing it back gives the same `Spec`.

use std::path::{Path, PathBuf};

use beacons::spec::{self, rational, Atom, Conjunction, InputBox, Region, Spec};
use beacons::Error;
use num_bigint::BigInt;
use num_rational::BigRational;
use proptest::prelude::*;

fn benchmarks() -> Option<PathBuf> {
    let dir = match std::env::var_os("BEACONS_BENCHMARKS") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/benchmarks"),
    };
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "SKIPPED: benchmark folder {} not found (set BEACONS_BENCHMARKS)",
            dir.display()
        );
        None
    }
}

fn vnnlib_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "vnnlib"))
        .collect();
    files.sort();
    files
}

fn load(path: &Path) -> Spec {
    spec::load(path).unwrap_or_else(|e| panic!("{e}"))
}

/// Checks that hold for every parsed spec: dimensions, outward rounding, no empty boxes.
fn check_invariants(s: &Spec) {
    for r in &s.regions {
        let b = &r.input;
        assert_eq!(b.dim(), s.num_inputs);
        for i in 0..b.dim() {
            assert!(b.lower_exact[i] <= b.upper_exact[i]);
            assert!(rational::from_f64(b.lower[i]).unwrap() <= b.lower_exact[i]);
            assert!(rational::from_f64(b.upper[i]).unwrap() >= b.upper_exact[i]);
        }
        for c in &r.unsafe_outputs {
            for a in &c.atoms {
                assert_eq!(a.coeffs.len(), s.num_outputs);
                assert!(rational::from_f64(a.rhs).unwrap() >= a.rhs_exact);
            }
        }
    }
}

#[test]
fn every_benchmark_property_parses() {
    let Some(root) = benchmarks() else { return };
    let mut count = 0;
    for (bench, expected) in [("acasxu", 10), ("mnist_fc", 30)] {
        let files = vnnlib_files(&root.join(bench).join("vnnlib"));
        assert_eq!(files.len(), expected, "{bench}");
        for f in files {
            let s = load(&f);
            check_invariants(&s);
            assert!(!s.regions.is_empty(), "{}", f.display());
            assert!(s.has_exact_coefficients(), "{}", f.display());
            assert_eq!(
                spec::parse(&s.to_vnnlib(), &f).unwrap(),
                s,
                "{}",
                f.display()
            );
            count += 1;
        }
    }
    assert_eq!(count, 40);
}

#[test]
fn acasxu_properties_snapshot() {
    let Some(root) = benchmarks() else { return };
    let mut out = String::new();
    for k in 1..=10 {
        let s = load(&root.join(format!("acasxu/vnnlib/prop_{k}.vnnlib")));
        let summary = serde_json::to_string(&s.summary()).unwrap_or_default();
        out.push_str(&format!("== prop_{k}\nsummary: {summary}\n{s}\n"));
    }
    insta::assert_snapshot!("acasxu_properties", out);
}

#[test]
fn acasxu_prop_6_has_two_boxes() {
    let Some(root) = benchmarks() else { return };
    let s = load(&root.join("acasxu/vnnlib/prop_6.vnnlib"));
    assert_eq!(s.regions.len(), 2);
    for r in &s.regions {
        assert_eq!(r.unsafe_outputs.len(), 4);
        assert!(r.unsafe_outputs.iter().all(|c| c.atoms.len() == 1));
    }
    // The boxes differ in X_1 only: [0.11140846, 0.499999896] and its mirror image.
    let (a, b) = (&s.regions[0].input, &s.regions[1].input);
    assert_eq!(a.lower_exact[1], -b.upper_exact[1].clone());
    assert_eq!(a.upper_exact[1], -b.lower_exact[1].clone());
    assert_eq!(a.lower_exact[0], b.lower_exact[0]);
    assert_eq!(s.summary().num_regions, 2);
}

#[test]
fn mnist_boxes_are_784_pixels_in_the_unit_interval() {
    let Some(root) = benchmarks() else { return };
    let zero = BigRational::from_integer(0.into());
    let one = BigRational::from_integer(1.into());
    for f in vnnlib_files(&root.join("mnist_fc/vnnlib")) {
        let s = load(&f);
        assert_eq!((s.num_inputs, s.num_outputs), (784, 10), "{}", f.display());
        assert_eq!(s.regions.len(), 1);
        let r = &s.regions[0];
        assert!(r.input.lower_exact.iter().all(|l| *l >= zero));
        assert!(r.input.upper_exact.iter().all(|u| *u <= one));
        assert!(r.input.lower.iter().all(|l| *l >= 0.0));
        assert!(r.input.upper.iter().all(|u| *u <= 1.0));
        // "some other class scores at least the label": nine one-atom disjuncts.
        assert_eq!(r.unsafe_outputs.len(), 9);
        assert!(r.unsafe_outputs.iter().all(|c| c.atoms.len() == 1));
    }
}

/// What the user sees for a broken file.
fn error_text(text: &str) -> String {
    match spec::parse(text, Path::new("specs/broken.vnnlib")) {
        Ok(_) => "parsed without error".to_string(),
        Err(e) => e.to_string(),
    }
}

const HEADER: &str = "; a property\n(declare-const X_0 Real)\n(declare-const Y_0 Real)\n\
                      (declare-const Y_1 Real)\n";

#[test]
fn error_message_snapshots() {
    let cases = [
        "(assert (<= X_0 0.5)\n(assert (>= X_0 -0.5))",
        "(assert (<= X_0 0.5))\n(assert (>= X_0 -0.5))\n(assert (<= Z_1 Y_0))",
        "(assert (<= X_0 0.5))\n(assert (<= Y_0 Y_1))",
        "(assert (<= X_0 0.5))\n(assert (>= X_0 0.7))",
        "(assert (or (and (<= X_0 1) (>= X_0 0)) (and (<= X_0 1) (<= Y_0 0.5 Y_1))))",
        "(assert (<= X_0 0.5))\n(assert (>= X_0 -0.5))\n(assert (<= (* Y_0 Y_1) 0))",
        "(assert (<= X_0 0.5))\n(assert (>= X_0 -0.5))\n(assert (<= (+ X_0 Y_1) 0))",
        "(assert (<= X_0 0x1F))",
    ];
    let out: Vec<String> = cases
        .iter()
        .map(|body| format!("{body}\n=> {}", error_text(&format!("{HEADER}{body}"))))
        .collect();
    insta::assert_snapshot!("error_messages", out.join("\n\n"));
}

/// A small valid property in the mixed VNN-COMP shape, the seed of the mutation tests.
const SEED: &str = "; seed\n(declare-const X_0 Real)\n(declare-const X_1 Real)\n\
(declare-const Y_0 Real)\n(declare-const Y_1 Real)\n(declare-const Y_2 Real)\n\
(assert (or\n  (and (<= X_0 0.5) (>= X_0 -0.5) (<= X_1 1e-3) (>= X_1 -.25))\n\
  (and (<= X_0 2) (>= X_0 1) (<= X_1 1) (<= 0 X_1))\n))\n\
(assert (or (and (<= Y_0 Y_1) (>= (- Y_2 (* 2 Y_0)) 0.5)) (and (< Y_2 -3))))\n";

/// Parsing never panics; an error is `Error::Parse` at a position inside the text.
fn check_total(text: &str) -> Result<(), TestCaseError> {
    match spec::parse(text, Path::new("fuzz.vnnlib")) {
        Ok(s) => check_invariants(&s),
        Err(Error::Parse { location, .. }) => {
            let line = text.split('\n').nth(location.line - 1);
            prop_assert!(line.is_some(), "line {} outside the text", location.line);
            let chars = line.map(|l| l.chars().count()).unwrap_or(0);
            prop_assert!(
                location.column >= 1 && location.column <= chars + 1,
                "column {} outside line {} of {chars} characters",
                location.column,
                location.line
            );
        }
        Err(e) => prop_assert!(false, "not a parse error: {e}"),
    }
    Ok(())
}

#[derive(Clone, Debug)]
enum Edit {
    Flip(usize, u8),
    Insert(usize, u8),
    Delete(usize),
}

fn edit_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        any::<u8>(),
        proptest::sample::select(b"()()<=>XY_0123456789.-+*e; \n\t".to_vec()),
    ]
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), edit_byte()).prop_map(|(p, b)| Edit::Flip(p, b)),
        (any::<usize>(), edit_byte()).prop_map(|(p, b)| Edit::Insert(p, b)),
        any::<usize>().prop_map(Edit::Delete),
    ]
}

fn apply(edits: &[Edit]) -> String {
    let mut bytes = SEED.as_bytes().to_vec();
    for e in edits {
        let n = bytes.len().max(1);
        match *e {
            Edit::Flip(p, b) if !bytes.is_empty() => bytes[p % n] = b,
            Edit::Insert(p, b) => bytes.insert(p % (n + 1), b),
            Edit::Delete(p) if !bytes.is_empty() => {
                bytes.remove(p % n);
            }
            _ => {}
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

fn rat() -> impl Strategy<Value = BigRational> {
    prop_oneof![
        // Decimals, the usual case.
        (-100_000i64..100_000, 0u32..8)
            .prop_map(|(m, k)| BigRational::new(m.into(), BigInt::from(10).pow(k))),
        // Any rational, printed as `(/ p q)`.
        (-1000i64..1000, 1i64..1000).prop_map(|(p, q)| BigRational::new(p.into(), q.into())),
    ]
}

fn input_box(n: usize) -> impl Strategy<Value = InputBox> {
    proptest::collection::vec((rat(), rat()), n).prop_map(|pairs| {
        let (lower_exact, upper_exact): (Vec<_>, Vec<_>) = pairs
            .into_iter()
            .map(|(a, b)| if a <= b { (a, b) } else { (b, a) })
            .unzip();
        InputBox {
            lower: lower_exact.iter().map(rational::round_down).collect(),
            upper: upper_exact.iter().map(rational::round_up).collect(),
            lower_exact,
            upper_exact,
        }
    })
}

fn atom(m: usize) -> impl Strategy<Value = Atom> {
    (
        proptest::collection::vec(prop_oneof![Just(0i64), Just(1), Just(-1), -5i64..5], m),
        0..m,
        rat(),
    )
        .prop_map(|(cs, nonzero, rhs)| {
            let mut coeffs: Vec<BigRational> = cs
                .into_iter()
                .map(|c| BigRational::from_integer(c.into()))
                .collect();
            if coeffs
                .iter()
                .all(|c| *c == BigRational::from_integer(0.into()))
            {
                coeffs[nonzero] = BigRational::from_integer(1.into());
            }
            Atom::new(coeffs, rhs)
        })
}

fn random_spec() -> impl Strategy<Value = Spec> {
    (1usize..4, 1usize..4)
        .prop_flat_map(|(n, m)| {
            let conj =
                proptest::collection::vec(atom(m), 0..3).prop_map(|atoms| Conjunction { atoms });
            let region = (input_box(n), proptest::collection::vec(conj, 1..3)).prop_map(
                |(input, unsafe_outputs)| Region {
                    input,
                    unsafe_outputs,
                },
            );
            (Just(n), Just(m), proptest::collection::vec(region, 1..4))
        })
        .prop_map(|(n, m, raw)| {
            // Disjuncts with identical boxes form one region, in order of first appearance.
            let mut regions: Vec<Region> = Vec::new();
            for r in raw {
                match regions.iter_mut().find(|q| q.input == r.input) {
                    Some(q) => q.unsafe_outputs.extend(r.unsafe_outputs),
                    None => regions.push(r),
                }
            }
            Spec {
                num_inputs: n,
                num_outputs: m,
                regions,
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn mutated_files_never_panic(edits in proptest::collection::vec(edit(), 1..8)) {
        check_total(&apply(&edits))?;
    }

    #[test]
    fn truncated_files_never_panic(cut in 0..SEED.len()) {
        check_total(&String::from_utf8_lossy(&SEED.as_bytes()[..cut]))?;
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(edit_byte(), 0..200)) {
        check_total(&String::from_utf8_lossy(&bytes))?;
    }

    #[test]
    fn random_strings_never_panic(text in "\\PC{0,100}") {
        check_total(&text)?;
    }

    #[test]
    fn printed_specs_parse_back_equal(s in random_spec()) {
        let text = s.to_vnnlib();
        let back = spec::parse(&text, Path::new("roundtrip.vnnlib"));
        prop_assert!(back.is_ok(), "{:?}\n{text}", back.err().map(|e| e.to_string()));
        prop_assert_eq!(back.ok(), Some(s), "{}", text);
    }
}

#[test]
fn seed_parses() {
    let s = spec::parse(SEED, Path::new("seed.vnnlib")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.regions.len(), 2);
    assert_eq!(s.regions[0].unsafe_outputs.len(), 2);
}
