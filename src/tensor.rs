//! Thin helpers over `ndarray`: shape arithmetic shared by importers, passes and evaluators.
//! No numerical policy lives here.

/// Numpy broadcasting of two shapes (right-aligned), or why they do not broadcast.
pub fn broadcast_shapes(a: &[usize], b: &[usize]) -> Result<Vec<usize>, String> {
    let n = a.len().max(b.len());
    let mut out = vec![0; n];
    for i in 0..n {
        let da = if i + a.len() >= n {
            a[i + a.len() - n]
        } else {
            1
        };
        let db = if i + b.len() >= n {
            b[i + b.len() - n]
        } else {
            1
        };
        out[i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => return Err(format!("shapes {a:?} and {b:?} do not broadcast")),
        };
    }
    Ok(out)
}

/// `shape` left-padded with ones to `rank` axes.
pub fn pad_rank(shape: &[usize], rank: usize) -> Vec<usize> {
    let mut s = vec![1; rank.saturating_sub(shape.len())];
    s.extend_from_slice(shape);
    s
}

/// Row-major strides of a shape.
pub fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcasting() {
        assert_eq!(broadcast_shapes(&[1, 5], &[5]).unwrap(), vec![1, 5]);
        assert_eq!(
            broadcast_shapes(&[2, 1, 3], &[4, 1]).unwrap(),
            vec![2, 4, 3]
        );
        assert!(broadcast_shapes(&[2, 3], &[4]).is_err());
        assert_eq!(pad_rank(&[3], 3), vec![1, 1, 3]);
        assert_eq!(strides(&[2, 3, 4]), vec![12, 4, 1]);
    }
}
