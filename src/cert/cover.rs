//! Exact coverage: do closed boxes (the leaves) cover a closed box (the region)?
//!
//! In: the root box and the leaves, as `f64` corners (compared exactly, no tolerance). Out:
//! `Ok(())`, or an uncovered sub-box. The argument: a box `B` is covered if some leaf
//! contains it. Otherwise, if some leaf meeting `B` has a face strictly inside `B` (a value
//! `v` with `B.lo_i < v < B.hi_i`), `B` is the union of `[B.lo_i, v]` and `[v, B.hi_i]` along
//! `i`, and it is covered iff both halves are, each by the leaves that meet it. Otherwise
//! every leaf meeting `B` touches it only on its boundary (it cannot contain `B`, and none
//! of its faces is inside), so the points of `B` whose every free coordinate lies strictly
//! inside are covered by no leaf: `B` is a witness of a gap. Each split strictly shrinks the
//! box along a side to one of finitely many leaf faces, so the search ends. The split is
//! chosen per side as the leaf face nearest the box's centre, taking the side whose face
//! the fewest leaves straddle (the bisection trees verify makes split cleanly there).

/// A box as lower and upper corners.
pub type Corners<'a> = (&'a [f64], &'a [f64]);

/// What to do with a box in the coverage search.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// The leaf (an index into the leaves) contains the box.
    Contained(usize),
    /// Split along side `i` at `v`: `(left box, its leaves, right box, its leaves)`.
    Split(Sub, Sub),
    /// No leaf covers the box's interior points: a gap.
    Gap,
}

/// A box and the indices of the leaves that meet it.
pub type Sub = (Vec<f64>, Vec<f64>, Vec<usize>);

/// Whether the closed boxes meet.
fn meets(l: &Corners, blo: &[f64], bhi: &[f64]) -> bool {
    (0..blo.len()).all(|i| l.0[i] <= bhi[i] && blo[i] <= l.1[i])
}

/// The indices of the leaves that meet `[lo, hi]`.
pub fn meeting(lo: &[f64], hi: &[f64], leaves: &[Corners]) -> Vec<usize> {
    (0..leaves.len())
        .filter(|&k| meets(&leaves[k], lo, hi))
        .collect()
}

/// One step of the search on `[blo, bhi]` met by the leaves `idx` (module docs). Among
/// leaves containing the box, one whose corners equal the box's is preferred.
pub fn step(blo: &[f64], bhi: &[f64], idx: &[usize], leaves: &[Corners]) -> Step {
    let d = blo.len();
    let contains = |l: &Corners| (0..d).all(|i| l.0[i] <= blo[i] && bhi[i] <= l.1[i]);
    let equal = |l: &Corners| l.0 == blo && l.1 == bhi;
    if let Some(&k) = idx.iter().find(|&&k| equal(&leaves[k])) {
        return Step::Contained(k);
    }
    if let Some(&k) = idx.iter().find(|&&k| contains(&leaves[k])) {
        return Step::Contained(k);
    }
    // Per side, the interior face nearest the centre, and how many leaves straddle it.
    let mut best: Option<(usize, usize, f64)> = None;
    for i in 0..d {
        if blo[i] >= bhi[i] || blo[i].is_nan() || bhi[i].is_nan() {
            continue;
        }
        let centre = blo[i] + 0.5 * (bhi[i] - blo[i]);
        let mut face: Option<f64> = None;
        for &k in idx {
            for v in [leaves[k].0[i], leaves[k].1[i]] {
                if blo[i] < v
                    && v < bhi[i]
                    && face.is_none_or(|f| (v - centre).abs() < (f - centre).abs())
                {
                    face = Some(v);
                }
            }
        }
        let Some(v) = face else { continue };
        let straddle = idx
            .iter()
            .filter(|&&k| leaves[k].0[i] < v && v < leaves[k].1[i])
            .count();
        if best.is_none_or(|b| straddle < b.1) {
            best = Some((i, straddle, v));
        }
    }
    let Some((i, _, v)) = best else {
        return Step::Gap;
    };
    let mut left_hi = bhi.to_vec();
    left_hi[i] = v;
    let mut right_lo = blo.to_vec();
    right_lo[i] = v;
    let left: Vec<usize> = idx
        .iter()
        .copied()
        .filter(|&k| meets(&leaves[k], blo, &left_hi))
        .collect();
    let right: Vec<usize> = idx
        .iter()
        .copied()
        .filter(|&k| meets(&leaves[k], &right_lo, bhi))
        .collect();
    Step::Split(
        (blo.to_vec(), left_hi, left),
        (right_lo, bhi.to_vec(), right),
    )
}

/// `Err(uncovered box)` when the union of `leaves` does not contain `[lo, hi]`.
pub fn covers(lo: &[f64], hi: &[f64], leaves: &[Corners]) -> Result<(), (Vec<f64>, Vec<f64>)> {
    let mut stack = vec![(lo.to_vec(), hi.to_vec(), meeting(lo, hi, leaves))];
    while let Some((blo, bhi, idx)) = stack.pop() {
        match step(&blo, &bhi, &idx, leaves) {
            Step::Contained(_) => {}
            Step::Gap => return Err((blo, bhi)),
            Step::Split(a, b) => {
                stack.push(a);
                stack.push(b);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(v: &[([f64; 2], [f64; 2])]) -> Vec<(Vec<f64>, Vec<f64>)> {
        v.iter().map(|(l, h)| (l.to_vec(), h.to_vec())).collect()
    }

    fn run(lo: [f64; 2], hi: [f64; 2], leaves: &[(Vec<f64>, Vec<f64>)]) -> bool {
        let refs: Vec<Corners> = leaves
            .iter()
            .map(|(l, h)| (l.as_slice(), h.as_slice()))
            .collect();
        covers(&lo, &hi, &refs).is_ok()
    }

    #[test]
    fn quarters_cover_and_three_do_not() {
        let q = c(&[
            ([0.0, 0.0], [0.5, 0.5]),
            ([0.5, 0.0], [1.0, 0.5]),
            ([0.0, 0.5], [0.5, 1.0]),
            ([0.5, 0.5], [1.0, 1.0]),
        ]);
        assert!(run([0.0, 0.0], [1.0, 1.0], &q));
        assert!(!run([0.0, 0.0], [1.0, 1.0], &q[..3]));
        // A leaf shrunk by one ulp leaves a sliver.
        let mut s = q.clone();
        s[1].1[0] = 1.0f64.next_down();
        assert!(!run([0.0, 0.0], [1.0, 1.0], &s));
        // Overlapping leaves are fine.
        let o = c(&[([0.0, 0.0], [0.7, 1.0]), ([0.3, 0.0], [1.0, 1.0])]);
        assert!(run([0.0, 0.0], [1.0, 1.0], &o));
        // A degenerate region.
        assert!(run([0.0, 2.0], [1.0, 2.0], &c(&[([0.0, 2.0], [1.0, 2.0])])));
        assert!(!run([0.0, 0.0], [1.0, 1.0], &[]));
    }
}
