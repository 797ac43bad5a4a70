//! Single-lead ECG from the dynamical model of McSharry, Clifford, Tarassenko & Smith 2003
//! (*A dynamical model for generating synthetic electrocardiogram signals*, IEEE Trans. Biomed.
//! Eng. 50(3):289–294; the ECGSYN model), with heart-rate variability and arrhythmias.
//!
//! # Model
//!
//! A trajectory circles the unit limit cycle in (x, y); each of the P, Q, R, S, T events is a
//! Gaussian bump at an angle `θ_i` that pushes z up or down:
//!
//! ```text
//! ẋ = αx − ωy,   ẏ = αy + ωx,   α = 1 − √(x² + y²),   ω = 2π/RR
//! ż = −Σ_{i∈{P,Q,R,S,T}} a_i·Δθ_i·exp(−Δθ_i²/(2b_i²)) − (z − z₀(t))
//! Δθ_i = (atan2(y, x) − θ_i) wrapped to (−π, π],   z₀(t) = A·sin(2π f_resp t)  (A: respiration_mv)
//! θ = (−π/3, −π/12, 0, π/12, π/2),  a = (1.2, −5, 30, −7.5, 0.75),  b = (0.25, 0.1, 0.1, 0.1, 0.4)
//! ```
//!
//! integrated by fourth-order Runge–Kutta at a fixed step of `1/(2·sample_rate_hz)` and kept every
//! second step. As in ECGSYN the widths scale with the mean rate (`b_i·√(HR/60)`, and the P, Q, S,
//! T angles by `(HR/60)^{1/4}`, `√(HR/60)`), and z is mapped affinely so that a noiseless normal
//! beat at `hr_mean` spans −0.4 … 1.2 mV. ω is constant from one R peak (θ = 0) to the next, so
//! the RR interval started at each R peak is exactly its R-to-R time.
//!
//! **RR tachogram** (sinus rhythms): a Gaussian process with the bimodal spectrum
//! `S(f) = σ₁²·G(f; f₁, c₁) + σ₂²·G(f; f₂, c₂)` (G a unit-area Gaussian; f₁ the Mayer wave at
//! 0.1 Hz, f₂ respiratory sinus arrhythmia at 0.25 Hz, c = 0.01 Hz, σ₁²/σ₂² = LF/HF), synthesised
//! as a sum of cosines with random phases on a 1/1024 Hz grid and scaled to mean `60/HR` s and
//! SD `60·hr_std/HR²` s; the interval starting at an R peak at time t is `RR(t)`.
//!
//! **Rhythms** (labels): 0 normal sinus (`hr_mean`); 1 sinus tachycardia (`tachy_hr`);
//! 2 sinus bradycardia (`brady_hr`); 3 atrial-fibrillation-like: intervals i.i.d. log-normal
//! with mean `60/af_hr` and coefficient of variation `af_rr_cv`, no P wave, fibrillatory
//! f-waves of `af_f_wave_mv` at ~`af_f_wave_hz`; 4 premature ventricular contractions: sinus
//! rhythm in which each beat is, with probability `pvc_prob`, an ectopic beat after
//! `pvc_coupling·RR`, followed by a compensatory pause `(2 − pvc_coupling)·RR`, with no P wave,
//! a 2.5× wider QRS of 1.5× the area and a discordant (negative) T wave.
//!
//! Measurement noise: white Gaussian, `noise_mv`. Columns `lead0_t0000`, … (mV);
//! `Layout::Signal { channels: 1, len: duration_s·sample_rate_hz }`.

use std::f64::consts::PI;

use ndarray::Array2;
use rand::rngs::StdRng;
use rand::Rng;
use rand_distr::StandardNormal;

use super::util::{
    categorical, check, check_nonneg, check_positive, check_probs, check_range, par_rows,
};
use crate::stress::cohort::{Cohort, Generator, Layout};

pub const CLASS_NAMES: [&str; 5] = [
    "normal_sinus",
    "sinus_tachycardia",
    "sinus_bradycardia",
    "atrial_fibrillation",
    "pvc",
];

