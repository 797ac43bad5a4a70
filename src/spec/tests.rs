//! Unit tests of the VNN-LIB parser and normalisation: one per feature and per error message.

use std::path::Path;

use num_bigint::BigInt;
use num_rational::BigRational;

use super::*;
use crate::error::Error;

fn q(n: i64, d: i64) -> BigRational {
    BigRational::new(BigInt::from(n), BigInt::from(d))
}

fn ok(text: &str) -> Spec {
    match parse(text, Path::new("t.vnnlib")) {
        Ok(s) => s,
        Err(e) => panic!("unexpected error: {e}\n{text}"),
    }
}

/// `line:column: message` of the parse error of `text`.
fn error(text: &str) -> String {
    match parse(text, Path::new("t.vnnlib")) {
        Ok(s) => panic!("expected an error, got {s}"),
        Err(Error::Parse {
            location, message, ..
        }) => format!("{location}: {message}"),
        Err(e) => panic!("not a parse error: {e}"),
    }
}

const DECLS_2_2: &str = "(declare-const X_0 Real)\n(declare-const X_1 Real)\n\
                         (declare-const Y_0 Real)\n(declare-const Y_1 Real)\n";

fn with_decls(body: &str) -> String {
    format!("{DECLS_2_2}{body}")
}

const BOX: &str = "(assert (<= X_0 1))\n(assert (>= X_0 0))\n\
                   (assert (<= X_1 0.5))\n(assert (>= X_1 -0.5))\n";

#[test]
fn simple_box_and_output_atom() {
    let s = ok(&with_decls(&format!("{BOX}(assert (<= Y_0 Y_1))")));
    assert_eq!((s.num_inputs, s.num_outputs, s.regions.len()), (2, 2, 1));
    let r = &s.regions[0];
    assert_eq!(r.input.lower_exact, vec![q(0, 1), q(-1, 2)]);
    assert_eq!(r.input.upper_exact, vec![q(1, 1), q(1, 2)]);
    assert_eq!(r.input.lower, vec![0.0, -0.5]);
    assert_eq!(r.unsafe_outputs.len(), 1);
    let a = &r.unsafe_outputs[0].atoms[0];
    assert_eq!(a.coeffs_exact, vec![q(1, 1), q(-1, 1)]);
    assert_eq!(a.rhs_exact, q(0, 1));
    assert_eq!(a.coeffs, vec![1.0, -1.0]);
    assert!(a.is_exact_in_f64());
    assert_eq!(a.to_string(), "Y_0 - Y_1 <= 0");
}

#[test]
fn declarations_in_any_order() {
    let text = "(declare-const Y_1 Real)(declare-const X_1 Real)(declare-const Y_0 Real)\
                (declare-const X_0 Real)";
    let s = ok(&format!("{text}{BOX}(assert (>= Y_1 3))"));
    assert_eq!((s.num_inputs, s.num_outputs), (2, 2));
    let a = &s.regions[0].unsafe_outputs[0].atoms[0];
    assert_eq!(a.to_string(), "-Y_1 <= -3");
    let old_style = "(declare-fun X_0 () Real)(declare-fun Y_0 () Real)\
                     (assert (<= X_0 1))(assert (>= X_0 0))(check-sat)(exit)";
    assert_eq!(ok(old_style).num_inputs, 1);
}

#[test]
fn reversed_bounds_and_scaled_variables() {
    let body = "(assert (>= 1 X_0))(assert (<= 0 X_0))(assert (<= (* 2 X_1) 1))\
                (assert (<= (- X_1) 0.5))(assert (<= 3 (+ Y_0 1)))";
    let s = ok(&with_decls(body));
    let b = &s.regions[0].input;
    assert_eq!(b.lower_exact, vec![q(0, 1), q(-1, 2)]);
    assert_eq!(b.upper_exact, vec![q(1, 1), q(1, 2)]);
    let a = &s.regions[0].unsafe_outputs[0].atoms[0];
    assert_eq!(a.to_string(), "-Y_0 <= -2");
}

