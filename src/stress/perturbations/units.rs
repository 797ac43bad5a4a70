//! Unit conversions for the `unit_mistake` perturbation: a value measured in one unit and
//! reported (or read) as if it were in another.
//!
//! Each entry says `1 from = factor · to` for an analyte; the reverse direction is derived.
//! Analyte-independent entries (`*`: SI prefixes, mass, length, temperature) apply to every
//! feature. Molar conversions use the molar masses clinical laboratories use (glucose
//! 180.16 g/mol, creatinine 113.12 g/mol, urea nitrogen 28.01 g/mol (BUN), cholesterol
//! 386.65 g/mol, triglycerides 885.7 g/mol, calcium 40.08 g/mol, bilirubin 584.66 g/mol,
//! lactate 90.08 g/mol).

/// `(analyte, from, to, scale, offset)`: `value_to = value_from · scale + offset`.
const TABLE: &[(&str, &str, &str, f64, f64)] = &[
    ("glucose", "mg/dL", "mmol/L", 1.0 / 18.016, 0.0),
    ("creatinine", "mg/dL", "umol/L", 88.42, 0.0),
    ("creatinine", "mg/dL", "µmol/L", 88.42, 0.0),
    ("urea", "mg/dL", "mmol/L", 1.0 / 2.801, 0.0),
    ("bun", "mg/dL", "mmol/L", 1.0 / 2.801, 0.0),
    ("cholesterol", "mg/dL", "mmol/L", 1.0 / 38.67, 0.0),
    ("triglycerides", "mg/dL", "mmol/L", 1.0 / 88.57, 0.0),
    ("calcium", "mg/dL", "mmol/L", 1.0 / 4.008, 0.0),
    ("bilirubin", "mg/dL", "umol/L", 17.1, 0.0),
    ("lactate", "mmol/L", "mg/dL", 9.008, 0.0),
    ("hemoglobin", "g/dL", "g/L", 10.0, 0.0),
    ("hemoglobin", "g/dL", "mmol/L", 0.6206, 0.0),
    ("*", "g", "mg", 1000.0, 0.0),
    ("*", "mg", "ug", 1000.0, 0.0),
    ("*", "mg", "µg", 1000.0, 0.0),
    ("*", "g/L", "mg/L", 1000.0, 0.0),
    ("*", "mg/L", "ug/mL", 1.0, 0.0),
    ("*", "kg", "lb", 2.204_622_6, 0.0),
    ("*", "m", "cm", 100.0, 0.0),
    ("*", "cm", "in", 1.0 / 2.54, 0.0),
    ("*", "h", "min", 60.0, 0.0),
    ("*", "s", "ms", 1000.0, 0.0),
    ("*", "mV", "uV", 1000.0, 0.0),
    ("*", "degC", "degF", 1.8, 32.0),
    ("*", "°C", "°F", 1.8, 32.0),
    ("*", "kPa", "mmHg", 7.500_62, 0.0),
];

/// `(scale, offset)` with `value_to = value_from · scale + offset`, if the table knows the
/// conversion for `analyte` (case-insensitive) or for every analyte.
pub fn conversion(analyte: &str, from: &str, to: &str) -> Option<(f64, f64)> {
    if from == to {
        return Some((1.0, 0.0));
    }
    let a = analyte.to_ascii_lowercase();
    for &(an, f, t, scale, offset) in TABLE {
        if an != "*" && !a.contains(an) {
            continue;
        }
        if f == from && t == to {
            return Some((scale, offset));
        }
        if f == to && t == from {
            return Some((1.0 / scale, -offset / scale));
        }
    }
    None
}

/// The units the table converts `from` into for `analyte` (for error messages).
pub fn known_targets(analyte: &str, from: &str) -> Vec<&'static str> {
    let a = analyte.to_ascii_lowercase();
    let mut out = Vec::new();
    for &(an, f, t, ..) in TABLE {
        if an != "*" && !a.contains(an) {
            continue;
        }
        if f == from {
            out.push(t);
        } else if t == from {
            out.push(f);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glucose_and_creatinine_round_trip() {
        let (s, o) = conversion("glucose", "mg/dL", "mmol/L").unwrap();
        assert!((90.0 * s + o - 4.9956).abs() < 1e-3);
        let (s, _) = conversion("serum_creatinine", "umol/L", "mg/dL").unwrap();
        assert!((88.42 * s - 1.0).abs() < 1e-12);
        let (s, o) = conversion("temp", "°F", "°C").unwrap();
        assert!((98.6 * s + o - 37.0).abs() < 1e-9);
        assert!(conversion("glucose", "mg/dL", "umol/L").is_none());
    }
}