/// Parameters of the ECG world; every key is optional.
#[derive(Clone, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Params {
    /// Output sampling rate and record length (defaults 250 Hz, 10 s).
    pub sample_rate_hz: f64,
    pub duration_s: f64,
    /// Weights of the five rhythms (default all 1).
    pub class_probs: Vec<f64>,
    /// Mean heart rates in beats/min: normal, tachycardia, bradycardia, AF (70, 120, 45, 100).
    pub hr_mean: f64,
    pub tachy_hr: f64,
    pub brady_hr: f64,
    pub af_hr: f64,
    /// Heart-rate SD in beats/min of the sinus tachogram (default 2).
    pub hr_std: f64,
    /// LF/HF power ratio, Mayer and RSA frequencies and widths in Hz (0.5, 0.1, 0.25, 0.01, 0.01).
    pub lf_hf_ratio: f64,
    pub mayer_hz: f64,
    pub rsa_hz: f64,
    pub mayer_width_hz: f64,
    pub rsa_width_hz: f64,
    /// AF: coefficient of variation of RR, f-wave amplitude (mV) and frequency (0.2, 0.05, 6).
    pub af_rr_cv: f64,
    pub af_f_wave_mv: f64,
    pub af_f_wave_hz: f64,
    /// PVC rhythm: ectopic probability per beat and coupling ratio (0.2, 0.6).
    pub pvc_prob: f64,
    pub pvc_coupling: f64,
    /// Respiratory baseline wander amplitude in mV and frequency (0.15 mV, 0.25 Hz).
    pub respiration_mv: f64,
    pub respiration_hz: f64,
    /// White measurement noise SD in mV (default 0.01).
    pub noise_mv: f64,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            sample_rate_hz: 250.0,
            duration_s: 10.0,
            class_probs: vec![1.0; 5],
            hr_mean: 70.0,
            tachy_hr: 120.0,
            brady_hr: 45.0,
            af_hr: 100.0,
            hr_std: 2.0,
            lf_hf_ratio: 0.5,
            mayer_hz: 0.1,
            rsa_hz: 0.25,
            mayer_width_hz: 0.01,
            rsa_width_hz: 0.01,
            af_rr_cv: 0.2,
            af_f_wave_mv: 0.05,
            af_f_wave_hz: 6.0,
            pvc_prob: 0.2,
            pvc_coupling: 0.6,
            respiration_mv: 0.15,
            respiration_hz: 0.25,
            noise_mv: 0.01,
        }
    }
}

impl Params {
    pub fn validate(&self) -> Result<(), String> {
        check_range(self.sample_rate_hz, "sample_rate_hz", 50.0, 10_000.0)?;
        check_range(self.duration_s, "duration_s", 1.0, 3600.0)?;
        check_probs(&self.class_probs, "class_probs")?;
        check(
            self.class_probs.len() == 5,
            "class_probs",
            "must have five weights (normal, tachycardia, bradycardia, AF, PVC)",
        )?;
        for (v, k) in [
            (self.hr_mean, "hr_mean"),
            (self.tachy_hr, "tachy_hr"),
            (self.brady_hr, "brady_hr"),
            (self.af_hr, "af_hr"),
        ] {
            check_range(v, k, 25.0, 250.0)?;
        }
        check_range(self.hr_std, "hr_std", 0.0, 20.0)?;
        check_positive(self.lf_hf_ratio, "lf_hf_ratio")?;
        for (v, k) in [
            (self.mayer_hz, "mayer_hz"),
            (self.rsa_hz, "rsa_hz"),
            (self.mayer_width_hz, "mayer_width_hz"),
            (self.rsa_width_hz, "rsa_width_hz"),
        ] {
            check_range(v, k, 0.001, 0.45)?;
        }
        check_range(self.af_rr_cv, "af_rr_cv", 0.0, 1.0)?;
        check_range(self.af_f_wave_hz, "af_f_wave_hz", 0.0, 20.0)?;
        check_range(self.pvc_prob, "pvc_prob", 0.0, 0.5)?;
        check_range(self.pvc_coupling, "pvc_coupling", 0.3, 0.95)?;
        check_range(self.respiration_hz, "respiration_hz", 0.0, 2.0)?;
        for (v, k) in [
            (self.af_f_wave_mv, "af_f_wave_mv"),
            (self.respiration_mv, "respiration_mv"),
            (self.noise_mv, "noise_mv"),
        ] {
            check_nonneg(v, k)?;
        }
        Ok(())
    }
}

