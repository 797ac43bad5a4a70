//! Pharmacokinetics and pharmacodynamics: one- and two-compartment models with IV bolus or
//! first-order oral absorption, log-normal inter-individual variability, allometric weight
//! scaling, proportional-plus-additive residual error and an Emax/Hill response.
//!
//! # Model (Gabrielsson & Weiner, *Pharmacokinetic and Pharmacodynamic Data Analysis*, 5th ed.
//! 2016; Rowland & Tozer, *Clinical Pharmacokinetics and Pharmacodynamics*, 4th ed. 2011)
//!
//! Individual parameters (η ~ N(0, ω²) independent; WT body weight in kg):
//!
//! ```text
//! CL = CL_pop·(WT/70)^0.75·e^η_CL     V1 = V_pop·(WT/70)·e^η_V     ka = ka_pop·e^η_ka
//! Q  = Q_pop·(WT/70)^0.75             V2 = V2_pop·(WT/70)
//! ```
//!
//! One compartment, `k = CL/V1`: IV bolus `C(t) = D/V1·e^(−kt)`; oral (Bateman function)
//! `C(t) = F·D·ka/(V1(ka − k))·(e^(−kt) − e^(−ka·t))`, with `tmax = ln(ka/k)/(ka − k)`.
//!
//! Two compartments, micro-constants `k10 = CL/V1, k12 = Q/V1, k21 = Q/V2`; the hybrid rate
//! constants `α > β` are the roots of `λ² − (k10 + k12 + k21)λ + k10·k21 = 0`. IV bolus:
//! `C(t) = D/V1·[(α − k21)/(α − β)·e^(−αt) + (k21 − β)/(α − β)·e^(−βt)]`; oral:
//! `C(t) = F·D·ka/V1·Σ_{λ∈{α,β,ka}} (k21 − λ)/Π_{μ≠λ}(μ − λ)·e^(−λt)`.
//! In every case `AUC(0, ∞) = F·D/CL` (F = 1 for IV), and the terminal log-slope is `−β`.
//!
//! Observation: `C_obs = C·(1 + σ_prop·ε₁) + σ_add·ε₂`, floored at 0. Response (sigmoid Emax,
//! Hill 1910): `E(C) = E0 + Emax·C^h/(EC50^h + C^h)`, observed with the same error model.
//!
//! Each sample is one patient observed once: dose drawn from `doses`, time uniform in
//! `(0, t_max]`, weight log-normal (median `weight_median`, log-SD `weight_sd_log`, clipped to
//! [35, 180] kg), route by `route`. Columns: dose (mg), time (h), body_weight (kg), oral (1 for
//! oral, 0 for IV bolus). Target: observed concentration (mg/L) or effect (units of `emax`).
//! Label: 1 when the noiseless concentration is at least `label_threshold` (mg/L; default EC50,
//! i.e. the response is at least half-maximal).

use ndarray::Array2;
use rand::rngs::StdRng;
use rand::Rng;
use rand_distr::StandardNormal;

use super::util::{check, check_positive, check_range};
use crate::stress::cohort::{Cohort, Generator, Layout};

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Compartments {
    One,
    Two,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Route {
    IvBolus,
    Oral,
    /// Half of the patients IV, half oral.
    Mixed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    Concentration,
    Effect,
}

/// Parameters of the PK/PD world; every key is optional.
#[derive(Clone, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Params {
    /// "one" or "two" (default "one").
    pub compartments: Compartments,
    /// "iv_bolus", "oral" or "mixed" (default "mixed").
    pub route: Route,
    /// "concentration" (mg/L) or "effect" (default "concentration").
    pub target: Target,
    /// Doses in mg, drawn uniformly (default [100, 200, 400]).
    pub doses: Vec<f64>,
    /// Sampling window in hours (default 24).
    pub t_max: f64,
    /// Body weight: median kg and log-SD (defaults 70, 0.2).
    pub weight_median: f64,
    pub weight_sd_log: f64,
    /// Population clearance L/h, central volume L, absorption rate 1/h, bioavailability
    /// (defaults 5, 50, 1.0, 0.8).
    pub cl: f64,
    pub v: f64,
    pub ka: f64,
    pub f: f64,
    /// Two compartments: inter-compartmental clearance L/h and peripheral volume L (10, 100).
    pub q: f64,
    pub v2: f64,
    /// Inter-individual SDs of log CL, log V1, log ka (defaults 0.3, 0.2, 0.4).
    pub omega_cl: f64,
    pub omega_v: f64,
    pub omega_ka: f64,
    /// Residual error: proportional (fraction) and additive (target unit) SDs (0.1, 0.05).
    pub sigma_prop: f64,
    pub sigma_add: f64,
    /// Emax/Hill response: baseline, maximum effect, EC50 in mg/L, Hill coefficient
    /// (defaults 0, 100, 2, 1.5).
    pub e0: f64,
    pub emax: f64,
    pub ec50: f64,
    pub hill: f64,
    /// Concentration (mg/L) at and above which the label is 1 (default: `ec50`).
    pub label_threshold: Option<f64>,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            compartments: Compartments::One,
            route: Route::Mixed,
            target: Target::Concentration,
            doses: vec![100.0, 200.0, 400.0],
            t_max: 24.0,
            weight_median: 70.0,
            weight_sd_log: 0.2,
            cl: 5.0,
            v: 50.0,
            ka: 1.0,
            f: 0.8,
            q: 10.0,
            v2: 100.0,
            omega_cl: 0.3,
            omega_v: 0.2,
            omega_ka: 0.4,
            sigma_prop: 0.1,
            sigma_add: 0.05,
            e0: 0.0,
            emax: 100.0,
            ec50: 2.0,
            hill: 1.5,
            label_threshold: None,
        }
    }
}

