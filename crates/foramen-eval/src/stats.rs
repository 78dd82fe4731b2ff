//! Reader-study tests, computed as SciPy computes them (`f_oneway`, `kruskal`,
//! `friedmanchisquare`, `wilcoxon(method="approx")`), plus Holm's correction.

use crate::special::{chi2_sf, f_sf, norm_sf};

/// A test statistic and its p-value; `NaN` where the test is undefined (as SciPy).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TestResult {
    /// The statistic (F, H, chi-square, or Wilcoxon's T).
    pub statistic: f64,
    /// Two-sided p-value.
    pub p_value: f64,
}

const UNDEFINED: TestResult = TestResult {
    statistic: f64::NAN,
    p_value: f64::NAN,
};

/// Ranks with ties averaged (1-based), and the sizes of the tie groups.
pub fn rank_average(x: &[f64]) -> (Vec<f64>, Vec<usize>) {
    let mut idx: Vec<usize> = (0..x.len()).collect();
    idx.sort_by(|&a, &b| x[a].total_cmp(&x[b]));
    let mut ranks = vec![0.0; x.len()];
    let mut ties = Vec::new();
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && x[idx[j + 1]] == x[idx[i]] {
            j += 1;
        }
        let r = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            ranks[k] = r;
        }
        ties.push(j - i + 1);
        i = j + 1;
    }
    (ranks, ties)
}

/// One-way ANOVA across independent groups.
pub fn f_oneway(groups: &[&[f64]]) -> TestResult {
    let k = groups.len();
    let n: usize = groups.iter().map(|g| g.len()).sum();
    if k < 2 || n <= k || groups.iter().any(|g| g.is_empty()) {
        return UNDEFINED;
    }
    let grand = groups.iter().flat_map(|g| g.iter()).sum::<f64>() / n as f64;
    let (mut ssb, mut ssw) = (0.0, 0.0);
    for g in groups {
        let m = g.iter().sum::<f64>() / g.len() as f64;
        ssb += g.len() as f64 * (m - grand).powi(2);
        ssw += g.iter().map(|v| (v - m).powi(2)).sum::<f64>();
    }
    let (dfb, dfw) = ((k - 1) as f64, (n - k) as f64);
    let f = (ssb / dfb) / (ssw / dfw);
    TestResult {
        statistic: f,
        p_value: if f.is_finite() {
            f_sf(f, dfb, dfw)
        } else {
            f64::NAN
        },
    }
}

/// Kruskal-Wallis H test across independent groups, tie-corrected.
pub fn kruskal(groups: &[&[f64]]) -> TestResult {
    let all: Vec<f64> = groups.iter().flat_map(|g| g.iter().copied()).collect();
    let n = all.len() as f64;
    if groups.len() < 2 || groups.iter().any(|g| g.is_empty()) {
        return UNDEFINED;
    }
    let (ranks, ties) = rank_average(&all);
    let tie_correction =
        1.0 - ties.iter().map(|&t| (t * t * t - t) as f64).sum::<f64>() / (n * n * n - n);
    if tie_correction == 0.0 {
        return UNDEFINED; // All values identical.
    }
    let mut start = 0;
    let mut ssbn = 0.0;
    for g in groups {
        let s: f64 = ranks[start..start + g.len()].iter().sum();
        ssbn += s * s / g.len() as f64;
        start += g.len();
    }
    let h = (12.0 / (n * (n + 1.0)) * ssbn - 3.0 * (n + 1.0)) / tie_correction;
    TestResult {
        statistic: h,
        p_value: chi2_sf(h, (groups.len() - 1) as f64),
    }
}

/// Friedman test: `treatments[j][i]` is treatment j on block i (every treatment on
/// the same blocks, e.g. every reader on the same images).
pub fn friedman(treatments: &[&[f64]]) -> TestResult {
    let k = treatments.len();
    let n = treatments.first().map_or(0, |t| t.len());
    if k < 3 || n == 0 || treatments.iter().any(|t| t.len() != n) {
        return UNDEFINED; // SciPy requires at least 3 treatments.
    }
    let mut rank_sums = vec![0.0; k];
    let mut ties = 0.0;
    for i in 0..n {
        let row: Vec<f64> = treatments.iter().map(|t| t[i]).collect();
        let (r, groups) = rank_average(&row);
        for (s, v) in rank_sums.iter_mut().zip(r) {
            *s += v;
        }
        ties += groups
            .iter()
            .filter(|&&t| t > 1)
            .map(|&t| (t * (t * t - 1)) as f64)
            .sum::<f64>();
    }
    let (kf, nf) = (k as f64, n as f64);
    let c = 1.0 - ties / (kf * (kf * kf - 1.0) * nf);
    let ssbn: f64 = rank_sums.iter().map(|s| s * s).sum();
    let chi = (12.0 / (kf * nf * (kf + 1.0)) * ssbn - 3.0 * nf * (kf + 1.0)) / c;
    TestResult {
        statistic: chi,
        p_value: chi2_sf(chi, kf - 1.0),
    }
}

