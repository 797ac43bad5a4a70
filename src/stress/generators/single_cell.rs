//! Single-cell RNA-seq counts from the Splatter model (Zappia, Phipson & Oshlack 2017,
//! *Splatter: simulation of single-cell RNA sequencing data*, Genome Biology 18:174).
//!
//! # Model
//!
//! The *world* (genes, cell-type markers, batch effects) is drawn once from `world_seed`, so
//! cohorts drawn with different seeds share their biology; the cohort's RNG draws cells.
//!
//! ```text
//! gene means      λ_i ~ Gamma(mean_shape, rate = mean_rate)
//! outliers        with prob. outlier_prob: λ_i = median(λ)·LogNormal(outlier_loc, outlier_scale)
//! cell types      DE_{g,i} = LogNormal(de_loc, de_scale) with prob. de_prob (inverted with
//!                 prob. de_down_prob), else 1
//! batches         B_{b,i} = LogNormal(batch_loc, batch_scale), inverted with prob. 1/2
//! cells           group g_j ~ group_probs, batch b_j ~ batch_probs, library L_j ~ LogNormal(lib_loc, lib_scale)
//! cell means      μ_ij = L_j·λ_i·DE_{g_j,i}·B_{b_j,i} / Σ_k λ_k·DE_{g_j,k}·B_{b_j,k}
//! BCV             φ_ij = (bcv_common + 1/√μ_ij)·√(bcv_df/χ²_i),  χ²_i ~ χ²(bcv_df) per gene and cohort
//! true means      m_ij ~ Gamma(shape 1/φ_ij², scale μ_ij·φ_ij²)        (E m = μ, Var m = φ²μ²)
//! counts          Y_ij ~ Poisson(m_ij)                                 (Var Y = μ + φ²μ²)
//! dropout         Y_ij = 0 with prob. 1/(1 + exp(−dropout_shape·(ln m_ij − dropout_mid)))
//! ```
//!
//! Defaults follow Splatter's except where a small panel needs them changed: 200 genes (not
//! 10,000), so the library size is `lib_loc = 7.5` (≈ 1,800 counts per cell, ≈ 9 per gene), and
//! `de_loc = 0.3` (Splatter 0.1) so three cell types are separable from 20 marker genes each.
//! Logistic dropout is on (midpoint 0, shape −1: a gene with mean 1 drops out half the time).
//!
//! Columns: `gene0000`, … (counts). Labels: cell type (`type0`, …). Batch: batch index.

use ndarray::Array2;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

use super::util::{
    categorical, check, check_nonneg, check_positive, check_probs, gamma, par_rows, poisson,
};
use crate::stress::cohort::{Cohort, Generator, Layout};

/// Parameters of the Splatter world; every key is optional.
#[derive(Clone, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Params {
    /// Number of genes (default 200).
    pub n_genes: usize,
    /// Seed of the gene-level world: means, markers, batch factors (default 1).
    pub world_seed: u64,
    /// Gamma shape and rate of gene means (Splatter defaults 0.6, 0.3).
    pub mean_shape: f64,
    pub mean_rate: f64,
    /// Log-normal library size: location and scale of ln L (defaults 7.5, 0.2).
    pub lib_loc: f64,
    pub lib_scale: f64,
    /// Expression outliers: probability, location and scale of the log factor (0.05, 4, 0.5).
    pub outlier_prob: f64,
    pub outlier_loc: f64,
    pub outlier_scale: f64,
    /// Cell-type proportions; their count is the number of types (default [0.5, 0.3, 0.2]).
    pub group_probs: Vec<f64>,
    /// Marker (DE) genes per type: probability, down-regulated share, log-factor location and
    /// scale (defaults 0.1, 0.5, 0.3, 0.4).
    pub de_prob: f64,
    pub de_down_prob: f64,
    pub de_loc: f64,
    pub de_scale: f64,
    /// Batch proportions; their count is the number of batches (default [0.5, 0.5]).
    pub batch_probs: Vec<f64>,
    /// Gene-wise batch log-factor location and scale (Splatter defaults 0.1, 0.1).
    pub batch_loc: f64,
    pub batch_scale: f64,
    /// Biological coefficient of variation: common part and χ² degrees of freedom (0.1, 60).
    pub bcv_common: f64,
    pub bcv_df: f64,
    /// Logistic dropout on ln(mean): on/off, midpoint and shape (defaults true, 0, −1).
    pub dropout: bool,
    pub dropout_mid: f64,
    pub dropout_shape: f64,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            n_genes: 200,
            world_seed: 1,
            mean_shape: 0.6,
            mean_rate: 0.3,
            lib_loc: 7.5,
            lib_scale: 0.2,
            outlier_prob: 0.05,
            outlier_loc: 4.0,
            outlier_scale: 0.5,
            group_probs: vec![0.5, 0.3, 0.2],
            de_prob: 0.1,
            de_down_prob: 0.5,
            de_loc: 0.3,
            de_scale: 0.4,
            batch_probs: vec![0.5, 0.5],
            batch_loc: 0.1,
            batch_scale: 0.1,
            bcv_common: 0.1,
            bcv_df: 60.0,
            dropout: true,
            dropout_mid: 0.0,
            dropout_shape: -1.0,
        }
    }
}

