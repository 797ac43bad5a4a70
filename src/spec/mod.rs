//! VNN-LIB properties (being written).