impl Params {
    pub fn validate(&self) -> Result<(), String> {
        check(
            !self.doses.is_empty(),
            "doses",
            "must list at least one dose",
        )?;
        for d in &self.doses {
            check_positive(*d, "doses")?;
        }
        for (v, k) in [
            (self.t_max, "t_max"),
            (self.weight_median, "weight_median"),
            (self.cl, "cl"),
            (self.v, "v"),
            (self.ka, "ka"),
            (self.q, "q"),
            (self.v2, "v2"),
            (self.ec50, "ec50"),
            (self.hill, "hill"),
        ] {
            check_positive(v, k)?;
        }
        check_range(self.f, "f", 0.0, 1.0)?;
        for (v, k) in [
            (self.weight_sd_log, "weight_sd_log"),
            (self.omega_cl, "omega_cl"),
            (self.omega_v, "omega_v"),
            (self.omega_ka, "omega_ka"),
            (self.sigma_prop, "sigma_prop"),
        ] {
            check_range(v, k, 0.0, 2.0)?;
        }
        check(
            self.sigma_add.is_finite() && self.sigma_add >= 0.0,
            "sigma_add",
            "must be a finite number >= 0",
        )?;
        check(
            self.e0.is_finite() && self.emax.is_finite(),
            "emax",
            "e0 and emax must be finite",
        )?;
        if let Some(t) = self.label_threshold {
            check_positive(t, "label_threshold")?;
        }
        Ok(())
    }
}

/// One patient's PK parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Individual {
    pub cl: f64,
    pub v1: f64,
    pub q: f64,
    pub v2: f64,
    pub ka: f64,
    pub f: f64,
}

impl Individual {
    /// Hybrid rate constants (α, β) of the two-compartment model, α ≥ β > 0.
    pub fn alpha_beta(&self) -> (f64, f64) {
        let (k10, k12, k21) = (self.cl / self.v1, self.q / self.v1, self.q / self.v2);
        let sum = k10 + k12 + k21;
        let disc = (sum * sum - 4.0 * k10 * k21).max(0.0).sqrt();
        let alpha = 0.5 * (sum + disc);
        // β = k10·k21/α avoids cancellation when β ≪ α.
        (alpha, k10 * k21 / alpha)
    }
}

/// Plasma concentration (mg/L) at `t` hours after a dose of `dose` mg.
pub fn concentration(ind: &Individual, comp: Compartments, oral: bool, dose: f64, t: f64) -> f64 {
    if t < 0.0 {
        return 0.0;
    }
    match (comp, oral) {
        (Compartments::One, false) => dose / ind.v1 * (-ind.cl / ind.v1 * t).exp(),
        (Compartments::One, true) => {
            let (k, ka) = (ind.cl / ind.v1, ind.ka);
            let scale = ind.f * dose / ind.v1;
            if ((ka - k) / ka).abs() < 1e-9 {
                scale * k * t * (-k * t).exp()
            } else {
                scale * ka / (ka - k) * ((-k * t).exp() - (-ka * t).exp())
            }
        }
        (Compartments::Two, false) => {
            let (a, b) = ind.alpha_beta();
            let k21 = ind.q / ind.v2;
            dose / ind.v1 * ((a - k21) * (-a * t).exp() + (k21 - b) * (-b * t).exp()) / (a - b)
        }
        (Compartments::Two, true) => {
            let (a, b) = ind.alpha_beta();
            let k21 = ind.q / ind.v2;
            let mut ka = ind.ka;
            // Nudge ka off a coincident root (the limit is continuous; the error is ~1e-8).
            for r in [a, b] {
                if ((ka - r) / r).abs() < 1e-7 {
                    ka *= 1.0 + 1e-6;
                }
            }
            let term =
                |l: f64, m1: f64, m2: f64| (k21 - l) / ((m1 - l) * (m2 - l)) * (-l * t).exp();
            ind.f * dose * ka / ind.v1 * (term(a, b, ka) + term(b, a, ka) + term(ka, a, b))
        }
    }
}

