//! Statistical tests of the stress generators: each checks a property of the published model
//! that a wrong implementation would break. Seeds are fixed; every tolerance is stated next to
//! the sampling error it allows for.

use beacons::stress::generators::{
    cell_image, ecg, pk, single_cell, vitals, Generator, GeneratorSpec,
};
use ndarray::Axis;
use rand::rngs::StdRng;
use rand::SeedableRng;

fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

fn corr(a: &[f64], b: &[f64]) -> f64 {
    let (ma, mb) = (mean(a), mean(b));
    let cov: f64 = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = a.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = b.iter().map(|y| (y - mb).powi(2)).sum();
    cov / (va * vb).sqrt()
}

/// Least-squares slope and intercept of y on x.
fn fit(x: &[f64], y: &[f64]) -> (f64, f64) {
    let (mx, my) = (mean(x), mean(y));
    let sxy: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
    let sxx: f64 = x.iter().map(|a| (a - mx).powi(2)).sum();
    let slope = sxy / sxx;
    (slope, my - slope * mx)
}

// ---------------------------------------------------------------- single cell (Splatter)

/// One type, one batch, fixed library size: every cell of gene i has the same mean μ_i, so the
/// counts' variance must be μ + φ²μ² with φ = (bcv_common + 1/√μ)·√(df/χ²_i). The ratio of
/// the sample variance to it has a sampling SD of ~0.03–0.06 per gene (3,000 cells); its mean
/// over the genes ~0.003. A Poisson-only model gives ratios ~0.3, ignoring the per-gene χ²
/// factor scatters them with SD ~0.18 (√(2/df)).
#[test]
fn gamma_poisson_variance_is_mu_plus_phi2_mu2() {
    let sc = single_cell::SingleCell::new(single_cell::Params {
        n_genes: 300,
        group_probs: vec![1.0],
        batch_probs: vec![1.0],
        lib_scale: 0.0,
        dropout: false,
        bcv_common: 0.2,
        ..Default::default()
    });
    let (c, truth) = sc.simulate(3000, &mut rng(11), true);
    let t = truth.unwrap();
    let mut ratios = Vec::new();
    let mut mean_err = Vec::new();
    for i in 0..300 {
        let mu = t.cell_means[[0, i]];
        if mu < 0.5 {
            continue;
        }
        let col = c.x.column(i);
        let m = col.mean().unwrap();
        let v = col.var(1.0);
        let phi = (0.2 + 1.0 / mu.sqrt()) * t.bcv_scale[i];
        ratios.push(v / (mu + phi * phi * mu * mu));
        mean_err.push((m - mu) / (mu + phi * phi * mu * mu).sqrt() * (3000f64).sqrt());
    }
    assert!(ratios.len() > 150, "{} genes with mu >= 0.5", ratios.len());
    let r = mean(&ratios);
    assert!((r - 1.0).abs() < 0.03, "mean variance ratio {r}");
    let close = ratios.iter().filter(|r| (*r - 1.0).abs() < 0.15).count() as f64;
    assert!(
        close / ratios.len() as f64 > 0.9,
        "only {close} genes within 15%"
    );
    // Standardised mean errors are N(0, 1): their RMS is 1 ± ~0.1.
    let rms = (mean_err.iter().map(|e| e * e).sum::<f64>() / mean_err.len() as f64).sqrt();
    assert!(
        (0.8..1.2).contains(&rms),
        "RMS standardised mean error {rms}"
    );
}

/// P(count = 0 | m) = p_d(m) + (1 − p_d(m))·e^(−m) with p_d the logistic in ln m. Checked per
/// bin of ln m against the binomial SD (4 SD + 0.005); a dropout on μ instead of m, a flipped
/// shape or a missing dropout fails in the bins around the midpoint by 10+ SD.
#[test]
fn dropout_probability_follows_the_logistic_in_log_mean() {
    let (mid, shape) = (1.0, -1.5);
    let sc = single_cell::SingleCell::new(single_cell::Params {
        n_genes: 300,
        group_probs: vec![1.0],
        batch_probs: vec![1.0],
        lib_loc: 6.5,
        dropout_mid: mid,
        dropout_shape: shape,
        ..Default::default()
    });
    let (c, truth) = sc.simulate(2000, &mut rng(12), true);
    let m = truth.unwrap().true_means;
    let nb = 16;
    let (mut n, mut zeros, mut expect) = (vec![0.0; nb], vec![0.0; nb], vec![0.0; nb]);
    for (y, m) in c.x.iter().zip(m.iter()) {
        let b = ((m.ln() + 3.0) / 0.5).floor();
        if !(0.0..nb as f64).contains(&b) {
            continue;
        }
        let b = b as usize;
        let pd = 1.0 / (1.0 + (-shape * (m.ln() - mid)).exp());
        n[b] += 1.0;
        zeros[b] += f64::from(u8::from(*y == 0.0));
        expect[b] += pd + (1.0 - pd) * (-m).exp();
    }
    let mut checked = 0;
    for b in 0..nb {
        if n[b] < 500.0 {
            continue;
        }
        let (obs, exp) = (zeros[b] / n[b], expect[b] / n[b]);
        let sd = (exp * (1.0 - exp) / n[b]).sqrt();
        assert!(
            (obs - exp).abs() < 4.0 * sd + 0.005,
            "bin {b}: zeros {obs} vs {exp}"
        );
        checked += 1;
    }
    assert!(checked >= 8, "only {checked} bins populated");
}

