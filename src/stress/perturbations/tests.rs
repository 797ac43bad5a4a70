use ndarray::Array2;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;

fn table(n: usize, names: &[&str], units: &[&str]) -> (Array2<f64>, Context) {
    let mut rng = StdRng::seed_from_u64(7);
    let x = Array2::from_shape_fn((n, names.len()), |(_, j)| {
        10.0 + j as f64 + rng.random::<f64>()
    });
    let ctx = Context {
        layout: Layout::Tabular,
        feature_names: names.iter().map(|s| s.to_string()).collect(),
        units: units.iter().map(|s| s.to_string()).collect(),
        batch: None,
        ranges: vec![Some((5.0, 20.0)); names.len()],
    };
    (x, ctx)
}

fn image(n: usize) -> (Array2<f64>, Context) {
    let mut rng = StdRng::seed_from_u64(3);
    let x = Array2::from_shape_fn((n, 2 * 8 * 8), |_| rng.random::<f64>());
    let ctx = Context {
        layout: Layout::Image {
            channels: 2,
            height: 8,
            width: 8,
        },
        feature_names: (0..128).map(|i| format!("p{i}")).collect(),
        units: vec![String::new(); 128],
        batch: None,
        ranges: vec![None; 128],
    };
    (x, ctx)
}

fn signal(n: usize) -> (Array2<f64>, Context) {
    let x = Array2::zeros((n, 2 * 500));
    let ctx = Context {
        layout: Layout::Signal {
            channels: 2,
            len: 500,
            sample_rate_hz: 500.0,
        },
        feature_names: (0..1000).map(|i| format!("s{i}")).collect(),
        units: vec!["mV".into(); 1000],
        batch: None,
        ranges: vec![None; 1000],
    };
    (x, ctx)
}

fn all() -> Vec<Perturbation> {
    let p = |s: &str| -> Perturbation { toml::from_str(s).unwrap() };
    vec![
        p("kind = \"gaussian_noise\""),
        p("kind = \"poisson_noise\""),
        p("kind = \"batch_effect\""),
        p("kind = \"dropout\""),
        p("kind = \"intensity_shift\""),
        p("kind = \"contrast\""),
        p("kind = \"stain_shift\""),
        p("kind = \"blur\""),
        p("kind = \"motion_blur\""),
        p("kind = \"baseline_wander\""),
        p("kind = \"powerline\""),
        p("kind = \"missing_values\"\nimpute = \"median\""),
        p("kind = \"unit_mistake\"\nfeature = \"p0\"\nfactor = 10.0"),
        p("kind = \"out_of_range\""),
        p("kind = \"saturation\""),
    ]
}

fn run(p: &Perturbation, x: &Array2<f64>, ctx: &Context, s: f64, seed: u64) -> Array2<f64> {
    let mut y = x.clone();
    p.apply(&mut y, ctx, s, &mut StdRng::seed_from_u64(seed));
    y
}

#[test]
fn severity_zero_is_identity_and_apply_is_deterministic() {
    for p in all() {
        for (x, mut ctx) in [image(4), signal(3)] {
            ctx.ranges = vec![Some((0.0, 1.0)); ctx.feature_names.len()];
            if p.check(&ctx).is_err() {
                continue;
            }
            assert_eq!(run(&p, &x, &ctx, 0.0, 1), x, "{} at severity 0", p.kind());
            assert_eq!(
                run(&p, &x, &ctx, 0.7, 9),
                run(&p, &x, &ctx, 0.7, 9),
                "{}",
                p.kind()
            );
        }
    }
}

#[test]
fn every_kind_applies_somewhere_and_changes_the_data() {
    for p in all() {
        let mut changed = false;
        for (x, mut ctx) in [image(4), signal(3)] {
            ctx.ranges = vec![Some((0.0, 1.0)); ctx.feature_names.len()];
            if p.check(&ctx).is_ok() {
                changed |= run(&p, &x, &ctx, 1.0, 5) != x;
            }
        }
        assert!(changed, "{} never changed anything", p.kind());
    }
}