/// Wilcoxon signed-rank test of paired samples, normal approximation, zero
/// differences dropped, tie-corrected, no continuity correction (SciPy's
/// `wilcoxon(x, y, method="approx")`). The statistic is min(R+, R-).
pub fn wilcoxon(x: &[f64], y: &[f64]) -> TestResult {
    if x.len() != y.len() {
        return UNDEFINED;
    }
    let d: Vec<f64> = x
        .iter()
        .zip(y)
        .map(|(a, b)| a - b)
        .filter(|d| *d != 0.0)
        .collect();
    let n = d.len() as f64;
    if d.is_empty() {
        return UNDEFINED;
    }
    let abs: Vec<f64> = d.iter().map(|v| v.abs()).collect();
    let (ranks, ties) = rank_average(&abs);
    let r_plus: f64 = d
        .iter()
        .zip(&ranks)
        .filter(|(v, _)| **v > 0.0)
        .map(|(_, r)| r)
        .sum();
    let r_minus: f64 = d
        .iter()
        .zip(&ranks)
        .filter(|(v, _)| **v < 0.0)
        .map(|(_, r)| r)
        .sum();
    let mn = n * (n + 1.0) * 0.25;
    let tie_correct: f64 = ties.iter().map(|&t| (t * t * t - t) as f64).sum();
    let se = ((n * (n + 1.0) * (2.0 * n + 1.0) - tie_correct / 2.0) / 24.0).sqrt();
    let z = (r_plus - mn) / se;
    TestResult {
        statistic: r_plus.min(r_minus),
        p_value: (2.0 * norm_sf(z.abs())).min(1.0),
    }
}

/// Holm-Bonferroni adjusted p-values, in the input order (NaN stays NaN).
pub fn holm(p: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..p.len()).filter(|&i| !p[i].is_nan()).collect();
    idx.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let m = idx.len();
    let mut out = vec![f64::NAN; p.len()];
    let mut running: f64 = 0.0;
    for (rank, &i) in idx.iter().enumerate() {
        running = running.max(((m - rank) as f64 * p[i]).min(1.0));
        out[i] = running;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: TestResult, stat: f64, p: f64) {
        assert!(
            (a.statistic - stat).abs() < 1e-9 && (a.p_value - p).abs() < 1e-9,
            "{a:?} vs ({stat}, {p})"
        );
    }

    // Expected values printed by SciPy 1.16 for these exact inputs; the Python suite
    // compares against SciPy on random inputs as well.
    const A: [f64; 6] = [0.61, 0.58, 0.70, 0.55, 0.66, 0.61];
    const B: [f64; 6] = [0.59, 0.52, 0.64, 0.50, 0.60, 0.57];
    const C: [f64; 6] = [0.52, 0.50, 0.61, 0.49, 0.58, 0.55];
    const F_STAT: f64 = 3.435647756138866;
    const F_P: f64 = 0.059105191491788805;
    const H_STAT: f64 = 5.035726673603884;
    const H_P: f64 = 0.08063170562339547;
    const FR_STAT: f64 = 12.0;
    const FR_P: f64 = 0.002478752176666357;
    const W_STAT: f64 = 0.0;
    const W_P: f64 = 0.027281171477617997;

    #[test]
    fn matches_scipy_on_a_small_reader_study() {
        close(f_oneway(&[&A, &B, &C]), F_STAT, F_P);
        close(kruskal(&[&A, &B, &C]), H_STAT, H_P);
        close(friedman(&[&A, &B, &C]), FR_STAT, FR_P);
        close(wilcoxon(&A, &B), W_STAT, W_P);
    }

    #[test]
    fn holm_is_monotone_and_capped() {
        let adj = holm(&[0.01, 0.04, 0.03, f64::NAN, 0.5]);
        assert!((adj[0] - 0.04).abs() < 1e-12);
        assert!((adj[2] - 0.09).abs() < 1e-12);
        assert!(
            (adj[1] - 0.09).abs() < 1e-12,
            "never below an earlier adjusted value"
        );
        assert!(adj[3].is_nan());
        assert!((adj[4] - 0.5).abs() < 1e-12);
    }

    #[test]
    fn undefined_cases_are_nan() {
        assert!(wilcoxon(&[1.0, 2.0], &[1.0, 2.0]).p_value.is_nan());
        assert!(kruskal(&[&[1.0, 1.0], &[1.0]]).p_value.is_nan());
        assert!(friedman(&[&[1.0], &[2.0]]).p_value.is_nan());
        assert!(f_oneway(&[&[1.0]]).p_value.is_nan());
    }
}