/// Library-size-normalised expression of a gene in a type over the other types tracks its DE
/// factor: strong markers (factor ≥ 1.5 or ≤ 1/1.5) move in their direction, and the log
/// ratios correlate with the log factors.
#[test]
fn marker_genes_are_up_in_their_type() {
    let sc = single_cell::SingleCell::new(single_cell::Params {
        batch_probs: vec![1.0],
        ..Default::default()
    });
    let c = sc.generate(3000, &mut rng(13));
    let labels = c.labels.as_ref().unwrap();
    let lib = c.x.sum_axis(Axis(1));
    let k = sc.params.group_probs.len();
    let (mut right, mut strong, mut lf, mut lr) = (0, 0, Vec::new(), Vec::new());
    for g in 0..k {
        for i in 0..sc.params.n_genes {
            let f = sc.world.de_factors[[g, i]];
            if f == 1.0 {
                continue;
            }
            let (mut a, mut na, mut b, mut nb) = (0.0, 0.0, 0.0, 0.0);
            for j in 0..c.len() {
                let v = c.x[[j, i]] / lib[j];
                if labels[j] == g {
                    a += v;
                    na += 1.0;
                } else {
                    b += v;
                    nb += 1.0;
                }
            }
            let ratio = (a / na) / (b / nb).max(1e-12);
            if ratio > 0.0 && sc.world.gene_means[i] > 0.5 {
                lf.push(f.ln());
                lr.push(ratio.ln());
            }
            if !(1.0 / 1.5..1.5).contains(&f) && sc.world.gene_means[i] > 0.5 {
                strong += 1;
                right += usize::from((ratio > 1.0) == (f > 1.0));
            }
        }
    }
    assert!(strong >= 10, "{strong} strong markers");
    assert!(
        right as f64 >= 0.95 * strong as f64,
        "{right}/{strong} in their direction"
    );
    let r = corr(&lf, &lr);
    assert!(r > 0.8, "log ratio vs log DE factor correlation {r}");
}

/// Two batches, no types: per gene, log(mean in batch 1 / mean in batch 0) = log(B₁/B₀) + a
/// constant (the library normalisation); the slope is 1 (±0.1, its SE is ~0.02 here).
#[test]
fn batch_factors_are_gene_wise_multiplicative() {
    let sc = single_cell::SingleCell::new(single_cell::Params {
        group_probs: vec![1.0],
        batch_scale: 0.3,
        dropout: false,
        ..Default::default()
    });
    let c = sc.generate(4000, &mut rng(14));
    let batch = c.batch.as_ref().unwrap();
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for i in 0..sc.params.n_genes {
        if sc.world.gene_means[i] < 1.0 {
            continue;
        }
        let (mut s, mut n) = ([0.0; 2], [0.0; 2]);
        for j in 0..c.len() {
            s[batch[j]] += c.x[[j, i]];
            n[batch[j]] += 1.0;
        }
        let bf = &sc.world.batch_factors;
        x.push((bf[[1, i]] / bf[[0, i]]).ln());
        y.push((s[1] / n[1] / (s[0] / n[0])).ln());
    }
    let (slope, _) = fit(&x, &y);
    assert!((slope - 1.0).abs() < 0.1, "slope {slope}");
    assert!(corr(&x, &y) > 0.9);
}

// ---------------------------------------------------------------- ECG (McSharry)

