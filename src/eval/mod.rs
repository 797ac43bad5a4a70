//! Forward evaluation (being written).