/// Angles, amplitudes and widths of the P, Q, R, S, T events of one beat.
#[derive(Clone, Copy, Debug)]
struct Morphology {
    theta: [f64; 5],
    a: [f64; 5],
    b: [f64; 5],
}

impl Morphology {
    /// The normal beat of ECGSYN, scaled to a mean heart rate.
    fn normal(hr: f64) -> Self {
        let f1 = (hr / 60.0).sqrt();
        let f2 = f1.sqrt();
        let theta = [
            -PI / 3.0 * f2,
            -PI / 12.0 * f1,
            0.0,
            PI / 12.0 * f1,
            PI / 2.0 * f2,
        ];
        let b = [0.25, 0.1, 0.1, 0.1, 0.4].map(|v| v * f1);
        Morphology {
            theta,
            a: [1.2, -5.0, 30.0, -7.5, 0.75],
            b,
        }
    }

    fn without_p(mut self) -> Self {
        self.a[0] = 0.0;
        self
    }

    /// Ectopic ventricular beat: no P, QRS 2.5× wider with 1.5× the area (z ∝ a·b²), T inverted.
    fn pvc(self) -> Self {
        let mut m = self.without_p();
        for i in 1..4 {
            m.b[i] *= 2.5;
            m.a[i] *= 1.5 / (2.5 * 2.5);
        }
        m.a[4] = -1.5 * self.a[4];
        m
    }

    fn dz(&self, theta: f64) -> f64 {
        let mut s = 0.0;
        for i in 0..5 {
            let mut d = theta - self.theta[i];
            d -= 2.0 * PI * ((d + PI) / (2.0 * PI)).floor();
            // Beyond 7 widths a bump contributes < e^-24 of its peak: skip the exp.
            if d.abs() < 7.0 * self.b[i] {
                s += self.a[i] * d * (-0.5 * d * d / (self.b[i] * self.b[i])).exp();
            }
        }
        s
    }
}

/// One record and its ground truth.
#[derive(Clone, Debug)]
pub struct Record {
    /// Samples in mV at `sample_rate_hz`.
    pub signal: Vec<f64>,
    /// Times (s) at which the trajectory crosses θ = 0 (the R peaks).
    pub r_peaks: Vec<f64>,
    /// Whether each R peak belongs to an ectopic (PVC) beat.
    pub ectopic: Vec<bool>,
}

/// Fourier-synthesised sinus tachogram of one record.
struct Tachogram {
    freqs: Vec<f64>,
    amps: Vec<f64>,
    phases: Vec<f64>,
}

/// The ECG generator.
#[derive(Clone, Debug)]
pub struct Ecg {
    pub params: Params,
    /// Affine map from model z to mV.
    scale: (f64, f64),
}

impl Ecg {
    pub fn new(params: Params) -> Self {
        let mut ecg = Ecg {
            params,
            scale: (f64::INFINITY, 0.0),
        };
        // Reference: a noiseless, wander-free normal record at hr_mean without HRV.
        let p = &ecg.params;
        let rr = 60.0 / p.hr_mean;
        let m = Morphology::normal(p.hr_mean);
        let z = ecg.integrate(2.0 * rr + 0.5, 0.0, &mut |_, _| (rr, m), &mut |_| 0.0);
        let settled = &z.0[z.0.len() / 2..];
        let lo = settled.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = settled.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let gain = 1.6 / (hi - lo).max(1e-9);
        ecg.scale = (gain, -0.4 - gain * lo);
        ecg
    }

    fn tachogram(&self, rng: &mut StdRng) -> Tachogram {
        let p = &self.params;
        let (v1, v2) = (
            p.lf_hf_ratio / (1.0 + p.lf_hf_ratio),
            1.0 / (1.0 + p.lf_hf_ratio),
        );
        let g = |f: f64, m: f64, c: f64| {
            (-(f - m).powi(2) / (2.0 * c * c)).exp() / ((2.0 * PI).sqrt() * c)
        };
        let df = 1.0 / 1024.0;
        let (mut freqs, mut amps, mut phases) = (Vec::new(), Vec::new(), Vec::new());
        for k in 1..512 {
            let f = k as f64 * df;
            let s = v1 * g(f, p.mayer_hz, p.mayer_width_hz) + v2 * g(f, p.rsa_hz, p.rsa_width_hz);
            if s > 1e-8 {
                freqs.push(f);
                amps.push(s * df);
                phases.push(2.0 * PI * rng.random::<f64>());
            }
        }
        // Unit variance exactly: Var Σ √(2 S df) cos(·) = Σ S df.
        let total: f64 = amps.iter().sum();
        for a in &mut amps {
            *a = (2.0 * *a / total).sqrt();
        }
        Tachogram {
            freqs,
            amps,
            phases,
        }
    }