/// R peaks by a threshold-and-refractory detector on the signal alone.
fn detect_r_peaks(sig: &[f64], fs: f64) -> Vec<f64> {
    let mut sorted = sig.to_vec();
    sorted.sort_by(f64::total_cmp);
    let (med, top) = (sorted[sorted.len() / 2], sorted[sorted.len() * 995 / 1000]);
    let thr = med + 0.5 * (top - med);
    let refractory = (0.25 * fs) as usize;
    let mut peaks: Vec<usize> = Vec::new();
    let mut i = 1;
    while i + 1 < sig.len() {
        if sig[i] > thr && sig[i] >= sig[i - 1] && sig[i] >= sig[i + 1] {
            // Take the maximum within the refractory window.
            let end = (i + refractory / 2).min(sig.len());
            let j = (i..end)
                .max_by(|a, b| sig[*a].total_cmp(&sig[*b]))
                .unwrap_or(i);
            peaks.push(j);
            i = j + refractory;
        } else {
            i += 1;
        }
    }
    peaks.into_iter().map(|i| i as f64 / fs).collect()
}

fn rr(peaks: &[f64]) -> Vec<f64> {
    peaks.windows(2).map(|w| w[1] - w[0]).collect()
}

fn ecg_with(params: ecg::Params) -> ecg::Ecg {
    ecg::Ecg::new(params)
}

/// Normal sinus at 70 bpm with hr_std 5: the mean RR is 60/70 s (±1 %; the SE of the mean over
/// 40 one-minute records is ~0.3 %), and the SD of RR about it is 60·5/70² = 61 ms (±15 %;
/// ~300 effective independent samples give an SE of ~4 %). With hr_std 0 the detected RR SD is
/// below 3 ms (the 4 ms sampling grid alone gives 4/√6 = 1.6 ms).
#[test]
fn rr_intervals_match_heart_rate_and_hrv() {
    let model = ecg_with(ecg::Params {
        duration_s: 60.0,
        hr_std: 5.0,
        ..Default::default()
    });
    let mut all = Vec::new();
    for s in 0..40 {
        all.extend(rr(&model.record(0, &mut rng(100 + s)).r_peaks));
    }
    let m = mean(&all);
    assert!((m / (60.0 / 70.0) - 1.0).abs() < 0.01, "mean RR {m}");
    let sd = (all.iter().map(|r| (r - 60.0 / 70.0).powi(2)).sum::<f64>() / all.len() as f64).sqrt();
    let want = 60.0 * 5.0 / (70.0 * 70.0);
    assert!((sd / want - 1.0).abs() < 0.15, "RR SD {sd} vs {want}");

    let flat = ecg_with(ecg::Params {
        duration_s: 30.0,
        hr_std: 0.0,
        ..Default::default()
    });
    let rec = flat.record(0, &mut rng(7));
    let det = rr(&detect_r_peaks(&rec.signal, 250.0));
    let m = mean(&det);
    let sd = (det.iter().map(|r| (r - m).powi(2)).sum::<f64>() / det.len() as f64).sqrt();
    assert!(
        sd < 0.003 && (m / (60.0 / 70.0) - 1.0).abs() < 0.01,
        "{m} {sd}"
    );
}

/// A detector that sees only the signal finds every true R peak within 20 ms and nothing else
/// (sensitivity and positive predictive value ≥ 98 %) in every rhythm; tachycardia and
/// bradycardia have mean RR 60/120 and 60/45 s (±2 %).
#[test]
fn r_peaks_are_detectable_and_rates_follow_the_rhythm() {
    let model = ecg_with(ecg::Params::default());
    for class in 0..5 {
        let (mut tp, mut truth, mut found, mut det_rr) = (0, 0, 0, Vec::new());
        for s in 0..20 {
            let rec = model.record(class, &mut rng(200 + s));
            let det = detect_r_peaks(&rec.signal, 250.0);
            // Ignore peaks within 0.1 s of the record's ends.
            let inner = |t: &&f64| **t > 0.1 && **t < 9.9;
            let t: Vec<f64> = rec.r_peaks.iter().filter(inner).copied().collect();
            let d: Vec<f64> = det.iter().filter(inner).copied().collect();
            tp += t
                .iter()
                .filter(|a| d.iter().any(|b| (*a - b).abs() < 0.02))
                .count();
            truth += t.len();
            found += d.len();
            det_rr.extend(rr(&det));
        }
        let (sens, ppv) = (tp as f64 / truth as f64, tp as f64 / found as f64);
        assert!(
            sens >= 0.98 && ppv >= 0.98,
            "class {class}: sens {sens} ppv {ppv}"
        );
        let want = match class {
            1 => 60.0 / 120.0,
            2 => 60.0 / 45.0,
            _ => continue,
        };
        let m = mean(&det_rr);
        assert!(
            (m / want - 1.0).abs() < 0.02,
            "class {class}: mean RR {m} vs {want}"
        );
    }
}

