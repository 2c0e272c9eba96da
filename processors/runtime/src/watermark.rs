//! Offsets safe to commit when records finish out of order: per partition, one past the last
//! record before the oldest one still in flight. No I/O; the unordered runner drives it.

use std::collections::{BTreeMap, BTreeSet};

/// A topic and partition.
pub type Partition = (String, i32);

#[derive(Debug, Default)]
struct Marks {
    in_flight: BTreeSet<i64>,
    /// One past the highest offset taken so far.
    next: i64,
    /// What was last committed (or handed out to be).
    committed: Option<i64>,
}

/// The watermarks of every partition a runner is consuming.
#[derive(Debug, Default)]
pub struct Watermarks {
    partitions: BTreeMap<Partition, Marks>,
}

impl Watermarks {
    /// A record was taken for processing.
    pub fn start(&mut self, partition: &Partition, offset: i64) {
        let marks = self.partitions.entry(partition.clone()).or_default();
        marks.in_flight.insert(offset);
        marks.next = marks.next.max(offset + 1);
    }

    /// A record finished (its outputs are acknowledged). Unknown records are ignored: they
    /// belong to an assignment that was reset since.
    pub fn finish(&mut self, partition: &Partition, offset: i64) {
        if let Some(marks) = self.partitions.get_mut(partition) {
            marks.in_flight.remove(&offset);
        }
    }

    /// How many records are in flight.
    pub fn in_flight(&self) -> usize {
        self.partitions.values().map(|m| m.in_flight.len()).sum()
    }

    /// The offsets to commit that moved since the last call: for each partition, its oldest
    /// record in flight, or one past the last record taken when none is.
    pub fn to_commit(&mut self) -> BTreeMap<Partition, i64> {
        let mut moved = BTreeMap::new();
        for (partition, marks) in &mut self.partitions {
            let safe = marks.in_flight.first().copied().unwrap_or(marks.next);
            if safe > 0 && marks.committed.is_none_or(|c| c < safe) {
                marks.committed = Some(safe);
                moved.insert(partition.clone(), safe);
            }
        }
        moved
    }

    /// Forget everything (the group rebalanced: what is in flight will be consumed again by
    /// whoever owns its partition now).
    pub fn reset(&mut self) {
        self.partitions.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(n: i32) -> Partition {
        ("t".to_string(), n)
    }

    #[test]
    fn commits_stop_at_the_oldest_record_in_flight() {
        let mut marks = Watermarks::default();
        for offset in 10..15 {
            marks.start(&p(0), offset);
        }
        // Resume at 10: nothing from 10 on is done.
        assert_eq!(marks.to_commit(), BTreeMap::from([(p(0), 10)]));
        marks.finish(&p(0), 11);
        marks.finish(&p(0), 12);
        assert!(marks.to_commit().is_empty(), "10 is still in flight");
        marks.finish(&p(0), 10);
        assert_eq!(marks.to_commit(), BTreeMap::from([(p(0), 13)]));
        assert!(marks.to_commit().is_empty(), "nothing moved since");
        marks.finish(&p(0), 14);
        marks.finish(&p(0), 13);
        assert_eq!(marks.to_commit(), BTreeMap::from([(p(0), 15)]));
        assert_eq!(marks.in_flight(), 0);
    }

    #[test]
    fn partitions_are_independent() {
        let mut marks = Watermarks::default();
        marks.start(&p(0), 5);
        marks.start(&p(1), 7);
        marks.finish(&p(1), 7);
        assert_eq!(marks.to_commit(), BTreeMap::from([(p(0), 5), (p(1), 8)]));
        marks.finish(&p(0), 5);
        assert_eq!(marks.to_commit(), BTreeMap::from([(p(0), 6)]));
    }

    #[test]
    fn after_a_reset_late_finishes_are_ignored() {
        let mut marks = Watermarks::default();
        marks.start(&p(0), 3);
        marks.reset();
        marks.finish(&p(0), 3);
        assert!(marks.to_commit().is_empty());
        marks.start(&p(0), 3);
        assert_eq!(
            marks.to_commit(),
            BTreeMap::from([(p(0), 3)]),
            "3 in flight again"
        );
        marks.finish(&p(0), 3);
        assert_eq!(marks.to_commit(), BTreeMap::from([(p(0), 4)]));
    }
}
