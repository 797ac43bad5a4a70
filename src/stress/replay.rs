//! Replay tokens: a failure, packed small enough to paste into a command line.
//!
//! A token encodes the scenario hash, the perturbation and property indices, the
//! perturbation seed, the severity (its exact `f64` bits), the failing samples, and a digest
//! of the network's inputs and outputs on them. `beacons stress SCENARIO --replay TOKEN`
//! regenerates the cohort, applies the perturbation with that seed and severity, evaluates
//! the network on the whole cohort as the search did, and compares the digest: equal means
//! the failure was reproduced bit for bit.
//!
//! Layout (before encoding): version byte 1, hash (8 bytes LE), perturbation and property
//! (LEB128), seed (8 LE), severity bits (8 LE), digest (8 LE), samples: LEB128 count + 1
//! (0 = the whole cohort) and the sorted indices as LEB128 gaps. Encoded in lowercase
//! Crockford base32 without padding.

const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
const VERSION: u8 = 1;

/// A decoded replay token.
#[derive(Clone, Debug, PartialEq)]
pub struct Token {
    pub scenario_hash: u64,
    pub perturbation: usize,
    pub property: usize,
    pub seed: u64,
    pub severity: f64,
    /// The failing samples (sorted), or `None` for the whole cohort.
    pub samples: Option<Vec<usize>>,
    /// Digest of the network's inputs and outputs on the samples.
    pub digest: u64,
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

fn get_varint(bytes: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *bytes.get(*pos)?;
        *pos += 1;
        v |= u64::from(b & 0x7f).checked_shl(shift)?;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

fn get_u64(bytes: &[u8], pos: &mut usize) -> Option<u64> {
    let b = bytes.get(*pos..*pos + 8)?;
    *pos += 8;
    Some(u64::from_le_bytes(b.try_into().ok()?))
}

fn base32(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 8 / 5 + 1);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &b in bytes {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((acc >> bits) & 31) as usize] as char);
        }
        acc &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(ALPHABET[((acc << (5 - bits)) & 31) as usize] as char);
    }
    out
}

fn unbase32(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.chars() {
        let c = match c.to_ascii_lowercase() {
            'o' => '0',
            'i' | 'l' => '1',
            c => c,
        };
        let v = ALPHABET.iter().position(|&a| a as char == c)? as u32;
        acc = (acc << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

impl Token {
    /// The token's text.
    pub fn encode(&self) -> String {
        let mut b = vec![VERSION];
        b.extend_from_slice(&self.scenario_hash.to_le_bytes());
        put_varint(&mut b, self.perturbation as u64);
        put_varint(&mut b, self.property as u64);
        b.extend_from_slice(&self.seed.to_le_bytes());
        b.extend_from_slice(&self.severity.to_bits().to_le_bytes());
        b.extend_from_slice(&self.digest.to_le_bytes());
        match &self.samples {
            None => put_varint(&mut b, 0),
            Some(s) => {
                put_varint(&mut b, s.len() as u64 + 1);
                let mut prev = 0usize;
                for (k, &i) in s.iter().enumerate() {
                    put_varint(&mut b, (if k == 0 { i } else { i - prev }) as u64);
                    prev = i;
                }
            }
        }
        base32(&b)
    }

    /// Parses a token; `Err` says what is wrong with it.
    pub fn decode(text: &str) -> Result<Token, String> {
        let bad =
            || "not a beacons replay token (copy it whole from the stress results)".to_string();
        let b = unbase32(text.trim()).ok_or_else(bad)?;
        if b.first() != Some(&VERSION) {
            return Err(bad());
        }
        let mut pos = 1;
        let scenario_hash = get_u64(&b, &mut pos).ok_or_else(bad)?;
        let perturbation = get_varint(&b, &mut pos).ok_or_else(bad)? as usize;
        let property = get_varint(&b, &mut pos).ok_or_else(bad)? as usize;
        let seed = get_u64(&b, &mut pos).ok_or_else(bad)?;
        let severity = f64::from_bits(get_u64(&b, &mut pos).ok_or_else(bad)?);
        let digest = get_u64(&b, &mut pos).ok_or_else(bad)?;
        let count = get_varint(&b, &mut pos).ok_or_else(bad)?;
        let samples = if count == 0 {
            None
        } else {
            let n = (count - 1) as usize;
            if n > b.len() {
                return Err(bad());
            }
            let mut s = Vec::with_capacity(n);
            let mut prev = 0usize;
            for k in 0..n {
                let d = get_varint(&b, &mut pos).ok_or_else(bad)? as usize;
                let i = if k == 0 {
                    d
                } else {
                    prev.checked_add(d).ok_or_else(bad)?
                };
                s.push(i);
                prev = i;
            }
            Some(s)
        };
        // Trailing bits of the last base32 character are padding; more bytes are not.
        if pos != b.len() || !(0.0..=1.0).contains(&severity) {
            return Err(bad());
        }
        Ok(Token {
            scenario_hash,
            perturbation,
            property,
            seed,
            severity,
            samples,
            digest,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_garbage() {
        let t = Token {
            scenario_hash: 0xdead_beef_0123_4567,
            perturbation: 3,
            property: 200,
            seed: u64::MAX - 5,
            severity: 0.312_345_678_9,
            samples: Some(vec![2, 17, 18, 4000]),
            digest: 42,
        };
        let s = t.encode();
        assert!(s.len() < 80, "{s}");
        assert_eq!(Token::decode(&s), Ok(t.clone()));
        assert_eq!(Token::decode(&s.to_uppercase()), Ok(t.clone()));
        let all = Token { samples: None, ..t };
        assert_eq!(Token::decode(&all.encode()), Ok(all));
        assert!(Token::decode("hello").is_err());
        assert!(Token::decode("").is_err());
        assert!(Token::decode(&s[..s.len() - 3]).is_err());
    }
}