/// The PK/PD generator.
#[derive(Clone, Debug)]
pub struct Pk {
    pub params: Params,
}

impl Pk {
    pub fn new(params: Params) -> Self {
        Pk { params }
    }

    /// Sigmoid Emax response at concentration `c` (mg/L).
    pub fn effect(&self, c: f64) -> f64 {
        let p = &self.params;
        let ch = c.max(0.0).powf(p.hill);
        p.e0 + p.emax * ch / (p.ec50.powf(p.hill) + ch)
    }

    /// The population-typical individual of weight `wt` kg (all η = 0).
    pub fn typical(&self, wt: f64) -> Individual {
        let p = &self.params;
        let r = wt / 70.0;
        Individual {
            cl: p.cl * r.powf(0.75),
            v1: p.v * r,
            q: p.q * r.powf(0.75),
            v2: p.v2 * r,
            ka: p.ka,
            f: p.f,
        }
    }

    /// One patient of weight `wt` kg with log-normal variability on CL, V1 and ka.
    pub fn draw_individual(&self, wt: f64, rng: &mut StdRng) -> Individual {
        let p = &self.params;
        let mut ind = self.typical(wt);
        let (e1, e2, e3): (f64, f64, f64) = (
            rng.sample(StandardNormal),
            rng.sample(StandardNormal),
            rng.sample(StandardNormal),
        );
        ind.cl *= (p.omega_cl * e1).exp();
        ind.v1 *= (p.omega_v * e2).exp();
        ind.ka *= (p.omega_ka * e3).exp();
        ind
    }
}

impl Generator for Pk {
    fn generate(&self, n: usize, rng: &mut StdRng) -> Cohort {
        let p = &self.params;
        let threshold = p.label_threshold.unwrap_or(p.ec50);
        let mut x = Array2::zeros((n, 4));
        let mut targets = Vec::with_capacity(n);
        let mut labels = Vec::with_capacity(n);
        for i in 0..n {
            let dose = p.doses[rng.random_range(0..p.doses.len())];
            let t = p.t_max * (1.0 - rng.random::<f64>());
            let z: f64 = rng.sample(StandardNormal);
            let wt = (p.weight_median * (p.weight_sd_log * z).exp()).clamp(35.0, 180.0);
            let oral = match p.route {
                Route::IvBolus => false,
                Route::Oral => true,
                Route::Mixed => rng.random::<bool>(),
            };
            let ind = self.draw_individual(wt, rng);
            let c = concentration(&ind, p.compartments, oral, dose, t);
            let truth = match p.target {
                Target::Concentration => c,
                Target::Effect => self.effect(c),
            };
            let (e1, e2): (f64, f64) = (rng.sample(StandardNormal), rng.sample(StandardNormal));
            let obs = (truth * (1.0 + p.sigma_prop * e1) + p.sigma_add * e2).max(0.0);
            x[[i, 0]] = dose;
            x[[i, 1]] = t;
            x[[i, 2]] = wt;
            x[[i, 3]] = f64::from(u8::from(oral));
            targets.push(obs);
            labels.push(usize::from(c >= threshold));
        }
        Cohort {
            x,
            feature_names: ["dose", "time", "body_weight", "oral"]
                .map(String::from)
                .to_vec(),
            units: ["mg", "h", "kg", ""].map(String::from).to_vec(),
            layout: Layout::Tabular,
            labels: Some(labels),
            class_names: vec!["below_threshold".into(), "above_threshold".into()],
            targets: Some(targets),
            batch: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn effect_is_half_maximal_at_ec50() {
        let pk = Pk::new(Params::default());
        assert!((pk.effect(2.0) - 50.0).abs() < 1e-12);
        assert!(pk.effect(0.0) == 0.0 && pk.effect(1e6) > 99.99);
    }

    #[test]
    fn two_compartment_starts_at_dose_over_v1() {
        let ind = Pk::new(Params::default()).typical(70.0);
        let c0 = concentration(&ind, Compartments::Two, false, 100.0, 0.0);
        assert!((c0 - 2.0).abs() < 1e-12);
        assert!(concentration(&ind, Compartments::Two, true, 100.0, 0.0).abs() < 1e-12);
    }
}
