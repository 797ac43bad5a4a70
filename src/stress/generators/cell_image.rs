//! Fluorescence-microscopy crops of single nuclei of three shapes, imaged through a Gaussian
//! point-spread function under uneven illumination with Poisson–Gaussian sensor noise.
//!
//! # Model
//!
//! Object (a nucleus, one per crop, centre jittered by `centre_jitter_px`):
//!
//! - class 0 `round` (lymphocyte-like): a disc of radius `r ~ N(radius_px, radius_sd)` with a
//!   ±5 % random aspect;
//! - class 1 `elongated` (fibroblast/spindle-like): an ellipse of the same area with aspect
//!   ratio `elongation`, random orientation;
//! - class 2 `multilobed` (neutrophil-like): `lobes` discs of radius 0.45 r whose centres lie
//!   0.65 r from the cell centre, so the centre of the nucleus is empty.
//!
//! The occupancy `o(p) = 1/(1 + exp(d(p)/edge_px))` of pixel p (d the signed distance to the
//! boundary, approximated for ellipses) is modulated by chromatin texture,
//! `o·(1 + texture·T(p))`, `T` a bilinearly upsampled 5×5 grid of N(0, 1) draws, clipped at 0.
//! Image formation (expected photo-electrons per pixel, channel c):
//!
//! ```text
//! λ_c(p) = I(p)·(background_photons + peak_photons·w_c·(PSF ∗ o)(p))
//! I(p)   = 1 + illumination_gradient·(u·cos φ + v·sin φ),  u, v ∈ [−1, 1] the pixel's position,
//!          φ ~ U(0, 2π)  (vignetting/uneven field)
//! PSF    = Gaussian with SD psf_sigma_px (the Gaussian approximation of the Airy disc,
//!          Zhang, Zerubia & Olivo-Marin 2007, Applied Optics 46:1819)
//! ```
//!
//! with channel weights `w = (1)` for one channel and `(0.55, 0.35, 0.85)` for three
//! (a blue-purple nuclear stain). Detection (the Poisson–Gaussian model of Foi et al. 2008,
//! IEEE Trans. Image Process. 17:1737): `y = gain·Poisson(λ) + N(0, read_noise²)` in ADU, so
//! `E y = gain·λ` and `Var y = gain·E y + read_noise²`.
//!
//! Columns `c{c}_y{y}_x{x}` (ADU), row-major (channel, row, column); `Layout::Image`.
//! Labels: the shape class.

use std::f64::consts::PI;

use ndarray::Array2;
use rand::rngs::StdRng;
use rand::Rng;
use rand_distr::StandardNormal;

use super::util::{
    categorical, check, check_nonneg, check_positive, check_probs, check_range, par_rows, poisson,
};
use crate::stress::cohort::{Cohort, Generator, Layout};

pub const CLASS_NAMES: [&str; 3] = ["round", "elongated", "multilobed"];

/// Parameters of the microscopy world; every key is optional.
#[derive(Clone, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Params {
    /// Image size: channels (1 or 3), height, width in pixels (defaults 1, 28, 28).
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    /// Weights of the three shape classes (default all 1).
    pub class_probs: Vec<f64>,
    /// Nucleus radius mean and SD in pixels (defaults 6, 0.5).
    pub radius_px: f64,
    pub radius_sd: f64,
    /// Aspect ratio of the elongated class (default 2.2).
    pub elongation: f64,
    /// Lobes of the multilobed class (default 3).
    pub lobes: usize,
    /// Random shift of the centre in pixels (default 2).
    pub centre_jitter_px: f64,
    /// Width of the soft edge in pixels (default 0.6).
    pub edge_px: f64,
    /// Relative amplitude of the chromatin texture (default 0.2).
    pub texture: f64,
    /// Point-spread function SD in pixels (default 1.0).
    pub psf_sigma_px: f64,
    /// Expected photo-electrons at full occupancy and of the background (200, 10).
    pub peak_photons: f64,
    pub background_photons: f64,
    /// Camera gain in ADU per electron and read-noise SD in ADU (defaults 1.0, 2.0).
    pub gain: f64,
    pub read_noise: f64,
    /// Relative illumination change from the centre to the edge of the field (default 0.2).
    pub illumination_gradient: f64,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            channels: 1,
            height: 28,
            width: 28,
            class_probs: vec![1.0; 3],
            radius_px: 6.0,
            radius_sd: 0.5,
            elongation: 2.2,
            lobes: 3,
            centre_jitter_px: 2.0,
            edge_px: 0.6,
            texture: 0.2,
            psf_sigma_px: 1.0,
            peak_photons: 200.0,
            background_photons: 10.0,
            gain: 1.0,
            read_noise: 2.0,
            illumination_gradient: 0.2,
        }
    }
}