/// AF-like rhythm: RR coefficient of variation ≈ af_rr_cv (±25 %), and the successive-difference
/// irregularity (RMSSD / mean RR) at least 4× that of normal sinus rhythm.
#[test]
fn atrial_fibrillation_rr_is_irregular() {
    let model = ecg_with(ecg::Params {
        duration_s: 30.0,
        ..Default::default()
    });
    let stats = |class: usize| {
        let mut rrs = Vec::new();
        let mut sq = Vec::new();
        for s in 0..20 {
            let r = rr(&model.record(class, &mut rng(300 + s)).r_peaks);
            sq.extend(r.windows(2).map(|w| (w[1] - w[0]).powi(2)));
            rrs.extend(r);
        }
        let m = mean(&rrs);
        let sd = (rrs.iter().map(|r| (r - m).powi(2)).sum::<f64>() / rrs.len() as f64).sqrt();
        (sd / m, mean(&sq).sqrt() / m)
    };
    let (cv_af, irr_af) = stats(3);
    let (_, irr_n) = stats(0);
    assert!((cv_af / 0.2 - 1.0).abs() < 0.25, "AF RR CV {cv_af}");
    assert!(irr_af > 4.0 * irr_n, "AF {irr_af} vs normal {irr_n}");
}

/// Mean signal where the P wave sits (RR·(HR/60)^{1/4}/6 before each R peak) minus the signal
/// 40 ms earlier (the P wave's upstroke), at the same mean rate in both rhythms: a clear bump
/// in sinus rhythm, under a quarter of it in AF (its f-waves and irregular T tails average out).
#[test]
fn p_waves_are_absent_in_atrial_fibrillation() {
    let model = ecg_with(ecg::Params {
        noise_mv: 0.0,
        af_hr: 70.0,
        ..Default::default()
    });
    let p_amp = |class: usize| {
        let mut acc = Vec::new();
        for s in 0..20 {
            let rec = model.record(class, &mut rng(400 + s));
            for w in rec.r_peaks.windows(2) {
                let lead = (w[1] - w[0]) * (70.0f64 / 60.0).powf(0.25) / 6.0;
                let at = |t: f64| rec.signal[((t * 250.0).round() as usize).min(2499)];
                acc.push(at(w[1] - lead) - at(w[1] - lead - 0.04));
            }
        }
        mean(&acc)
    };
    let (normal, af) = (p_amp(0), p_amp(3));
    assert!(normal > 0.1, "sinus P upstroke {normal} mV");
    assert!(
        af.abs() < 0.25 * normal,
        "AF P upstroke {af} mV vs sinus {normal} mV"
    );
}

/// PVC rhythm: with the next beat after an ectopic one never ectopic, the ectopic share is
/// p/(1 + p) (±0.035; SE ~0.01 over ~1,400 beats); ectopic beats (after a normal one) come
/// after pvc_coupling·RR (±0.02) and are followed by the compensatory pause (2 − coupling)·RR.
#[test]
fn pvcs_are_premature_with_a_compensatory_pause() {
    let model = ecg_with(ecg::Params {
        duration_s: 30.0,
        ..Default::default()
    });
    let (mut ect, mut total, mut pre, mut post) = (0, 0, Vec::new(), Vec::new());
    for s in 0..40 {
        let rec = model.record(4, &mut rng(500 + s));
        let r = rr(&rec.r_peaks);
        for k in 2..rec.r_peaks.len() - 1 {
            total += 1;
            ect += usize::from(rec.ectopic[k]);
            if rec.ectopic[k] && !rec.ectopic[k - 2] {
                pre.push(r[k - 1] / r[k - 2]);
                post.push((r[k - 1] + r[k]) / (2.0 * r[k - 2]));
            }
        }
    }
    let share = ect as f64 / total as f64;
    assert!((share - 0.2 / 1.2).abs() < 0.035, "ectopic share {share}");
    assert!((mean(&pre) - 0.6).abs() < 0.02, "coupling {}", mean(&pre));
    assert!(
        (mean(&post) - 1.0).abs() < 0.02,
        "compensation {}",
        mean(&post)
    );
}

// ---------------------------------------------------------------- PK/PD

/// Trapezoidal AUC on a 0.0005 h grid to 30 terminal half-lives plus the C_last/λ tail.
fn auc(f: impl Fn(f64) -> f64, slowest: f64) -> f64 {
    let t_end = 30.0 * std::f64::consts::LN_2 / slowest;
    let dt = 0.0005;
    let n = (t_end / dt) as usize;
    let mut s = 0.0;
    let mut prev = f(0.0);
    for i in 1..=n {
        let c = f(i as f64 * dt);
        s += 0.5 * (prev + c) * dt;
        prev = c;
    }
    s + prev / slowest
}

