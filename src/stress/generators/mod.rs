//! Generators of synthetic biological cohorts. Each is a published model, with its equations
//! and citation in its module docs.

pub use super::cohort::Generator;
