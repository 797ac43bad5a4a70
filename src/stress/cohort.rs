//! A cohort: generated samples in physical units, with their layout and ground truth. This is
//! what a generator produces and what perturbations, bindings and properties consume.

use ndarray::Array2;
use rand::rngs::StdRng;

/// How the columns of a cohort's sample matrix are laid out.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Layout {
    /// One named feature per column (vitals, labs, doses, gene counts).
    Tabular,
    /// Images flattened row-major as (channels, height, width).
    Image {
        channels: usize,
        height: usize,
        width: usize,
    },
    /// A uniformly sampled signal (ECG): `channels` leads of `len` samples each, lead-major.
    Signal {
        channels: usize,
        len: usize,
        sample_rate_hz: f64,
    },
}

/// Generated samples and their ground truth.
#[derive(Clone, Debug)]
pub struct Cohort {
    /// Samples × features, in the physical units the generator documents.
    pub x: Array2<f64>,
    /// One name per column of `x` (for images and signals: `c{c}_y{y}_x{x}` / `lead{c}_t{t}`).
    pub feature_names: Vec<String>,
    /// The unit of each column (e.g. "mg/dL", "counts", "mV"); empty when dimensionless.
    pub units: Vec<String>,
    pub layout: Layout,
    /// Ground-truth class of each sample, for classification worlds.
    pub labels: Option<Vec<usize>>,
    /// Names of the classes `labels` index.
    pub class_names: Vec<String>,
    /// Ground-truth regression target of each sample (e.g. effect, concentration).
    pub targets: Option<Vec<f64>>,
    /// Technical batch of each sample, when the generator simulates batches.
    pub batch: Option<Vec<usize>>,
}

impl Cohort {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.x.nrows()
    }

    pub fn is_empty(&self) -> bool {
        self.x.nrows() == 0
    }

    /// Number of columns per sample.
    pub fn width(&self) -> usize {
        self.x.ncols()
    }
}

/// A synthetic world that draws cohorts. Implementations are deterministic given the RNG.
pub trait Generator {
    /// Draws `n` samples.
    fn generate(&self, n: usize, rng: &mut StdRng) -> Cohort;
}