/// AUC(0, ∞) = F·D/CL (F = 1 for IV) within 1 % for both models and routes, for typical and
/// for drawn individuals (a wrong Bateman or bi-exponential coefficient moves it by far more).
#[test]
fn auc_equals_dose_over_clearance() {
    let model = pk::Pk::new(pk::Params::default());
    let mut r = rng(21);
    let mut inds = vec![model.typical(70.0)];
    for _ in 0..5 {
        inds.push(model.draw_individual(80.0, &mut r));
    }
    for ind in inds {
        for comp in [pk::Compartments::One, pk::Compartments::Two] {
            let slowest = match comp {
                pk::Compartments::One => ind.cl / ind.v1,
                pk::Compartments::Two => ind.alpha_beta().1,
            }
            .min(ind.ka);
            for oral in [false, true] {
                let a = auc(|t| pk::concentration(&ind, comp, oral, 300.0, t), slowest);
                let want = if oral { ind.f } else { 1.0 } * 300.0 / ind.cl;
                assert!(
                    (a / want - 1.0).abs() < 0.01,
                    "{comp:?} oral={oral}: {a} vs {want}"
                );
            }
        }
    }
}

/// The two-compartment hybrid constants solve the characteristic equation, and the late
/// log-concentration slope is −β (relative error < 1e-6).
#[test]
fn two_compartment_terminal_slope_is_beta() {
    let ind = pk::Pk::new(pk::Params::default()).typical(70.0);
    let (a, b) = ind.alpha_beta();
    let (k10, k12, k21) = (ind.cl / ind.v1, ind.q / ind.v1, ind.q / ind.v2);
    assert!((a + b - (k10 + k12 + k21)).abs() < 1e-12);
    assert!((a * b - k10 * k21).abs() < 1e-12);
    for oral in [false, true] {
        let c = |t| pk::concentration(&ind, pk::Compartments::Two, oral, 100.0, t);
        let (t1, t2) = (40.0 / b * 0.25, 40.0 / b * 0.3);
        let slope = (c(t2).ln() - c(t1).ln()) / (t2 - t1);
        assert!(
            (slope / -b - 1.0).abs() < 1e-6,
            "slope {slope} vs -beta {}",
            -b
        );
    }
}

/// Bateman function: the grid maximum sits at tmax = ln(ka/k)/(ka − k) (within the grid step)
/// and equals F·D/V·e^(−k·tmax) (the closed form at the peak, relative 1e-6).
#[test]
fn bateman_cmax_and_tmax() {
    let ind = pk::Pk::new(pk::Params::default()).typical(70.0);
    let (k, ka) = (ind.cl / ind.v1, ind.ka);
    let tmax = (ka / k).ln() / (ka - k);
    let cmax = ind.f * 200.0 / ind.v1 * (-k * tmax).exp();
    let (mut best, mut arg) = (0.0, 0.0);
    for i in 0..200_000 {
        let t = i as f64 * 1e-4;
        let c = pk::concentration(&ind, pk::Compartments::One, true, 200.0, t);
        if c > best {
            best = c;
            arg = t;
        }
    }
    assert!((arg - tmax).abs() <= 1e-4, "tmax {arg} vs {tmax}");
    assert!((best / cmax - 1.0).abs() < 1e-6, "cmax {best} vs {cmax}");
}

/// Inter-individual variability: SD of ln CL, ln V, ln ka equal the omegas (±4 %; SE ~0.5 %
/// with 20,000 draws) around the typical values; allometric scaling CL ∝ WT^0.75, V ∝ WT.
#[test]
fn inter_individual_variability_is_log_normal() {
    let model = pk::Pk::new(pk::Params::default());
    let typ = model.typical(70.0);
    let mut r = rng(22);
    let draws: Vec<pk::Individual> = (0..20_000)
        .map(|_| model.draw_individual(70.0, &mut r))
        .collect();
    for (get, want, base) in [
        (
            Box::new(|i: &pk::Individual| i.cl) as Box<dyn Fn(&pk::Individual) -> f64>,
            0.3,
            typ.cl,
        ),
        (Box::new(|i: &pk::Individual| i.v1), 0.2, typ.v1),
        (Box::new(|i: &pk::Individual| i.ka), 0.4, typ.ka),
    ] {
        let logs: Vec<f64> = draws.iter().map(|i| (get(i) / base).ln()).collect();
        let m = mean(&logs);
        let sd = (logs.iter().map(|l| (l - m).powi(2)).sum::<f64>() / logs.len() as f64).sqrt();
        assert!(
            m.abs() < 0.02 && (sd / want - 1.0).abs() < 0.04,
            "mean {m} sd {sd} vs {want}"
        );
    }
    let heavy = model.typical(140.0);
    assert!((heavy.cl / typ.cl - 2f64.powf(0.75)).abs() < 1e-12);
    assert!((heavy.v1 / typ.v1 - 2.0).abs() < 1e-12);
}