#[test]
fn repeated_bounds_keep_the_tightest() {
    let body = format!("{BOX}(assert (<= X_0 0.75))(assert (<= X_0 0.9))(assert (>= X_0 -1))");
    let s = ok(&with_decls(&body));
    assert_eq!(s.regions[0].input.upper_exact[0], q(3, 4));
    assert_eq!(s.regions[0].input.lower_exact[0], q(0, 1));
}

#[test]
fn equality_and_chains() {
    let body = "(assert (= X_0 0.25))(assert (<= -1 X_1 1))(assert (= Y_0 Y_1))";
    let s = ok(&with_decls(body));
    let b = &s.regions[0].input;
    assert_eq!(
        (b.lower_exact[0].clone(), b.upper_exact[0].clone()),
        (q(1, 4), q(1, 4))
    );
    assert_eq!(
        (b.lower_exact[1].clone(), b.upper_exact[1].clone()),
        (q(-1, 1), q(1, 1))
    );
    let atoms: Vec<String> = s.regions[0].unsafe_outputs[0]
        .atoms
        .iter()
        .map(|a| a.to_string())
        .collect();
    assert_eq!(atoms, ["Y_0 - Y_1 <= 0", "-Y_0 + Y_1 <= 0"]);
}

#[test]
fn strict_comparisons_are_closed_with_a_note() {
    let text = with_decls(&format!("{BOX}(assert (< Y_0 Y_1))"));
    let (s, notes) = parse_with_notes(&text, Path::new("t")).unwrap();
    assert_eq!(
        s.regions[0].unsafe_outputs[0].atoms[0].to_string(),
        "Y_0 - Y_1 <= 0"
    );
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0].location.line, 9);
    assert!(notes[0].message.contains("strict `<` is read as `<=`"));
    let text = with_decls(&format!(
        "{BOX}(assert (> Y_0 Y_1))(assert (> Y_0 1))(assert (< Y_0 2))"
    ));
    let (_, notes) = parse_with_notes(&text, Path::new("t")).unwrap();
    assert_eq!(notes.len(), 2);
    assert!(
        notes[0].message.ends_with("(2 occurrences)"),
        "{}",
        notes[0].message
    );
    assert_eq!(notes[0].location.column, 9);
}

#[test]
fn linear_terms_combine_like_terms() {
    let body = format!(
        "{BOX}(assert (<= (+ (* 2 Y_0) (- Y_1) (* Y_0 -0.5) (* 3 0.5) (/ Y_1 4)) (- 1 Y_1)))"
    );
    let s = ok(&with_decls(&body));
    let a = &s.regions[0].unsafe_outputs[0].atoms[0];
    // 1.5 Y_0 - Y_1 + 1.5 + 0.25 Y_1 <= 1 - Y_1  ⇔  1.5 Y_0 + 0.25 Y_1 <= -0.5
    assert_eq!(a.coeffs_exact, vec![q(3, 2), q(1, 4)]);
    assert_eq!(a.rhs_exact, q(-1, 2));
    assert_eq!(a.to_string(), "1.5*Y_0 + 0.25*Y_1 <= -0.5");
}

#[test]
fn numbers_in_every_spelling() {
    let body = "(assert (<= X_0 1e-3))(assert (>= X_0 -.5))(assert (<= X_1 5.))\
                (assert (>= X_1 -2.5E+1))(assert (<= Y_0 +0.1))";
    let s = ok(&with_decls(body));
    let b = &s.regions[0].input;
    assert_eq!(b.upper_exact, vec![q(1, 1000), q(5, 1)]);
    assert_eq!(b.lower_exact, vec![q(-1, 2), q(-25, 1)]);
    let a = &s.regions[0].unsafe_outputs[0].atoms[0];
    assert_eq!(a.rhs_exact, q(1, 10));
    assert!(rational::from_f64(a.rhs).unwrap() >= q(1, 10));
}

