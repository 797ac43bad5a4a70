//! Canonicalisation passes (being written).