/// Without variability or residual error the cohort's target is exactly the model at its
/// features, and the label is C ≥ EC50; with 10 % proportional error the relative residual SD
/// is 0.1 (±5 %); the effect target is the Emax/Hill function of that concentration.
#[test]
fn pk_cohort_targets_are_the_model_at_the_features() {
    for comp in [pk::Compartments::One, pk::Compartments::Two] {
        let params = pk::Params {
            compartments: comp,
            omega_cl: 0.0,
            omega_v: 0.0,
            omega_ka: 0.0,
            sigma_prop: 0.0,
            sigma_add: 0.0,
            ..Default::default()
        };
        let model = pk::Pk::new(params.clone());
        let c = model.generate(500, &mut rng(23));
        let eff = pk::Pk::new(pk::Params {
            target: pk::Target::Effect,
            ..params.clone()
        })
        .generate(500, &mut rng(23));
        for (i, row) in c.x.rows().into_iter().enumerate() {
            let ind = model.typical(row[2]);
            let want = pk::concentration(&ind, comp, row[3] == 1.0, row[0], row[1]);
            let got = c.targets.as_ref().unwrap()[i];
            assert!(
                (got - want).abs() <= 1e-12 * want.max(1.0),
                "{got} vs {want}"
            );
            assert_eq!(c.labels.as_ref().unwrap()[i], usize::from(want >= 2.0));
            let e = eff.targets.as_ref().unwrap()[i];
            assert!((e - model.effect(want)).abs() < 1e-9);
        }
    }
    let noisy = pk::Pk::new(pk::Params {
        omega_cl: 0.0,
        omega_v: 0.0,
        omega_ka: 0.0,
        sigma_add: 0.0,
        ..Default::default()
    });
    let c = noisy.generate(20_000, &mut rng(24));
    let rel: Vec<f64> = c
        .x
        .rows()
        .into_iter()
        .zip(c.targets.as_ref().unwrap())
        .map(|(row, y)| {
            let ind = noisy.typical(row[2]);
            y / pk::concentration(&ind, pk::Compartments::One, row[3] == 1.0, row[0], row[1]) - 1.0
        })
        .collect();
    let sd = (rel.iter().map(|r| r * r).sum::<f64>() / rel.len() as f64).sqrt();
    assert!((sd / 0.1 - 1.0).abs() < 0.05, "relative residual SD {sd}");
}

// ---------------------------------------------------------------- vitals and labs

/// 20,000 patients: physiological signs of correlation (|r| thresholds are several times the
/// ~0.007 SE), every value in range, and a label that follows the documented risk model:
/// prevalence equals the mean modelled risk (±4 SE) and is far higher at NEWS2 ≥ 7.
#[test]
fn vitals_correlations_ranges_and_label_risk() {
    let model = vitals::Vitals::new(vitals::Params::default());
    let c = model.generate(20_000, &mut rng(31));
    let col = |j: usize| c.x.column(j).to_vec();
    use vitals::*;
    let signs = [
        (HEART_RATE, SYSTOLIC_BP, -0.1),
        (HEART_RATE, RESPIRATORY_RATE, 0.2),
        (SYSTOLIC_BP, DIASTOLIC_BP, 0.5),
        (RESPIRATORY_RATE, SPO2, -0.2),
        (LACTATE, SYSTOLIC_BP, -0.1),
        (TEMPERATURE, WBC, 0.1),
        (LACTATE, CREATININE, 0.1),
        (HEART_RATE, GCS, -0.05),
    ];
    for (a, b, thr) in signs {
        let r = corr(&col(a), &col(b));
        let ok = if thr > 0.0 { r > thr } else { r < thr };
        assert!(
            ok,
            "corr({}, {}) = {r}",
            c.feature_names[a], c.feature_names[b]
        );
    }
    let ranges = vitals::ranges();
    for row in c.x.rows() {
        for (j, v) in row.iter().enumerate() {
            assert!(*v >= ranges[j].0 && *v <= ranges[j].1);
        }
    }
    let labels = c.labels.as_ref().unwrap();
    let prev = labels.iter().sum::<usize>() as f64 / c.len() as f64;
    let risks: Vec<f64> =
        c.x.rows()
            .into_iter()
            .map(|r| model.risk(r.as_slice().unwrap()))
            .collect();
    let expect = mean(&risks);
    let se = (expect * (1.0 - expect) / c.len() as f64).sqrt();
    assert!(
        (prev - expect).abs() < 4.0 * se,
        "prevalence {prev} vs modelled {expect}"
    );
    assert!((0.08..0.3).contains(&prev), "prevalence {prev}");
    let rate = |lo: u32, hi: u32| {
        let (mut n, mut k) = (0.0, 0.0);
        for (row, l) in c.x.rows().into_iter().zip(labels) {
            let s = news2(row.as_slice().unwrap());
            if (lo..=hi).contains(&s) {
                n += 1.0;
                k += *l as f64;
            }
        }
        k / n
    };
    let (low, high) = (rate(0, 4), rate(7, 20));
    assert!(high > 3.0 * low, "event rate NEWS2 0-4 {low}, >= 7 {high}");
    assert_eq!(c.units[CREATININE], "mg/dL");
    assert_eq!(c.units[GLUCOSE], "mg/dL");
}