#[test]
fn f64_views_round_outward() {
    let body = "(assert (<= X_0 0.1))(assert (>= X_0 -0.1))(assert (<= X_1 0.3))\
                (assert (>= X_1 0.2))(assert (<= (* 0.1 Y_0) 0.7))";
    let s = ok(&with_decls(body));
    let b = &s.regions[0].input;
    for i in 0..2 {
        assert!(rational::from_f64(b.lower[i]).unwrap() <= b.lower_exact[i]);
        assert!(rational::from_f64(b.upper[i]).unwrap() >= b.upper_exact[i]);
    }
    assert_eq!(b.upper[0], rational::round_up(&q(1, 10)));
    let a = &s.regions[0].unsafe_outputs[0].atoms[0];
    assert!(rational::from_f64(a.rhs).unwrap() > q(7, 10));
    assert!(!a.is_exact_in_f64(), "0.1 is not an f64");
    assert!(!s.has_exact_coefficients());
    assert!(!s.summary().exact_coefficients);
}

#[test]
fn disjunction_of_output_conjunctions() {
    let body = format!("{BOX}(assert (or (and (<= Y_0 Y_1) (<= Y_1 0)) (and (>= Y_0 1))))");
    let s = ok(&with_decls(&body));
    assert_eq!(s.regions.len(), 1);
    let dnf = &s.regions[0].unsafe_outputs;
    assert_eq!(dnf.len(), 2);
    assert_eq!(dnf[0].atoms.len(), 2);
    assert_eq!(dnf[1].atoms[0].to_string(), "-Y_0 <= -1");
}

#[test]
fn top_level_asserts_distribute_over_or() {
    let body =
        format!("{BOX}(assert (or (<= Y_0 0) (<= Y_1 0)))(assert (or (>= Y_0 -1) (>= Y_1 -1)))");
    let s = ok(&with_decls(&body));
    let dnf = &s.regions[0].unsafe_outputs;
    assert_eq!(dnf.len(), 4);
    assert!(dnf.iter().all(|c| c.atoms.len() == 2));
}

#[test]
fn mixed_disjuncts_group_by_box() {
    let body = "(assert (or (and (<= X_0 1) (>= X_0 0) (<= X_1 1) (>= X_1 0) (<= Y_0 Y_1))\
                            (and (<= X_0 1) (>= X_0 0) (<= X_1 1) (>= X_1 0) (<= Y_1 Y_0))\
                            (and (<= X_0 3) (>= X_0 2) (<= X_1 1) (>= X_1 0) (<= Y_1 Y_0))))";
    let s = ok(&with_decls(body));
    assert_eq!(s.regions.len(), 2);
    assert_eq!(s.regions[0].unsafe_outputs.len(), 2);
    assert_eq!(s.regions[1].unsafe_outputs.len(), 1);
    assert_eq!(s.regions[1].input.lower_exact[0], q(2, 1));
    let summary = s.summary();
    assert_eq!(summary.num_regions, 2);
    assert_eq!(
        summary.input_ranges[0],
        InputRange {
            lower: 0.0,
            upper: 3.0
        }
    );
    assert_eq!(summary.regions[0].disjuncts, 2);
}

#[test]
fn nested_formulas_and_constants() {
    let body = format!(
        "{BOX}(assert (and true (or (and (or (<= Y_0 0))) false (and (<= 1 0) (<= Y_1 0)))))\
         (assert (<= 0 1))"
    );
    let s = ok(&with_decls(&body));
    let dnf = &s.regions[0].unsafe_outputs;
    assert_eq!(dnf.len(), 1, "false disjuncts are dropped");
    assert_eq!(dnf[0].atoms.len(), 1);
}

#[test]
fn false_property_has_no_region_and_true_outputs_are_empty() {
    let s = ok(&with_decls(&format!("{BOX}(assert (or))")));
    assert!(s.regions.is_empty());
    assert!(!s.evaluate_exact(&[q(0, 1), q(0, 1)], &[q(0, 1), q(0, 1)]));
    let s = ok(&with_decls(BOX));
    assert_eq!(
        s.regions[0].unsafe_outputs,
        vec![Conjunction { atoms: vec![] }]
    );
    assert!(s.evaluate_exact(&[q(1, 2), q(0, 1)], &[q(9, 1), q(-9, 1)]));
}