impl Params {
    pub fn validate(&self) -> Result<(), String> {
        check(
            self.channels == 1 || self.channels == 3,
            "channels",
            "must be 1 or 3",
        )?;
        check(
            (8..=512).contains(&self.height),
            "height",
            "must be in 8..=512",
        )?;
        check(
            (8..=512).contains(&self.width),
            "width",
            "must be in 8..=512",
        )?;
        check_probs(&self.class_probs, "class_probs")?;
        check(
            self.class_probs.len() == 3,
            "class_probs",
            "must have three weights (round, elongated, multilobed)",
        )?;
        let half = self.height.min(self.width) as f64 / 2.0;
        check_range(self.radius_px, "radius_px", 1.0, half)?;
        check_range(self.radius_sd, "radius_sd", 0.0, self.radius_px / 3.0)?;
        check_range(self.elongation, "elongation", 1.0, 10.0)?;
        check((2..=8).contains(&self.lobes), "lobes", "must be in 2..=8")?;
        check_range(self.centre_jitter_px, "centre_jitter_px", 0.0, half)?;
        check_positive(self.edge_px, "edge_px")?;
        check_range(self.texture, "texture", 0.0, 2.0)?;
        check_range(self.psf_sigma_px, "psf_sigma_px", 0.0, 20.0)?;
        check_positive(self.peak_photons, "peak_photons")?;
        check_nonneg(self.background_photons, "background_photons")?;
        check_positive(self.gain, "gain")?;
        check_nonneg(self.read_noise, "read_noise")?;
        check_range(
            self.illumination_gradient,
            "illumination_gradient",
            0.0,
            0.9,
        )
    }
}

/// The microscopy generator.
#[derive(Clone, Debug)]
pub struct CellImage {
    pub params: Params,
    kernel: Vec<f64>,
}

impl CellImage {
    pub fn new(params: Params) -> Self {
        let s = params.psf_sigma_px;
        let kernel = if s > 0.0 {
            let r = (3.0 * s).ceil() as i64;
            let k: Vec<f64> = (-r..=r)
                .map(|i| (-0.5 * (i as f64 / s).powi(2)).exp())
                .collect();
            let sum: f64 = k.iter().sum();
            k.into_iter().map(|v| v / sum).collect()
        } else {
            vec![1.0]
        };
        CellImage { params, kernel }
    }

    /// Occupancy map (height × width) of one nucleus of `class`, before blur.
    fn occupancy(&self, class: usize, rng: &mut StdRng) -> Vec<f64> {
        let p = &self.params;
        let (h, w) = (p.height, p.width);
        let n = |rng: &mut StdRng| -> f64 { rng.sample(StandardNormal) };
        let r = (p.radius_px + p.radius_sd * n(rng)).max(1.0);
        let cy = (h as f64 - 1.0) / 2.0 + p.centre_jitter_px * (2.0 * rng.random::<f64>() - 1.0);
        let cx = (w as f64 - 1.0) / 2.0 + p.centre_jitter_px * (2.0 * rng.random::<f64>() - 1.0);
        let phi = 2.0 * PI * rng.random::<f64>();
        let (cs, sn) = (phi.cos(), phi.sin());
        // Ellipse semi-axes (a along φ, b across).
        let (a, b) = match class {
            1 => (r * p.elongation.sqrt(), r / p.elongation.sqrt()),
            _ => {
                let e = 1.0 + 0.05 * (2.0 * rng.random::<f64>() - 1.0);
                (r * e, r / e)
            }
        };
        let lobes: Vec<(f64, f64)> = (0..p.lobes)
            .map(|k| {
                let ang = phi + 2.0 * PI * k as f64 / p.lobes as f64 + 0.2 * n(rng);
                (cy + 0.65 * r * ang.sin(), cx + 0.65 * r * ang.cos())
            })
            .collect();
        // Texture: 5×5 N(0,1) grid, bilinear.
        let grid: Vec<f64> = (0..25).map(|_| n(rng)).collect();
        let mut occ = vec![0.0; h * w];
        for yi in 0..h {
            for xi in 0..w {
                let (y, x) = (yi as f64, xi as f64);
                let d = if class == 2 {
                    lobes
                        .iter()
                        .map(|(ly, lx)| ((y - ly).powi(2) + (x - lx).powi(2)).sqrt() - 0.45 * r)
                        .fold(f64::INFINITY, f64::min)
                } else {
                    let (dy, dx) = (y - cy, x - cx);
                    let (u, v) = (dx * cs + dy * sn, -dx * sn + dy * cs);
                    ((u / a).powi(2) + (v / b).powi(2)).sqrt().mul_add(b, -b)
                };
                let o = 1.0 / (1.0 + (d / p.edge_px).exp());
                let gy = 4.0 * y / (h as f64 - 1.0);
                let gx = 4.0 * x / (w as f64 - 1.0);
                let (iy, ix) = ((gy as usize).min(3), (gx as usize).min(3));
                let (fy, fx) = (gy - iy as f64, gx - ix as f64);
                let t = grid[iy * 5 + ix] * (1.0 - fy) * (1.0 - fx)
                    + grid[iy * 5 + ix + 1] * (1.0 - fy) * fx
                    + grid[(iy + 1) * 5 + ix] * fy * (1.0 - fx)
                    + grid[(iy + 1) * 5 + ix + 1] * fy * fx;
                occ[yi * w + xi] = (o * (1.0 + p.texture * t)).max(0.0);
            }
        }
        occ
    }

