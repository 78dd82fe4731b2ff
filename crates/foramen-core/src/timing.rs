//! A process-wide monotonic clock and latency statistics.

use std::sync::OnceLock;
use std::time::Instant;

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Microseconds since the first call in this process, monotonic.
///
/// Every stage stamps with this one clock so ages and latencies compare directly.
pub fn clock_us() -> u64 {
    epoch().elapsed().as_micros() as u64
}

/// Collects latency samples (milliseconds) and reports mean and percentiles.
#[derive(Clone, Debug, Default)]
pub struct LatencyStats {
    samples_ms: Vec<f64>,
}

impl LatencyStats {
    /// Adds one sample in milliseconds.
    pub fn push(&mut self, ms: f64) {
        self.samples_ms.push(ms);
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.samples_ms.len()
    }

    /// True when no sample was pushed.
    pub fn is_empty(&self) -> bool {
        self.samples_ms.is_empty()
    }

    /// Arithmetic mean, 0 when empty.
    pub fn mean(&self) -> f64 {
        if self.samples_ms.is_empty() {
            return 0.0;
        }
        self.samples_ms.iter().sum::<f64>() / self.samples_ms.len() as f64
    }

    /// Percentile `p` in 0..=100 by nearest rank, 0 when empty.
    pub fn percentile(&self, p: f64) -> f64 {
        if self.samples_ms.is_empty() {
            return 0.0;
        }
        let mut sorted = self.samples_ms.clone();
        sorted.sort_by(f64::total_cmp);
        let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
        sorted[rank.clamp(1, sorted.len()) - 1]
    }

    /// Largest sample, 0 when empty.
    pub fn max(&self) -> f64 {
        self.samples_ms.iter().copied().fold(0.0, f64::max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let mut s = LatencyStats::default();
        for v in 1..=100 {
            s.push(v as f64);
        }
        assert_eq!(s.percentile(50.0), 50.0);
        assert_eq!(s.percentile(99.0), 99.0);
        assert_eq!(s.percentile(100.0), 100.0);
        assert_eq!(s.mean(), 50.5);
        assert_eq!(s.max(), 100.0);
    }

    #[test]
    fn empty_is_zero() {
        let s = LatencyStats::default();
        assert_eq!((s.mean(), s.percentile(99.0)), (0.0, 0.0));
    }

    #[test]
    fn clock_is_monotonic() {
        let a = clock_us();
        let b = clock_us();
        assert!(b >= a);
    }
}