// ---------------------------------------------------------------- microscopy

/// Shape statistics of the background-subtracted clean images: the aspect ratio from second
/// moments (round < 1.25 < 1.6 < elongated on average) and the centre-to-peak intensity
/// (multilobed nuclei are hollow at their centre: < 0.8, round ones > 0.85).
#[test]
fn image_classes_have_their_shapes() {
    let model = cell_image::CellImage::new(cell_image::Params {
        illumination_gradient: 0.0,
        ..Default::default()
    });
    let (h, w) = (28, 28);
    let stats = |class: usize| {
        let (mut aspect, mut hollow) = (Vec::new(), Vec::new());
        let mut r = rng(40 + class as u64);
        for _ in 0..200 {
            let img = model.clean(class, &mut r);
            let bg = 10.0;
            let wts: Vec<f64> = img.iter().map(|v| (v - bg).max(0.0)).collect();
            let tot: f64 = wts.iter().sum();
            let (mut my, mut mx) = (0.0, 0.0);
            for (k, v) in wts.iter().enumerate() {
                my += v * (k / w) as f64;
                mx += v * (k % w) as f64;
            }
            let (my, mx) = (my / tot, mx / tot);
            let (mut syy, mut sxx, mut sxy) = (0.0, 0.0, 0.0);
            for (k, v) in wts.iter().enumerate() {
                let (dy, dx) = ((k / w) as f64 - my, (k % w) as f64 - mx);
                syy += v * dy * dy;
                sxx += v * dx * dx;
                sxy += v * dx * dy;
            }
            let tr = sxx + syy;
            let det = sxx * syy - sxy * sxy;
            let disc = (tr * tr / 4.0 - det).max(0.0).sqrt();
            aspect.push(((tr / 2.0 + disc) / (tr / 2.0 - disc)).sqrt());
            let centre =
                wts[(my.round() as usize).min(h - 1) * w + (mx.round() as usize).min(w - 1)];
            let peak = wts.iter().copied().fold(0.0, f64::max);
            hollow.push(centre / peak);
        }
        (mean(&aspect), mean(&hollow))
    };
    let (a0, h0) = stats(0);
    let (a1, _) = stats(1);
    let (_, h2) = stats(2);
    assert!(a0 < 1.25 && a1 > 1.6, "aspect round {a0}, elongated {a1}");
    assert!(
        h0 > 0.85 && h2 < 0.8,
        "centre/peak round {h0}, multilobed {h2}"
    );
}

/// Poisson–Gaussian noise: over 3,000 observations of one clean image, the per-pixel variance
/// regressed on the per-pixel mean has slope = gain (±3 %; SE ~0.3 %) and intercept =
/// read_noise² (±25 %); the means match the clean image (±1 %).
#[test]
fn image_noise_variance_is_gain_times_mean_plus_read_variance() {
    let (gain, read) = (2.0, 3.0);
    let model = cell_image::CellImage::new(cell_image::Params {
        gain,
        read_noise: read,
        ..Default::default()
    });
    let mut r = rng(50);
    let clean = model.clean(2, &mut r);
    let n = 3000;
    let (mut s, mut s2) = (vec![0.0; clean.len()], vec![0.0; clean.len()]);
    for _ in 0..n {
        for (k, v) in model.observe(&clean, &mut r).iter().enumerate() {
            s[k] += v;
            s2[k] += v * v;
        }
    }
    let means: Vec<f64> = s.iter().map(|v| v / n as f64).collect();
    let vars: Vec<f64> = s2
        .iter()
        .zip(&means)
        .map(|(q, m)| (q / n as f64 - m * m) * n as f64 / (n as f64 - 1.0))
        .collect();
    let (slope, icpt) = fit(&clean, &vars);
    assert!((slope / gain - 1.0).abs() < 0.03, "slope {slope}");
    assert!(
        (icpt / (read * read) - 1.0).abs() < 0.25,
        "intercept {icpt}"
    );
    let bias = mean(&means) / mean(&clean) - 1.0;
    assert!(bias.abs() < 0.01, "mean bias {bias}");
}