#[test]
fn evaluate_exact_and_f64() {
    let body = "(assert (or (and (<= X_0 1) (>= X_0 0) (<= X_1 1) (>= X_1 0) (<= Y_0 Y_1))\
                            (and (<= X_0 3) (>= X_0 2) (<= X_1 1) (>= X_1 0) (>= Y_0 0.1))))";
    let s = ok(&with_decls(body));
    let (x_in1, x_in2, x_out) = ([q(1, 2), q(1, 1)], [q(3, 1), q(0, 1)], [q(3, 2), q(0, 1)]);
    assert!(s.evaluate_exact(&x_in1, &[q(1, 1), q(2, 1)]));
    assert!(!s.evaluate_exact(&x_in1, &[q(2, 1), q(1, 1)]));
    assert!(s.evaluate_exact(&x_in2, &[q(1, 10), q(5, 1)]));
    assert!(!s.evaluate_exact(&x_in2, &[q(1, 11), q(5, 1)]));
    assert!(!s.evaluate_exact(&x_out, &[q(1, 1), q(2, 1)]));
    assert!(
        !s.evaluate_exact(&x_in1[..1], &[q(1, 1), q(2, 1)]),
        "length mismatch"
    );
    assert!(s.evaluate_f64(&[0.5, 1.0], &[1.0, 2.0]));
    assert!(!s.evaluate_f64(&[1.5, 0.0], &[1.0, 2.0]));
    assert!(
        s.evaluate_f64(&[3.0, 0.0], &[0.1, 5.0]),
        "0.1 rounds into the f64 region"
    );
    assert!(!s.evaluate_f64(&[0.5], &[1.0, 2.0]));
}

#[test]
fn display_lists_boxes_and_atoms() {
    let s = ok(&with_decls(&format!(
        "{BOX}(assert (or (<= Y_0 Y_1) (>= Y_1 2)))"
    )));
    let text = s.to_string();
    assert_eq!(
        text,
        "2 inputs, 2 outputs, 1 region\nregion 1:\n  X_0 in [0, 1]\n  X_1 in [-0.5, 0.5]\n  \
         unsafe if any of 2 conjunctions:\n    Y_0 - Y_1 <= 0\n    -Y_1 <= -2\n"
    );
}

#[test]
fn printed_specs_parse_back() {
    let body = "(assert (or (and (<= X_0 1) (>= X_0 0) (<= X_1 1) (>= X_1 0) (<= Y_0 (/ Y_1 3)))\
                            (and (<= X_0 3) (>= X_0 2) (<= X_1 1) (>= X_1 0) (>= Y_0 0.1))))";
    let s = ok(&with_decls(body));
    assert_eq!(ok(&s.to_vnnlib()), s);
    let single = ok(&with_decls(&format!("{BOX}(assert (<= Y_0 Y_1))")));
    assert_eq!(ok(&single.to_vnnlib()), single);
    let empty = ok(&with_decls(&format!("{BOX}(assert false)")));
    assert_eq!(ok(&empty.to_vnnlib()), empty);
}

#[test]
fn deep_nesting_up_to_the_limit_parses() {
    // MAX_DEPTH counts every parenthesis, including the assert's own.
    let depth = MAX_DEPTH - 2;
    let inner = format!("{}(<= Y_0 0){}", "(and ".repeat(depth), ")".repeat(depth));
    let s = ok(&with_decls(&format!("{BOX}(assert {inner})")));
    assert_eq!(s.regions[0].unsafe_outputs[0].atoms.len(), 1);
    let term = format!("{}Y_0{}", "(- ".repeat(depth - 1), ")".repeat(depth - 1));
    assert!(parse(
        &with_decls(&format!("{BOX}(assert (<= {term} 0))")),
        Path::new("t")
    )
    .is_ok());
}