    /// Separable Gaussian blur with zero padding (light leaves the crop).
    fn blur(&self, img: &[f64]) -> Vec<f64> {
        let (h, w) = (self.params.height, self.params.width);
        let r = (self.kernel.len() / 2) as i64;
        let mut tmp = vec![0.0; h * w];
        for y in 0..h {
            for x in 0..w {
                let mut s = 0.0;
                for (k, kv) in self.kernel.iter().enumerate() {
                    let xx = x as i64 + k as i64 - r;
                    if (0..w as i64).contains(&xx) {
                        s += kv * img[y * w + xx as usize];
                    }
                }
                tmp[y * w + x] = s;
            }
        }
        let mut out = vec![0.0; h * w];
        for y in 0..h {
            for x in 0..w {
                let mut s = 0.0;
                for (k, kv) in self.kernel.iter().enumerate() {
                    let yy = y as i64 + k as i64 - r;
                    if (0..h as i64).contains(&yy) {
                        s += kv * tmp[yy as usize * w + x];
                    }
                }
                out[y * w + x] = s;
            }
        }
        out
    }

    /// The noiseless image in ADU (`gain·λ`), channels × height × width, row-major.
    pub fn clean(&self, class: usize, rng: &mut StdRng) -> Vec<f64> {
        let p = &self.params;
        let (h, w) = (p.height, p.width);
        let obj = self.blur(&self.occupancy(class, rng));
        let phi = 2.0 * PI * rng.random::<f64>();
        let weights: &[f64] = if p.channels == 3 {
            &[0.55, 0.35, 0.85]
        } else {
            &[1.0]
        };
        let mut out = Vec::with_capacity(p.channels * h * w);
        for wc in weights {
            for y in 0..h {
                for x in 0..w {
                    let u = 2.0 * x as f64 / (w as f64 - 1.0) - 1.0;
                    let v = 2.0 * y as f64 / (h as f64 - 1.0) - 1.0;
                    let illum = 1.0 + p.illumination_gradient * (u * phi.cos() + v * phi.sin());
                    let lambda =
                        illum * (p.background_photons + p.peak_photons * wc * obj[y * w + x]);
                    out.push(p.gain * lambda);
                }
            }
        }
        out
    }

    /// A noisy observation of a clean image: `gain·Poisson(mean/gain) + N(0, read_noise²)`.
    pub fn observe(&self, mean: &[f64], rng: &mut StdRng) -> Vec<f64> {
        let p = &self.params;
        mean.iter()
            .map(|m| {
                let e: f64 = rng.sample(StandardNormal);
                p.gain * poisson(m / p.gain, rng) + p.read_noise * e
            })
            .collect()
    }
}

impl Generator for CellImage {
    fn generate(&self, n: usize, rng: &mut StdRng) -> Cohort {
        let p = &self.params;
        let d = p.channels * p.height * p.width;
        let mut x = Array2::zeros((n, d));
        let labels = par_rows(&mut x, rng, |mut row, rng| {
            let class = categorical(&p.class_probs, rng);
            let clean = self.clean(class, rng);
            for (dst, v) in row.iter_mut().zip(self.observe(&clean, rng)) {
                *dst = v;
            }
            class
        });
        let mut feature_names = Vec::with_capacity(d);
        for c in 0..p.channels {
            for y in 0..p.height {
                for xx in 0..p.width {
                    feature_names.push(format!("c{c}_y{y}_x{xx}"));
                }
            }
        }
        Cohort {
            x,
            feature_names,
            units: vec!["ADU".to_string(); d],
            layout: Layout::Image {
                channels: p.channels,
                height: p.height,
                width: p.width,
            },
            labels: Some(labels),
            class_names: CLASS_NAMES.map(String::from).to_vec(),
            targets: None,
            batch: None,
        }
    }
}