    /// RK4 integration for `duration` s starting at angle `theta0`. `beat(t, r)` gives the RR
    /// interval and morphology of the beat whose R peak is number `r` (called once per R peak
    /// crossing, with the crossing time t; r = 0 is the interval before the first R peak).
    /// `extra(t)` is added to the output. Returns (samples in model units, R-peak times).
    fn integrate(
        &self,
        duration: f64,
        theta0: f64,
        beat: &mut dyn FnMut(f64, usize) -> (f64, Morphology),
        extra: &mut dyn FnMut(f64) -> f64,
    ) -> (Vec<f64>, Vec<f64>) {
        let p = &self.params;
        let h = 0.5 / p.sample_rate_hz;
        let len = (duration * p.sample_rate_hz).round() as usize;
        // Wander in model units; zero while `new` calibrates (gain still infinite).
        let (a_resp, w_resp) = (p.respiration_mv / self.scale.0, 2.0 * PI * p.respiration_hz);
        let (rr, mut morph) = beat(0.0, 0);
        // The morphology in force after the next θ = π wrap (the coming beat).
        let mut next_morph = morph;
        let mut omega = 2.0 * PI / rr;
        let (mut x, mut y, mut z) = (theta0.cos(), theta0.sin(), 0.0);
        let mut out = Vec::with_capacity(len);
        let mut peaks = Vec::new();
        let mut t = 0.0;
        let f = |x: f64, y: f64, z: f64, t: f64, w: f64, m: &Morphology| {
            let alpha = 1.0 - (x * x + y * y).sqrt();
            let z0 = a_resp * (w_resp * t).sin();
            (
                alpha * x - w * y,
                alpha * y + w * x,
                -m.dz(y.atan2(x)) - (z - z0),
            )
        };
        for step in 0..2 * len {
            if step % 2 == 0 {
                out.push(z + extra(t));
            }
            let th_prev = y.atan2(x);
            let k1 = f(x, y, z, t, omega, &morph);
            let k2 = f(
                x + 0.5 * h * k1.0,
                y + 0.5 * h * k1.1,
                z + 0.5 * h * k1.2,
                t + 0.5 * h,
                omega,
                &morph,
            );
            let k3 = f(
                x + 0.5 * h * k2.0,
                y + 0.5 * h * k2.1,
                z + 0.5 * h * k2.2,
                t + 0.5 * h,
                omega,
                &morph,
            );
            let k4 = f(
                x + h * k3.0,
                y + h * k3.1,
                z + h * k3.2,
                t + h,
                omega,
                &morph,
            );
            x += h / 6.0 * (k1.0 + 2.0 * k2.0 + 2.0 * k3.0 + k4.0);
            y += h / 6.0 * (k1.1 + 2.0 * k2.1 + 2.0 * k3.1 + k4.1);
            z += h / 6.0 * (k1.2 + 2.0 * k2.2 + 2.0 * k3.2 + k4.2);
            t += h;
            let th = y.atan2(x);
            if th_prev < 0.0 && th >= 0.0 && th_prev > -PI / 2.0 {
                // R peak: θ crossed 0 during this step; interpolate its time.
                let tr = t - h * th / (th - th_prev);
                peaks.push(tr);
                let (rr, m2) = beat(tr, peaks.len());
                next_morph = m2;
                omega = 2.0 * PI / rr;
            } else if th_prev > PI / 2.0 && th < -PI / 2.0 {
                morph = next_morph;
            }
        }
        (out, peaks)
    }