#[test]
fn gaussian_noise_sd_scales_with_severity() {
    let (x, ctx) = table(20_000, &["a"], &["mg"]);
    let p: Perturbation = toml::from_str("kind = \"gaussian_noise\"\nsd = 2.0").unwrap();
    for s in [0.25, 0.5, 1.0] {
        let d = run(&p, &x, &ctx, s, 11) - &x;
        let sd = (d.mapv(|v| v * v).sum() / d.len() as f64).sqrt();
        assert!(
            (sd - 2.0 * s).abs() < 0.05 * 2.0 * s,
            "sd {sd} at severity {s}"
        );
    }
}

#[test]
fn poisson_noise_variance_is_gain_times_mean() {
    let x = Array2::from_elem((20_000, 1), 50.0);
    let (_, ctx) = table(1, &["a"], &[""]);
    let p: Perturbation = toml::from_str("kind = \"poisson_noise\"\ngain = 2.0").unwrap();
    let y = run(&p, &x, &ctx, 0.5, 1);
    let m = y.mean().unwrap();
    let var = y.mapv(|v| (v - m) * (v - m)).mean().unwrap();
    assert!((m - 50.0).abs() < 0.2, "mean {m}");
    assert!((var - 50.0).abs() < 2.5, "var {var} (gain 1 · mean 50)");
}

#[test]
fn dropout_rate_and_missing_imputation() {
    let (x, ctx) = table(20_000, &["a", "b"], &["", ""]);
    let p: Perturbation = toml::from_str("kind = \"dropout\"\nrate = 0.4").unwrap();
    let y = run(&p, &x, &ctx, 0.5, 2);
    let zeros = y.iter().filter(|v| **v == 0.0).count() as f64 / y.len() as f64;
    assert!((zeros - 0.2).abs() < 0.01, "{zeros}");
    for (impute, expect) in [
        ("zero", Some(0.0)),
        ("mean", None),
        ("last_observation", None),
    ] {
        let p: Perturbation = toml::from_str(&format!(
            "kind = \"missing_values\"\nrate = 1.0\nimpute = \"{impute}\"\nfeatures = [\"a\"]"
        ))
        .unwrap();
        let y = run(&p, &x, &ctx, 0.5, 3);
        let changed: Vec<usize> = (0..x.nrows()).filter(|&i| y[[i, 0]] != x[[i, 0]]).collect();
        let frac = changed.len() as f64 / x.nrows() as f64;
        assert!((frac - 0.5).abs() < 0.02, "{impute}: {frac}");
        assert_eq!(y.column(1), x.column(1), "untouched feature");
        if let Some(v) = expect {
            assert!(changed.iter().all(|&i| y[[i, 0]] == v));
        }
        if impute == "last_observation" {
            // Every imputed value equals the value of an earlier row.
            let first_kept = (0..x.nrows()).find(|i| !changed.contains(i)).unwrap();
            let i = changed.iter().copied().find(|&i| i > first_kept).unwrap();
            assert!((0..i).any(|k| x[[k, 0]] == y[[i, 0]]));
        }
    }
}

#[test]
fn unit_mistake_converts_a_severity_governed_fraction() {
    let (x, ctx) = table(10_000, &["glucose", "creatinine"], &["mg/dL", "mg/dL"]);
    let p: Perturbation = toml::from_str(
        "kind = \"unit_mistake\"\nfeature = \"creatinine\"\nreported_unit = \"umol/L\"",
    )
    .unwrap();
    p.check(&ctx).unwrap();
    let y = run(&p, &x, &ctx, 0.3, 4);
    let hit: Vec<usize> = (0..x.nrows()).filter(|&i| y[[i, 1]] != x[[i, 1]]).collect();
    assert!((hit.len() as f64 / 10_000.0 - 0.3).abs() < 0.02);
    assert!(hit
        .iter()
        .all(|&i| (y[[i, 1]] - 88.42 * x[[i, 1]]).abs() < 1e-9));
    // Samples hit at 0.3 are still hit at 0.6 (coupled across severities).
    let z = run(&p, &x, &ctx, 0.6, 4);
    assert!(hit.iter().all(|&i| z[[i, 1]] == y[[i, 1]]));
    let bad: Perturbation = toml::from_str(
        "kind = \"unit_mistake\"\nfeature = \"glucose\"\nreported_unit = \"parsecs\"",
    )
    .unwrap();
    assert_eq!(bad.check(&ctx).unwrap_err().0, "reported_unit");
}