impl Params {
    pub fn validate(&self) -> Result<(), String> {
        check(
            (1..=100_000).contains(&self.n_genes),
            "n_genes",
            "must be in 1..=100000",
        )?;
        check_positive(self.mean_shape, "mean_shape")?;
        check_positive(self.mean_rate, "mean_rate")?;
        check(
            self.lib_loc.is_finite() && self.lib_loc < 25.0,
            "lib_loc",
            "must be finite and < 25",
        )?;
        for (v, k) in [
            (self.lib_scale, "lib_scale"),
            (self.outlier_scale, "outlier_scale"),
            (self.de_scale, "de_scale"),
            (self.batch_scale, "batch_scale"),
            (self.bcv_common, "bcv_common"),
        ] {
            check_nonneg(v, k)?;
        }
        for (v, k) in [
            (self.outlier_prob, "outlier_prob"),
            (self.de_prob, "de_prob"),
            (self.de_down_prob, "de_down_prob"),
        ] {
            super::util::check_range(v, k, 0.0, 1.0)?;
        }
        for (v, k) in [
            (self.outlier_loc, "outlier_loc"),
            (self.de_loc, "de_loc"),
            (self.batch_loc, "batch_loc"),
            (self.dropout_mid, "dropout_mid"),
            (self.dropout_shape, "dropout_shape"),
        ] {
            check(
                v.is_finite() && v.abs() <= 50.0,
                k,
                "must be finite with |value| <= 50",
            )?;
        }
        check(
            self.bcv_df.is_finite() && self.bcv_df > 2.0,
            "bcv_df",
            "must be > 2 (the BCV has no finite variance otherwise)",
        )?;
        check_probs(&self.group_probs, "group_probs")?;
        check_probs(&self.batch_probs, "batch_probs")
    }
}

/// The gene-level world drawn from `world_seed`.
#[derive(Clone, Debug)]
pub struct World {
    /// λ_i after outliers.
    pub gene_means: Vec<f64>,
    pub is_outlier: Vec<bool>,
    /// DE factors, types × genes (1 for non-marker genes).
    pub de_factors: Array2<f64>,
    /// Batch factors, batches × genes.
    pub batch_factors: Array2<f64>,
}

/// Ground truth beyond the cohort, for tests: μ_ij, m_ij and the per-gene √(df/χ²_i).
#[derive(Clone, Debug)]
pub struct Truth {
    pub cell_means: Array2<f64>,
    pub true_means: Array2<f64>,
    pub bcv_scale: Vec<f64>,
}

/// The Splatter generator.
#[derive(Clone, Debug)]
pub struct SingleCell {
    pub params: Params,
    pub world: World,
}

/// Factor `exp(N(loc, scale))`, inverted with probability `down`.
fn lnorm_factor(loc: f64, scale: f64, down: f64, rng: &mut StdRng) -> f64 {
    let z: f64 = rng.sample(StandardNormal);
    let f = (loc + scale * z).exp();
    if rng.random::<f64>() < down {
        1.0 / f
    } else {
        f
    }
}

impl SingleCell {
    pub fn new(params: Params) -> Self {
        let p = &params;
        let g = p.n_genes;
        let mut rng = StdRng::seed_from_u64(p.world_seed);
        let mut gene_means: Vec<f64> = (0..g)
            .map(|_| gamma(p.mean_shape, 1.0 / p.mean_rate, &mut rng))
            .collect();
        let mut sorted = gene_means.clone();
        sorted.sort_by(f64::total_cmp);
        let median = if g % 2 == 1 {
            sorted[g / 2]
        } else {
            0.5 * (sorted[g / 2 - 1] + sorted[g / 2])
        };
        let mut is_outlier = vec![false; g];
        for i in 0..g {
            if rng.random::<f64>() < p.outlier_prob {
                is_outlier[i] = true;
                gene_means[i] =
                    median * lnorm_factor(p.outlier_loc, p.outlier_scale, 0.0, &mut rng);
            }
        }
        let mut de_factors = Array2::ones((p.group_probs.len(), g));
        for mut row in de_factors.rows_mut() {
            for v in row.iter_mut() {
                if rng.random::<f64>() < p.de_prob {
                    *v = lnorm_factor(p.de_loc, p.de_scale, p.de_down_prob, &mut rng);
                }
            }
        }
        let mut batch_factors = Array2::ones((p.batch_probs.len(), g));
        if p.batch_probs.len() > 1 {
            for v in batch_factors.iter_mut() {
                *v = lnorm_factor(p.batch_loc, p.batch_scale, 0.5, &mut rng);
            }
        }
        SingleCell {
            params,
            world: World {
                gene_means,
                is_outlier,
                de_factors,
                batch_factors,
            },
        }
    }

