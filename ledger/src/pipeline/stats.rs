//! What the sequencer has committed, counted as it goes, for the service's metrics:
//! entries, batches, and how large the batches were (group commit's effect).

use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds of the batch-size histogram's buckets (entries per batch).
pub const BATCH_BUCKETS: [u64; 12] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096];

#[derive(Debug, Default)]
pub struct PipelineStats {
    entries: AtomicU64,
    batches: AtomicU64,
    /// Batches per bucket of [`BATCH_BUCKETS`] (not cumulative), then the larger ones.
    sizes: [AtomicU64; BATCH_BUCKETS.len() + 1],
}

/// A copy of the counts at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsSnapshot {
    pub entries: u64,
    pub batches: u64,
    /// Cumulative: batches of at most `BATCH_BUCKETS[i]` entries; the last is all.
    pub batches_up_to: Vec<u64>,
}

impl PipelineStats {
    pub(crate) fn committed(&self, entries: usize) {
        let n = entries as u64;
        if n == 0 {
            return;
        }
        self.entries.fetch_add(n, Ordering::Relaxed);
        self.batches.fetch_add(1, Ordering::Relaxed);
        let bucket = BATCH_BUCKETS
            .iter()
            .position(|&bound| n <= bound)
            .unwrap_or(BATCH_BUCKETS.len());
        self.sizes[bucket].fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        let mut running = 0;
        let batches_up_to = self
            .sizes
            .iter()
            .map(|c| {
                running += c.load(Ordering::Relaxed);
                running
            })
            .collect();
        StatsSnapshot {
            entries: self.entries.load(Ordering::Relaxed),
            batches: self.batches.load(Ordering::Relaxed),
            batches_up_to,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_sizes_fall_into_cumulative_buckets() {
        let stats = PipelineStats::default();
        for n in [1, 3, 3, 100, 5000] {
            stats.committed(n);
        }
        let s = stats.snapshot();
        assert_eq!((s.entries, s.batches), (5107, 5));
        assert_eq!(s.batches_up_to[0], 1); // <= 1
        assert_eq!(s.batches_up_to[2], 3); // <= 4
        assert_eq!(s.batches_up_to[7], 4); // <= 128
        assert_eq!(*s.batches_up_to.last().unwrap(), 5);
    }
}