#[test]
fn out_of_range_and_saturation_respect_the_valid_range() {
    let (x, ctx) = table(5_000, &["a"], &[""]);
    let p: Perturbation = toml::from_str("kind = \"out_of_range\"\nfraction = 0.5").unwrap();
    let y = run(&p, &x, &ctx, 1.0, 5);
    let out = y.iter().filter(|v| **v < 5.0 || **v > 20.0).count() as f64 / 5_000.0;
    assert!((out - 0.5).abs() < 0.03, "{out}");
    let p: Perturbation = toml::from_str("kind = \"saturation\"\ndrop = 0.9").unwrap();
    let y = run(&p, &x, &ctx, 1.0, 5);
    // Ceiling 20 − 0.9·15 = 6.5 clips every value (all are ≥ 10).
    assert!(y.iter().all(|v| (*v - 6.5).abs() < 1e-12));
}

#[test]
fn blur_keeps_the_mean_and_smooths() {
    let (x, ctx) = image(3);
    let p: Perturbation = toml::from_str("kind = \"blur\"\nsigma_px = 1.5").unwrap();
    let y = run(&p, &x, &ctx, 1.0, 0);
    let var = |a: &Array2<f64>| {
        let m = a.mean().unwrap();
        a.mapv(|v| (v - m) * (v - m)).mean().unwrap()
    };
    assert!((y.mean().unwrap() - x.mean().unwrap()).abs() < 0.02);
    assert!(var(&y) < 0.3 * var(&x));
    let p: Perturbation = toml::from_str("kind = \"motion_blur\"").unwrap();
    assert!(var(&run(&p, &x, &ctx, 1.0, 0)) < 0.5 * var(&x));
}

#[test]
fn powerline_has_the_set_frequency_and_amplitude() {
    let (x, ctx) = signal(1);
    let p: Perturbation = toml::from_str("kind = \"powerline\"\namplitude = 0.4").unwrap();
    let y = run(&p, &x, &ctx, 0.5, 6);
    let lead: Vec<f64> = y.row(0).iter().take(500).copied().collect();
    let peak = lead.iter().fold(0.0f64, |a, b| a.max(b.abs()));
    assert!((peak - 0.2).abs() < 0.01, "{peak}");
    // 50 Hz at 500 Hz sampling: period of 10 samples.
    assert!(lead
        .iter()
        .zip(&lead[10..])
        .all(|(a, b)| (a - b).abs() < 1e-9));
    let p: Perturbation = toml::from_str("kind = \"baseline_wander\"").unwrap();
    let y = run(&p, &x, &ctx, 1.0, 6);
    assert!(y.iter().fold(0.0f64, |a, b| a.max(b.abs())) <= 0.5 + 1e-12);
}

#[test]
fn batch_effect_is_multiplicative_per_batch_and_column() {
    let (x, mut ctx) = table(100, &["g1", "g2"], &["counts", "counts"]);
    ctx.batch = Some((0..100).map(|i| i % 2).collect());
    let p: Perturbation = toml::from_str("kind = \"batch_effect\"\nlog_sd = 1.0").unwrap();
    let y = run(&p, &x, &ctx, 1.0, 8);
    let ratio = |i: usize, j: usize| y[[i, j]] / x[[i, j]];
    assert!((ratio(0, 0) - ratio(2, 0)).abs() < 1e-12);
    assert!((ratio(0, 0) - ratio(1, 0)).abs() > 1e-6);
    assert!((ratio(0, 0) - ratio(0, 1)).abs() > 1e-6);
}

#[test]
fn contrast_and_stain_shift_act_per_image() {
    let (x, ctx) = image(2);
    let p: Perturbation = toml::from_str("kind = \"contrast\"\nfactor = 1.0").unwrap();
    let y = run(&p, &x, &ctx, 1.0, 0);
    let plane: Vec<f64> = y.row(0).iter().take(64).copied().collect();
    assert!(
        plane.iter().all(|v| (v - plane[0]).abs() < 1e-12),
        "contrast 0 is flat"
    );
    let p: Perturbation = toml::from_str("kind = \"stain_shift\"\nshift = 0.5").unwrap();
    assert_ne!(run(&p, &x, &ctx, 1.0, 0), x);
}