    /// Draws `n` cells; with `truth`, also records the means behind every count.
    pub fn simulate(
        &self,
        n: usize,
        rng: &mut StdRng,
        with_truth: bool,
    ) -> (Cohort, Option<Truth>) {
        let p = &self.params;
        let w = &self.world;
        let g = p.n_genes;
        let bcv_scale: Vec<f64> = (0..g)
            .map(|_| (p.bcv_df / gamma(0.5 * p.bcv_df, 2.0, rng)).sqrt())
            .collect();
        let mut x = Array2::zeros((n, g));
        // Cells are drawn in parallel, each from its own seed (see `par_rows`); the means
        // behind the counts are kept per cell only when asked for.
        let cells = par_rows(&mut x, rng, |mut row, rng| {
            let grp = categorical(&p.group_probs, rng);
            let b = categorical(&p.batch_probs, rng);
            let z: f64 = rng.sample(StandardNormal);
            let lib = (p.lib_loc + p.lib_scale * z).exp();
            let de = w.de_factors.row(grp);
            let bf = w.batch_factors.row(b);
            let base: Vec<f64> = (0..g).map(|i| w.gene_means[i] * de[i] * bf[i]).collect();
            let total: f64 = base.iter().sum();
            let mut kept = with_truth.then(|| (vec![0.0; g], vec![0.0; g]));
            for i in 0..g {
                let mu = lib * base[i] / total;
                let phi = (p.bcv_common + 1.0 / mu.sqrt()) * bcv_scale[i];
                let phi2 = phi * phi;
                let m = gamma(1.0 / phi2, mu * phi2, rng);
                let mut y = poisson(m, rng);
                if p.dropout {
                    let pd = 1.0 / (1.0 + (-p.dropout_shape * (m.ln() - p.dropout_mid)).exp());
                    if rng.random::<f64>() < pd {
                        y = 0.0;
                    }
                }
                row[i] = y;
                if let Some((cm, tm)) = kept.as_mut() {
                    cm[i] = mu;
                    tm[i] = m;
                }
            }
            (grp, b, kept)
        });
        let mut truth = with_truth.then(|| Truth {
            cell_means: Array2::zeros((n, g)),
            true_means: Array2::zeros((n, g)),
            bcv_scale: bcv_scale.clone(),
        });
        let mut labels = Vec::with_capacity(n);
        let mut batch = Vec::with_capacity(n);
        for (j, (grp, b, kept)) in cells.into_iter().enumerate() {
            labels.push(grp);
            batch.push(b);
            if let (Some(t), Some((cm, tm))) = (truth.as_mut(), kept) {
                t.cell_means
                    .row_mut(j)
                    .assign(&ndarray::ArrayView1::from(&cm));
                t.true_means
                    .row_mut(j)
                    .assign(&ndarray::ArrayView1::from(&tm));
            }
        }
        let cohort = Cohort {
            x,
            feature_names: (0..g).map(|i| format!("gene{i:04}")).collect(),
            units: vec!["counts".to_string(); g],
            layout: Layout::Tabular,
            labels: Some(labels),
            class_names: (0..p.group_probs.len())
                .map(|k| format!("type{k}"))
                .collect(),
            targets: None,
            batch: Some(batch),
        };
        (cohort, truth)
    }
}

impl Generator for SingleCell {
    fn generate(&self, n: usize, rng: &mut StdRng) -> Cohort {
        self.simulate(n, rng, false).0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn world_depends_on_world_seed_only() {
        let a = SingleCell::new(Params::default());
        let b = SingleCell::new(Params::default());
        assert_eq!(a.world.gene_means, b.world.gene_means);
        let c = SingleCell::new(Params {
            world_seed: 2,
            ..Params::default()
        });
        assert_ne!(a.world.gene_means, c.world.gene_means);
        // About de_prob of the genes are markers of each type.
        let markers = a.world.de_factors.iter().filter(|f| **f != 1.0).count();
        assert!((30..=90).contains(&markers), "{markers} markers in 3 x 200");
    }

    #[test]
    fn counts_are_nonnegative_integers() {
        let sc = SingleCell::new(Params::default());
        let c = sc.generate(50, &mut StdRng::seed_from_u64(5));
        assert!(c.x.iter().all(|v| *v >= 0.0 && v.fract() == 0.0));
        assert_eq!(c.batch.as_ref().map(Vec::len), Some(50));
    }
}
