//! Generators of synthetic biological cohorts. Each is a published model, with its equations
//! and citation in its module docs.
//!
//! In: a [`GeneratorSpec`] (the `[generator]` table of a scenario file, tagged by `kind`), a
//! sample count and a seeded RNG. Out: a [`Cohort`](super::Cohort) in physical units with its
//! ground truth (labels, regression targets, batches). Every generator is deterministic given
//! the RNG: the same seed gives the same cohort, bit for bit.
//!
//! Every parameter has a documented default, so `[generator]` with only `kind = "vitals"` is a
//! complete world; unknown keys are refused by name.

pub mod cell_image;
pub mod ecg;
pub mod pk;
pub mod single_cell;
pub mod vitals;

mod util;

pub use super::cohort::Generator;

/// The generator of a scenario: `kind` names the world, the other keys are its parameters.
#[derive(Clone, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum GeneratorSpec {
    /// Splatter gamma–Poisson single-cell counts ([`single_cell`]).
    SingleCell(single_cell::Params),
    /// Microscopy crops of nuclei with PSF blur and Poisson–Gaussian noise ([`cell_image`]).
    CellImage(cell_image::Params),
    /// McSharry dynamical-model ECG with HRV and arrhythmias ([`ecg`]).
    Ecg(ecg::Params),
    /// Vital signs and labs with a NEWS2-based deterioration label ([`vitals`]).
    Vitals(vitals::Params),
    /// One-/two-compartment PK with Emax/Hill PD ([`pk`]).
    Pk(pk::Params),
}

impl GeneratorSpec {
    /// The `kind` string as written in a scenario file.
    pub fn kind(&self) -> &'static str {
        match self {
            GeneratorSpec::SingleCell(_) => "single_cell",
            GeneratorSpec::CellImage(_) => "cell_image",
            GeneratorSpec::Ecg(_) => "ecg",
            GeneratorSpec::Vitals(_) => "vitals",
            GeneratorSpec::Pk(_) => "pk",
        }
    }

    /// Checks the parameters; the error names the bad key and why (`` `key` must be ... ``).
    pub fn validate(&self) -> Result<(), String> {
        let r = match self {
            GeneratorSpec::SingleCell(p) => p.validate(),
            GeneratorSpec::CellImage(p) => p.validate(),
            GeneratorSpec::Ecg(p) => p.validate(),
            GeneratorSpec::Vitals(p) => p.validate(),
            GeneratorSpec::Pk(p) => p.validate(),
        };
        r.map_err(|e| format!("generator `{}`: {e}", self.kind()))
    }

    /// The generator. Call [`validate`](Self::validate) first: parameters out of range may
    /// panic or give degenerate worlds.
    pub fn build(&self) -> Box<dyn Generator + Send + Sync> {
        match self {
            GeneratorSpec::SingleCell(p) => Box::new(single_cell::SingleCell::new(p.clone())),
            GeneratorSpec::CellImage(p) => Box::new(cell_image::CellImage::new(p.clone())),
            GeneratorSpec::Ecg(p) => Box::new(ecg::Ecg::new(p.clone())),
            GeneratorSpec::Vitals(p) => Box::new(vitals::Vitals::new(p.clone())),
            GeneratorSpec::Pk(p) => Box::new(pk::Pk::new(p.clone())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_alone_is_a_complete_spec() {
        let spec: GeneratorSpec = toml::from_str("kind = \"vitals\"").unwrap();
        assert_eq!(spec, GeneratorSpec::Vitals(vitals::Params::default()));
        spec.validate().unwrap();
    }

    #[test]
    fn every_kind_builds_from_its_defaults() {
        use rand::SeedableRng;
        for kind in ["single_cell", "cell_image", "ecg", "vitals", "pk"] {
            let spec: GeneratorSpec = toml::from_str(&format!("kind = \"{kind}\"")).unwrap();
            assert_eq!(spec.kind(), kind);
            spec.validate().unwrap();
            let c = spec
                .build()
                .generate(3, &mut rand::rngs::StdRng::seed_from_u64(0));
            assert_eq!(c.len(), 3);
            assert_eq!(c.feature_names.len(), c.width());
            assert_eq!(c.units.len(), c.width());
            assert!(c.x.iter().all(|v| v.is_finite()), "{kind}");
        }
    }

    #[test]
    fn unknown_and_bad_keys_are_named() {
        let e = toml::from_str::<GeneratorSpec>("kind = \"vitals\"\nseverity = 2").unwrap_err();
        assert!(e.to_string().contains("severity"), "{e}");
        let spec: GeneratorSpec =
            toml::from_str("kind = \"vitals\"\ndeteriorating_fraction = 1.5").unwrap();
        let e = spec.validate().unwrap_err();
        assert!(e.contains("deteriorating_fraction"), "{e}");
    }
}
