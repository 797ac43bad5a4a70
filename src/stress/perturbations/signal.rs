//! Signal perturbations (layout: leads × samples, lead-major): ECG baseline wander
//! (respiration, electrode motion; ~0.15–0.5 Hz) and powerline interference (50/60 Hz).

use ndarray::Array2;
use rand::rngs::StdRng;
use rand::Rng;

use super::Layout;

pub(super) fn default_wander_hz() -> f64 {
    0.3
}
pub(super) fn default_powerline_amp() -> f64 {
    0.2
}
pub(super) fn default_powerline_hz() -> f64 {
    50.0
}

/// Adds `amplitude·sin(2π f t + φ)` to every lead, `φ ~ U(0, 2π)` per sample and lead.
pub fn sinusoid(
    x: &mut Array2<f64>,
    layout: &Layout,
    amplitude: f64,
    freq_hz: f64,
    rng: &mut StdRng,
) {
    let Layout::Signal {
        channels,
        len,
        sample_rate_hz,
    } = *layout
    else {
        return;
    };
    for mut r in x.rows_mut() {
        for c in 0..channels {
            let phase: f64 = rng.random_range(0.0..std::f64::consts::TAU);
            if amplitude == 0.0 {
                continue;
            }
            for t in 0..len {
                let time = t as f64 / sample_rate_hz;
                r[c * len + t] +=
                    amplitude * (std::f64::consts::TAU * freq_hz * time + phase).sin();
            }
        }
    }
}