// ---------------------------------------------------------------- all generators

/// Same seed → the same cohort bit for bit; another seed → another cohort.
#[test]
fn generators_are_deterministic_given_the_seed() {
    for kind in ["single_cell", "cell_image", "ecg", "vitals", "pk"] {
        let spec: GeneratorSpec = toml::from_str(&format!("kind = \"{kind}\"")).unwrap();
        let g = spec.build();
        let a = g.generate(20, &mut rng(9));
        let b = g.generate(20, &mut rng(9));
        let c = g.generate(20, &mut rng(10));
        assert_eq!(a.x, b.x, "{kind}");
        assert_eq!(a.labels, b.labels);
        assert_eq!(a.targets, b.targets);
        assert_eq!(a.batch, b.batch);
        assert_ne!(a.x, c.x, "{kind}");
        assert_eq!(spec.build().generate(20, &mut rng(9)).x, a.x);
    }
}

// ---------------------------------------------------------------- beacons synth

fn synth(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_beacons"))
        .arg("synth")
        .args(args)
        .output()
        .unwrap()
}

/// `beacons synth` writes CSV (header, label column) and NPY (+ labels sidecar, meta.json),
/// ignores the scenario's other tables, is reproducible, and points at the bad line.
#[test]
fn synth_writes_csv_and_npy_and_reports_bad_keys() {
    let dir = tempfile::tempdir().unwrap();
    let scen = dir.path().join("scenario.toml");
    std::fs::write(
        &scen,
        "samples = 50\nseed = 3\n[model]\nbinding = \"x\"\n[generator]\nkind = \"vitals\"\n",
    )
    .unwrap();
    let s = scen.to_str().unwrap();
    let csv = dir.path().join("a.csv");
    let out = synth(&[s, "--out", csv.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&csv).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 51);
    assert!(lines[0].starts_with("age,heart_rate,") && lines[0].ends_with(",glucose,label"));
    assert_eq!(lines[1].split(',').count(), 13);
    let again = dir.path().join("b.csv");
    assert!(synth(&[s, "--out", again.to_str().unwrap()])
        .status
        .success());
    assert_eq!(std::fs::read(&again).unwrap(), text.as_bytes());

    let npy = dir.path().join("c.npy");
    let out = synth(&[s, "--out", npy.to_str().unwrap(), "--n", "7", "--seed", "1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(&npy).unwrap();
    let hlen = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = std::str::from_utf8(&bytes[10..10 + hlen]).unwrap();
    assert!(header.contains("'descr': '<f8'") && header.contains("'shape': (7, 12)"));
    assert_eq!(bytes.len(), 10 + hlen + 7 * 12 * 8);
    let age = f64::from_le_bytes(bytes[10 + hlen..18 + hlen].try_into().unwrap());
    assert!((18.0..=90.0).contains(&age));
    let labels = std::fs::read(dir.path().join("c.labels.npy")).unwrap();
    let lh = u16::from_le_bytes([labels[8], labels[9]]) as usize;
    assert!(std::str::from_utf8(&labels[10..10 + lh])
        .unwrap()
        .contains("'<i8'"));
    assert_eq!(labels.len(), 10 + lh + 7 * 8);
    let meta = std::fs::read_to_string(dir.path().join("c.meta.json")).unwrap();
    assert!(meta.contains("\"creatinine\"") && meta.contains("\"mg/dL\""));

    std::fs::write(&scen, "[generator]\nkind = \"vitals\"\nseverity = 1\n").unwrap();
    let out = synth(&[s, "--out", csv.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        err.contains("scenario.toml:") && err.contains("severity"),
        "{err}"
    );
    std::fs::write(
        &scen,
        "[generator]\nkind = \"vitals\"\ndeteriorating_fraction = 2\n",
    )
    .unwrap();
    let out = synth(&[s, "--out", csv.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        err.contains("scenario.toml:3:1") && err.contains("deteriorating_fraction"),
        "{err}"
    );
}