#[test]
fn error_messages() {
    let cases: &[(&str, &str)] = &[
        ("(assert (<= X_0 1)", "1:19: expected `)` to close `(assert` opened at 1:1, found end of file"),
        ("(assert))", "1:9: unexpected `)` with no matching `(`"),
        ("foo", "1:1: expected `(` to start a command, found `foo`"),
        ("(declare-const X_0 Real)(declare-const Y_0 Real)(check-model)", "1:49: unknown command `(check-model`; expected `(declare-const` or `(assert`"),
        ("(declare-const Z_0 Real)", "1:16: cannot declare `Z_0`: VNN-LIB variables are named `X_<i>` (inputs) and `Y_<j>` (outputs), numbered from 0"),
        ("(declare-const X_01 Real)", "1:16: cannot declare `X_01`: VNN-LIB variables are named `X_<i>` (inputs) and `Y_<j>` (outputs), numbered from 0"),
        ("(declare-const X_0 Int)", "1:20: expected sort `Real` for X_0, found `Int`"),
        ("(declare-const X_0)", "1:1: expected `(declare-const <name> Real)`"),
        ("(declare-fun X_0 Real)", "1:1: expected `(declare-fun <name> () Real)`"),
        ("(declare-const (X_0) Real)", "1:16: expected a variable name such as `X_0` or `Y_0`"),
        ("(declare-const X_0 Real)(declare-const Y_0 Real)(assert)", "1:49: `(assert` takes exactly one formula, found 0"),
        ("\u{feff}(declare-const X_0 Real)(declare-const Y_0 Real)(assert (<= X_0 1))", "1:1: X_0 has no lower bound; add e.g. `(assert (>= X_0 0))`"),
        ("(declare-const X_0 Real)\n(declare-const X_0 Real)", "2:1: X_0 is declared twice (first at 1:1)"),
        ("(declare-const X_0 Real)(declare-const X_2 Real)(declare-const Y_0 Real)", "1:25: X_2 is declared but X_1 is not; input variables must be numbered X_0, X_1, … without gaps"),
        ("(declare-const X_0 Real)", "1:25: no output variables declared; expected `(declare-const Y_0 Real)`"),
        ("(declare-const Y_0 Real)", "1:25: no input variables declared; expected `(declare-const X_0 Real)`"),
    ];
    for (text, expected) in cases {
        assert_eq!(&error(text), expected, "{text}");
    }
}

#[test]
fn formula_error_messages() {
    // The body starts on line 5 (after four declarations).
    let cases: &[(&str, &str)] = &[
        ("(assert (<= Z_1 0))", "5:13: unknown variable `Z_1`; declare it with `(declare-const Z_1 Real)`"),
        ("(assert (<= X_0 1.2.3))", "5:17: malformed number `1.2.3`; expected a decimal such as `0.5`, `-1` or `1e-3` (exponents up to ±4096)"),
        ("(assert (<= X_0 1e99999))", "5:17: malformed number `1e99999`; expected a decimal such as `0.5`, `-1` or `1e-3` (exponents up to ±4096)"),
        ("(assert (<= Y_0 1e309))", "5:9: the constant of this constraint is 1000000000000000000000000000000000000000…, beyond the range of f64"),
        ("(assert (<= (+ X_0 X_1) 1))", "5:9: this constraint combines several input variables (X_0, X_1); only bounds on single inputs such as `(<= X_0 0.5)` are supported"),
        ("(assert (<= X_0 Y_1))", "5:9: this constraint mixes input and output variables (X_0, Y_1); a VNN-LIB property bounds the inputs and constrains the outputs separately"),
        ("(assert (<= (* Y_0 Y_1) 1))", "5:20: nonlinear term: at most one factor of `(*` may contain variables"),
        ("(assert (<= (/ 1 Y_1) 1))", "5:18: nonlinear term: `(/` divides by a constant only"),
        ("(assert (<= (/ Y_1 0.0) 1))", "5:20: division by zero"),
        ("(assert (<= (-) 1))", "5:13: `(-` needs an argument"),
        ("(assert (<= Y_0))", "5:9: `(<=` needs at least two terms, found 1"),
        ("(assert (not (<= Y_0 0)))", "5:9: `(not` is not supported in VNN-LIB properties; use `and`, `or` and the comparisons `<=`, `>=`, `<`, `>`, `=`"),
        ("(assert (foo Y_0))", "5:9: expected a formula (`and`, `or`, `<=`, `>=`, `<`, `>`, `=`), found `(foo`"),
        ("(assert Y_0)", "5:9: expected a formula such as `(<= Y_0 Y_1)`, found `Y_0`"),
        ("(assert (<= (exp Y_0) 1))", "5:13: expected a term (a number, a variable, or `+`, `-`, `*`, `/`), found `(exp`"),
        ("(assert (<= Y_0 0) (<= Y_1 0))", "5:1: `(assert` takes exactly one formula, found 2"),
    ];
    for (body, expected) in cases {
        assert_eq!(&error(&with_decls(body)), expected, "{body}");
    }
}