    /// Draws one record of rhythm `class` (index into [`CLASS_NAMES`]).
    pub fn record(&self, class: usize, rng: &mut StdRng) -> Record {
        let p = &self.params;
        let hr = match class {
            1 => p.tachy_hr,
            2 => p.brady_hr,
            3 => p.af_hr,
            _ => p.hr_mean,
        };
        let rr_mean = 60.0 / hr;
        let rr_sd = 60.0 * p.hr_std / (hr * hr);
        let normal = Morphology::normal(hr);
        let tach = self.tachogram(rng);
        let sinus = |t: f64| {
            let s: f64 = (0..tach.freqs.len())
                .map(|k| tach.amps[k] * (2.0 * PI * tach.freqs[k] * t + tach.phases[k]).cos())
                .sum();
            (rr_mean + rr_sd * s).clamp(0.2, 3.0)
        };
        let af_sigma = (1.0 + p.af_rr_cv * p.af_rr_cv).ln().sqrt();
        let theta0 = PI * (2.0 * rng.random::<f64>() - 1.0);
        let mut ectopic = Vec::new();
        let mut pending_pause = None;
        let mut draws: Vec<f64> = Vec::new();
        // Per-beat random numbers are drawn up front (inside the integrator only closures run).
        let max_beats = (p.duration_s / 0.2) as usize + 4;
        for _ in 0..2 * max_beats {
            draws.push(rng.random::<f64>());
        }
        let mut zs: Vec<f64> = (0..max_beats).map(|_| rng.sample(StandardNormal)).collect();
        zs.push(0.0);
        let mut beat = |t: f64, r: usize| -> (f64, Morphology) {
            let k = r.min(max_beats - 1);
            match class {
                3 => {
                    let rr = rr_mean * (af_sigma * zs[k] - 0.5 * af_sigma * af_sigma).exp();
                    (rr.clamp(0.2, 3.0), normal.without_p())
                }
                4 => {
                    let base = sinus(t);
                    // The beat whose R peak this is was decided at the previous peak.
                    if r > 0 {
                        ectopic.push(pending_pause.is_some());
                    }
                    if let Some(pause) = pending_pause.take() {
                        return (pause, normal);
                    }
                    if r > 0 && draws[2 * k] < p.pvc_prob {
                        pending_pause = Some((2.0 - p.pvc_coupling) * base);
                        (p.pvc_coupling * base, normal.pvc())
                    } else {
                        (base, normal)
                    }
                }
                _ => (sinus(t), normal),
            }
        };
        let (af_amp, af_w) = if class == 3 {
            (
                p.af_f_wave_mv / self.scale.0,
                2.0 * PI * p.af_f_wave_hz * (0.9 + 0.2 * draws[1]),
            )
        } else {
            (0.0, 0.0)
        };
        let phi = 2.0 * PI * draws[3];
        let mut extra = |t: f64| af_amp * (af_w * t + phi).sin() * (1.0 + 0.3 * (0.7 * t).sin());
        let (z, peaks) = self.integrate(p.duration_s, theta0, &mut beat, &mut extra);
        let (gain, offset) = self.scale;
        let signal = z
            .iter()
            .map(|v| {
                let e: f64 = rng.sample(StandardNormal);
                gain * v + offset + p.noise_mv * e
            })
            .collect();
        ectopic.resize(peaks.len(), false);
        Record {
            signal,
            r_peaks: peaks,
            ectopic,
        }
    }
}

impl Generator for Ecg {
    fn generate(&self, n: usize, rng: &mut StdRng) -> Cohort {
        let p = &self.params;
        let len = (p.duration_s * p.sample_rate_hz).round() as usize;
        let mut x = Array2::zeros((n, len));
        let labels = par_rows(&mut x, rng, |mut row, rng| {
            let class = categorical(&p.class_probs, rng);
            let rec = self.record(class, rng);
            for (dst, v) in row.iter_mut().zip(&rec.signal) {
                *dst = *v;
            }
            class
        });
        Cohort {
            x,
            feature_names: (0..len).map(|t| format!("lead0_t{t:04}")).collect(),
            units: vec!["mV".to_string(); len],
            layout: Layout::Signal {
                channels: 1,
                len,
                sample_rate_hz: p.sample_rate_hz,
            },
            labels: Some(labels),
            class_names: CLASS_NAMES.map(String::from).to_vec(),
            targets: None,
            batch: None,
        }
    }
}
