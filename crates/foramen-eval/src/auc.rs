//! One-vs-rest ROC and AUC over any number of pixels in constant memory.
//!
//! Scores are probabilities in [0, 1]. Softmax outputs crowd near 0 and near 1, where
//! uniform bins would merge millions of distinct scores. So a score p <= 1/2 is binned
//! by the top 20 bits of its f32 encoding (monotonic for non-negative floats, each bin
//! 2^-11 of its value wide), and p > 1/2 by the same bits of 1 - p, mirrored: bins are
//! *relative* in the distance to both ends. (1 - p is exact in f32 for p > 1/2, so
//! distinct scores near 1 stay distinct.) Exact ties share a bin and count one half,
//! as in the Mann-Whitney definition; the only error comes from distinct scores within
//! 0.05% of each other, in distance to the nearer end.

/// Bin of p = 1/2.
const HALF: usize = (0x3F00_0000u32 >> 12) as usize;
/// Number of bins: [0, 1/2] by p, (1/2, 1] mirrored by 1 - p.
const BINS: usize = 2 * HALF + 1;

/// Positive and negative score histograms for one class.
#[derive(Clone)]
pub struct BinnedRoc {
    pub(crate) pos: Vec<u64>,
    pub(crate) neg: Vec<u64>,
}

impl Default for BinnedRoc {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for BinnedRoc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BinnedRoc")
            .field("positives", &self.positives())
            .field("negatives", &self.negatives())
            .finish()
    }
}

#[inline]
fn bin(score: f32) -> usize {
    // NaN counts as 0: a broken probability must not index out of range.
    let s = if score.is_nan() {
        0.0
    } else {
        score.clamp(0.0, 1.0)
    };
    if s <= 0.5 {
        (s.to_bits() >> 12) as usize
    } else {
        2 * HALF - ((1.0 - s).to_bits() >> 12) as usize
    }
}

impl BinnedRoc {
    /// Empty histograms (about 8 MB).
    pub fn new() -> Self {
        Self {
            pos: vec![0; BINS],
            neg: vec![0; BINS],
        }
    }

    /// Counts one score; `positive` when the truth is this class.
    #[inline]
    pub fn add(&mut self, score: f32, positive: bool) {
        let b = bin(score);
        if positive {
            self.pos[b] += 1;
        } else {
            self.neg[b] += 1;
        }
    }

    /// Adds another histogram's counts.
    pub fn merge(&mut self, other: &BinnedRoc) {
        for (a, b) in self.pos.iter_mut().zip(&other.pos) {
            *a += b;
        }
        for (a, b) in self.neg.iter_mut().zip(&other.neg) {
            *a += b;
        }
    }

    /// Positive samples counted.
    pub fn positives(&self) -> u64 {
        self.pos.iter().sum()
    }

    /// Negative samples counted.
    pub fn negatives(&self) -> u64 {
        self.neg.iter().sum()
    }

    /// Area under the ROC curve, ties counted one half; `None` without both
    /// positives and negatives.
    pub fn auc(&self) -> Option<f64> {
        let (p, n) = (self.positives(), self.negatives());
        if p == 0 || n == 0 {
            return None;
        }
        let mut neg_below = 0u128;
        let mut twice = 0u128;
        for (&pb, &nb) in self.pos.iter().zip(&self.neg) {
            twice += pb as u128 * (2 * neg_below + nb as u128);
            neg_below += nb as u128;
        }
        Some(twice as f64 / 2.0 / (p as f64 * n as f64))
    }

    /// ROC points (false-positive rate, true-positive rate) from (0,0) to (1,1),
    /// thinned to at most `max_points` for plotting.
    pub fn curve(&self, max_points: usize) -> Vec<(f64, f64)> {
        let (p, n) = (self.positives() as f64, self.negatives() as f64);
        if p == 0.0 || n == 0.0 {
            return Vec::new();
        }
        let mut pts = vec![(0.0, 0.0)];
        let (mut tp, mut fp) = (0u64, 0u64);
        // Thresholds from high to low score.
        for b in (0..BINS).rev() {
            if self.pos[b] + self.neg[b] == 0 {
                continue;
            }
            tp += self.pos[b];
            fp += self.neg[b];
            pts.push((fp as f64 / n, tp as f64 / p));
        }
        if pts.len() > max_points.max(2) {
            let step = (pts.len() - 1) as f64 / (max_points.max(2) - 1) as f64;
            pts = (0..max_points.max(2))
                .map(|i| pts[((i as f64 * step).round() as usize).min(pts.len() - 1)])
                .collect();
        }
        pts
    }
}

