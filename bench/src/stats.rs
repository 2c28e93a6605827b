//! Percentiles of measured samples.
//!
//! Percentiles use the nearest-rank method: the p-th percentile of n sorted
//! samples is the sample at rank ⌈p·n/100⌉. Samples that never arrived
//! (a change not delivered before the run's deadline) count as larger than
//! every measured one, so a percentile that falls among them is unknown
//! (`None`) rather than flattering.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The distribution of one measured quantity, in seconds; as it is
/// written to, and read back from, a result file.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(crate) struct Summary {
    /// Samples measured.
    pub(crate) count: usize,
    /// Samples that never completed within the run's bound.
    pub(crate) missing: usize,
    pub(crate) p50: Option<f64>,
    pub(crate) p99: Option<f64>,
    pub(crate) min: Option<f64>,
    /// The largest measured sample (missing ones are not included).
    pub(crate) max: Option<f64>,
}

impl Summary {
    /// Summarises `samples` (seconds) and `missing` samples that never
    /// completed.
    pub(crate) fn of(mut samples: Vec<f64>, missing: usize) -> Self {
        samples.retain(|s| s.is_finite());
        samples.sort_by(f64::total_cmp);
        Self {
            count: samples.len(),
            missing,
            p50: percentile(&samples, missing, 50.0),
            p99: percentile(&samples, missing, 99.0),
            min: samples.first().copied(),
            max: samples.last().copied(),
        }
    }

    /// Summarises durations.
    pub(crate) fn of_durations(samples: &[Duration], missing: usize) -> Self {
        Self::of(samples.iter().map(Duration::as_secs_f64).collect(), missing)
    }
}

/// The nearest-rank percentile of sorted `samples` followed by `missing`
/// infinite ones.
pub(crate) fn percentile(sorted: &[f64], missing: usize, p: f64) -> Option<f64> {
    let n = sorted.len() + missing;
    if n == 0 {
        return None;
    }
    // Nearest rank, 1-based: ceil(p * n / 100), at least 1.
    let rank = ((p / 100.0) * n as f64).ceil().max(1.0) as usize;
    sorted.get(rank - 1).copied()
}

/// Bytes in KiB, MiB or GiB.
pub(crate) fn bytes(n: u64) -> String {
    let n = n as f64;
    if n >= f64::from(1u32 << 30) {
        format!("{:.2} GiB", n / f64::from(1u32 << 30))
    } else if n >= f64::from(1u32 << 20) {
        format!("{:.1} MiB", n / f64::from(1u32 << 20))
    } else if n >= 1024.0 {
        format!("{:.1} KiB", n / 1024.0)
    } else {
        format!("{n} B")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let samples: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&samples, 0, 50.0), Some(50.0));
        assert_eq!(percentile(&samples, 0, 99.0), Some(99.0));
        assert_eq!(percentile(&samples, 0, 100.0), Some(100.0));
        assert_eq!(percentile(&[7.0], 0, 99.0), Some(7.0));
        assert_eq!(percentile(&[], 0, 50.0), None);
        // Ten samples: p99 is the largest, p50 the fifth.
        let ten: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(percentile(&ten, 0, 99.0), Some(10.0));
        assert_eq!(percentile(&ten, 0, 50.0), Some(5.0));
    }

    #[test]
    fn missing_samples_count_as_slower_than_all() {
        let samples: Vec<f64> = (1..=98).map(f64::from).collect();
        // 98 measured + 2 missing: p99 is among the missing.
        assert_eq!(percentile(&samples, 2, 99.0), None);
        assert_eq!(percentile(&samples, 2, 50.0), Some(50.0));
        let summary = Summary::of(vec![3.0, 1.0, 2.0], 1);
        assert_eq!(summary.count, 3);
        assert_eq!(summary.min, Some(1.0));
        assert_eq!(summary.max, Some(3.0));
        assert_eq!(summary.p50, Some(2.0));
        assert_eq!(summary.p99, None);
    }

    #[test]
    fn samples_are_sorted_before_ranking() {
        let summary = Summary::of(vec![5.0, 1.0, 4.0, 2.0, 3.0, f64::NAN], 0);
        assert_eq!(summary.count, 5);
        assert_eq!(summary.p50, Some(3.0));
        assert_eq!(summary.p99, Some(5.0));
    }
}
