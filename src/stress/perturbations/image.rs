//! Image perturbations (layout (channels, height, width), row-major): contrast, stain shift,
//! Gaussian blur (point spread; along time for signals) and motion blur. Borders clamp.

use ndarray::Array2;
use rand::rngs::StdRng;
use rand::Rng;

use super::Layout;

pub(super) fn default_stain() -> f64 {
    0.2
}
pub(super) fn default_sigma() -> f64 {
    2.0
}
pub(super) fn default_length() -> f64 {
    9.0
}

/// (planes, plane height, plane width) of a layout: images are channel planes, a signal is
/// one row per lead, a table is one row per sample.
fn planes(layout: &Layout, width: usize) -> (usize, usize, usize) {
    match *layout {
        Layout::Image {
            channels,
            height,
            width,
        } => (channels, height, width),
        Layout::Signal { channels, len, .. } => (channels, 1, len),
        Layout::Tabular => (1, 1, width),
    }
}

/// Per sample and plane: `m + (x − m)·(1 − f)`, `m` the plane's mean.
pub fn contrast(x: &mut Array2<f64>, layout: &Layout, f: f64) {
    if f <= 0.0 {
        return;
    }
    let (c, h, w) = planes(layout, x.ncols());
    let plane = h * w;
    for mut r in x.rows_mut() {
        let Some(s) = r.as_slice_mut() else { continue };
        for k in 0..c {
            let p = &mut s[k * plane..(k + 1) * plane];
            let m = p.iter().sum::<f64>() / plane as f64;
            p.iter_mut().for_each(|v| *v = m + (*v - m) * (1.0 - f));
        }
    }
}

/// Per image and channel: `x·(1 + s·a) + s·b·σ`, `a, b ~ U(−shift, shift)`, `σ` the
/// channel's standard deviation in that image (a stain's strength and background).
pub fn stain(x: &mut Array2<f64>, layout: &Layout, s: f64, shift: f64, rng: &mut StdRng) {
    let (c, h, w) = planes(layout, x.ncols());
    let plane = h * w;
    for mut r in x.rows_mut() {
        let draws: Vec<(f64, f64)> = (0..c)
            .map(|_| {
                (
                    rng.random_range(-1.0..=1.0) * shift,
                    rng.random_range(-1.0..=1.0) * shift,
                )
            })
            .collect();
        if s <= 0.0 {
            continue;
        }
        let Some(v) = r.as_slice_mut() else { continue };
        for (k, (a, b)) in draws.into_iter().enumerate() {
            let p = &mut v[k * plane..(k + 1) * plane];
            let m = p.iter().sum::<f64>() / plane as f64;
            let sd = (p.iter().map(|q| (q - m) * (q - m)).sum::<f64>() / plane as f64).sqrt();
            p.iter_mut()
                .for_each(|q| *q = *q * (1.0 + s * a) + s * b * sd);
        }
    }
}

fn gaussian_kernel(sigma: f64) -> Vec<f64> {
    let radius = (3.0 * sigma).ceil() as isize;
    let mut k: Vec<f64> = (-radius..=radius)
        .map(|i| (-((i * i) as f64) / (2.0 * sigma * sigma)).exp())
        .collect();
    let sum: f64 = k.iter().sum();
    k.iter_mut().for_each(|v| *v /= sum);
    k
}

/// One-dimensional convolution of every line of a plane along `axis` (0: rows, 1: columns).
fn convolve(p: &mut [f64], h: usize, w: usize, k: &[f64], horizontal: bool) {
    let r = (k.len() / 2) as isize;
    let src = p.to_vec();
    for y in 0..h {
        for x in 0..w {
            let mut acc = 0.0;
            for (t, kv) in k.iter().enumerate() {
                let d = t as isize - r;
                let (yy, xx) = if horizontal {
                    (y as isize, (x as isize + d).clamp(0, w as isize - 1))
                } else {
                    ((y as isize + d).clamp(0, h as isize - 1), x as isize)
                };
                acc += kv * src[yy as usize * w + xx as usize];
            }
            p[y * w + x] = acc;
        }
    }
}

/// Separable Gaussian blur with standard deviation `sigma` pixels (samples for signals).
pub fn blur(x: &mut Array2<f64>, layout: &Layout, sigma: f64) {
    if sigma < 1e-3 {
        return;
    }
    let (c, h, w) = planes(layout, x.ncols());
    let k = gaussian_kernel(sigma);
    for mut r in x.rows_mut() {
        let Some(v) = r.as_slice_mut() else { continue };
        for ch in 0..c {
            let p = &mut v[ch * h * w..(ch + 1) * h * w];
            convolve(p, h, w, &k, true);
            if h > 1 {
                convolve(p, h, w, &k, false);
            }
        }
    }
}

/// Motion blur: the mean of the image shifted along a line of `length` pixels through the
/// pixel, at an angle drawn per image (bilinear-free: offsets round to whole pixels).
pub fn motion_blur(x: &mut Array2<f64>, layout: &Layout, length: f64, rng: &mut StdRng) {
    let (c, h, w) = planes(layout, x.ncols());
    for mut r in x.rows_mut() {
        let angle: f64 = rng.random_range(0.0..std::f64::consts::PI);
        if length < 1.5 {
            continue;
        }
        let taps = length.round().max(1.0) as usize;
        let offsets: Vec<(isize, isize)> = (0..taps)
            .map(|t| {
                let d = t as f64 - (taps - 1) as f64 / 2.0;
                (
                    (d * angle.sin()).round() as isize,
                    (d * angle.cos()).round() as isize,
                )
            })
            .collect();
        let Some(v) = r.as_slice_mut() else { continue };
        for ch in 0..c {
            let p = &mut v[ch * h * w..(ch + 1) * h * w];
            let src = p.to_vec();
            for y in 0..h {
                for xx in 0..w {
                    let mut acc = 0.0;
                    for &(dy, dx) in &offsets {
                        let yy = (y as isize + dy).clamp(0, h as isize - 1) as usize;
                        let xq = (xx as isize + dx).clamp(0, w as isize - 1) as usize;
                        acc += src[yy * w + xq];
                    }
                    p[y * w + xx] = acc / taps as f64;
                }
            }
        }
    }
}