/// Exact one-vs-rest AUC by sorting (Mann-Whitney with tie-averaged ranks): the
/// reference for [`BinnedRoc`], and for small inputs.
pub fn exact_auc(scores: &[f32], positive: &[bool]) -> Option<f64> {
    let as_f64: Vec<f64> = scores.iter().map(|&s| s as f64).collect();
    let (ranks, _) = crate::stats::rank_average(&as_f64);
    let n_pos = positive.iter().filter(|&&p| p).count() as u64;
    let n_neg = scores.len() as u64 - n_pos;
    if n_pos == 0 || n_neg == 0 {
        return None;
    }
    let rank_sum: f64 = ranks
        .iter()
        .zip(positive)
        .filter(|(_, p)| **p)
        .map(|(r, _)| r)
        .sum();
    let u = rank_sum - (n_pos * (n_pos + 1)) as f64 / 2.0;
    Some(u / (n_pos as f64 * n_neg as f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg(seed: &mut u64) -> f64 {
        *seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (*seed >> 11) as f64 / (1u64 << 53) as f64
    }

    #[test]
    fn binned_matches_exact_on_softmax_like_scores() {
        let mut s = 42u64;
        let (mut scores, mut labels) = (vec![], vec![]);
        let mut roc = BinnedRoc::new();
        for _ in 0..200_000 {
            let pos = lcg(&mut s) < 0.3;
            // Logistic of a shifted normal-ish logit: mass piles up near 0 and 1.
            let logit = (lcg(&mut s) + lcg(&mut s) + lcg(&mut s) - 1.5) * 12.0
                + if pos { 2.0 } else { -2.0 };
            let p = (1.0 / (1.0 + (-logit).exp())) as f32;
            scores.push(p);
            labels.push(pos);
            roc.add(p, pos);
        }
        let exact = exact_auc(&scores, &labels).expect("both classes");
        let binned = roc.auc().expect("both classes");
        assert!(
            (exact - binned).abs() < 1e-4,
            "exact {exact} binned {binned}"
        );
    }

    #[test]
    fn ties_count_half_and_degenerate_cases() {
        let mut roc = BinnedRoc::new();
        for (s, p) in [(0.5, true), (0.5, false), (0.9, true), (0.1, false)] {
            roc.add(s, p);
        }
        // Pairs: (0.5+,0.5-) tie 0.5, (0.5+,0.1-) 1, (0.9+,0.5-) 1, (0.9+,0.1-) 1.
        assert_eq!(roc.auc(), Some(3.5 / 4.0));
        assert_eq!(
            exact_auc(&[0.5, 0.5, 0.9, 0.1], &[true, false, true, false]),
            Some(3.5 / 4.0)
        );
        let mut only_pos = BinnedRoc::new();
        only_pos.add(0.3, true);
        assert_eq!(only_pos.auc(), None);
        let mut nan = BinnedRoc::new();
        nan.add(f32::NAN, true);
        nan.add(0.2, false);
        assert_eq!(nan.auc(), Some(0.0));
    }

    #[test]
    fn curve_runs_corner_to_corner_and_merges() {
        let mut a = BinnedRoc::new();
        let mut b = BinnedRoc::new();
        for i in 0..1000 {
            a.add(i as f32 / 1000.0, i % 3 == 0);
            b.add(i as f32 / 1000.0, i % 2 == 0);
        }
        a.merge(&b);
        assert_eq!(a.positives() + a.negatives(), 2000);
        let c = a.curve(50);
        assert!(c.len() <= 50);
        assert_eq!(c.first(), Some(&(0.0, 0.0)));
        assert_eq!(c.last(), Some(&(1.0, 1.0)));
        assert!(c.windows(2).all(|w| w[1].0 >= w[0].0 && w[1].1 >= w[0].1));
    }
}