#[test]
fn box_error_messages() {
    assert_eq!(
        error(&with_decls(
            "(assert (<= X_0 1))(assert (>= X_0 0))(assert (<= X_1 1))"
        )),
        "2:1: X_1 has no lower bound; add e.g. `(assert (>= X_1 0))`"
    );
    assert_eq!(
        error(&with_decls(
            "(assert (>= X_0 0))(assert (>= X_1 0))(assert (<= X_1 1))"
        )),
        "1:1: X_0 has no upper bound; add e.g. `(assert (<= X_0 0))`"
    );
    assert_eq!(
        error(&with_decls(
            "(assert (<= X_1 1))(assert (>= X_1 0))\n(assert (<= X_0 0.5))\n(assert (>= X_0 0.6))"
        )),
        "7:9: X_0 has lower bound 0.6 above its upper bound 0.5 (set at 6:9); the input region is empty"
    );
    assert_eq!(
        error(&with_decls(
            "(assert (<= X_1 1))(assert (>= X_1 0))(assert (<= X_0 1))\
             (assert (or (>= X_0 0) (<= Y_0 0)))"
        )),
        "1:1: X_0 has no lower bound in one of the 2 disjuncts of the property; add e.g. `(assert (>= X_0 0))`"
    );
}

#[test]
fn dnf_blow_up_is_refused() {
    // 2^20 disjuncts.
    let body: String = (0..20)
        .map(|_| "(assert (or (<= Y_0 0) (<= Y_1 0)))\n")
        .collect();
    let message = error(&with_decls(&format!("{BOX}{body}")));
    assert!(
        message.starts_with("25:9: the property expands to more than 100000 disjuncts"),
        "{message}"
    );
}

#[test]
fn depth_limit_is_an_error() {
    let inner = format!(
        "{}(<= Y_0 0){}",
        "(and ".repeat(MAX_DEPTH),
        ")".repeat(MAX_DEPTH)
    );
    let message = error(&with_decls(&format!("{BOX}(assert {inner})")));
    assert!(
        message.contains("nested deeper than 1000 levels"),
        "{message}"
    );
}

#[test]
fn load_reports_missing_files() {
    let err = load(Path::new("/nonexistent/p.vnnlib")).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
}

#[test]
fn comments_and_odd_whitespace() {
    let text = "; header ; with ; semicolons\r\n(declare-const X_0 Real) ; trailing\r\n\
                (declare-const\tY_0\tReal)\n(assert (<= X_0 1));(assert (<= X_0 -100))\n\
                (assert\n  (>= X_0 ; inline\n 0))";
    let s = ok(text);
    assert_eq!(s.regions[0].input.lower_exact[0], q(0, 1));
    assert_eq!(s.regions[0].input.upper_exact[0], q(1, 1));
}

#[test]
fn many_inputs_parse_in_linear_time() {
    // 20,000 inputs as 40,000 top-level asserts; a quadratic normalisation would crawl.
    let n = 20_000;
    let mut text = String::new();
    for i in 0..n {
        text.push_str(&format!("(declare-const X_{i} Real)\n"));
    }
    text.push_str("(declare-const Y_0 Real)\n(declare-const Y_1 Real)\n");
    for i in 0..n {
        text.push_str(&format!(
            "(assert (<= X_{i} 0.5))\n(assert (>= X_{i} -0.5))\n"
        ));
    }
    text.push_str("(assert (or (<= Y_0 Y_1) (>= Y_0 3)))\n");
    let start = std::time::Instant::now();
    let s = ok(&text);
    assert_eq!(s.num_inputs, n);
    assert_eq!(s.regions[0].unsafe_outputs.len(), 2);
    assert!(start.elapsed().as_secs() < 20, "took {:?}", start.elapsed());
}
