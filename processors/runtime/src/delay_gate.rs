//! When records of a delayed topic may run: a record is due at its timestamp plus the topic's
//! delay. A partition whose next record is not due is paused until it is. No I/O; the unordered
//! runner pauses, seeks and resumes the consumer as this says.

use std::collections::BTreeMap;

use crate::watermark::Partition;

/// What to do with a record just received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Process it now.
    Due,
    /// Hold this record, pause its partition (rewound just past it), and at `until` (ms since
    /// the epoch) run it and resume the partition.
    Wait { until: i64 },
    /// Its partition is paused: drop it unprocessed (it is consumed again on resume).
    Skip,
}

/// The partitions paused until their head record is due.
#[derive(Debug, Default)]
pub struct DelayGate {
    /// The delay of the topic in milliseconds; `None` = every record is due at once.
    delay_ms: Option<i64>,
    paused: BTreeMap<Partition, i64>,
}

impl DelayGate {
    pub fn new(delay_ms: Option<i64>) -> Self {
        DelayGate {
            delay_ms,
            paused: BTreeMap::new(),
        }
    }

    /// Decide for a record of `partition` stamped `timestamp` (ms; `None` when the broker kept
    /// none: due at once), at `now`.
    pub fn admit(&mut self, partition: &Partition, timestamp: Option<i64>, now: i64) -> Gate {
        if self.paused.contains_key(partition) {
            return Gate::Skip;
        }
        let (Some(delay), Some(timestamp)) = (self.delay_ms, timestamp) else {
            return Gate::Due;
        };
        let until = timestamp.saturating_add(delay);
        if until <= now {
            return Gate::Due;
        }
        self.paused.insert(partition.clone(), until);
        Gate::Wait { until }
    }

    /// The earliest time a paused partition becomes due.
    pub fn next_wake(&self) -> Option<i64> {
        self.paused.values().min().copied()
    }

    /// Partitions due at `now`; they are no longer paused.
    pub fn wake(&mut self, now: i64) -> Vec<Partition> {
        let due: Vec<Partition> = self
            .paused
            .iter()
            .filter(|(_, until)| **until <= now)
            .map(|(p, _)| p.clone())
            .collect();
        for partition in &due {
            self.paused.remove(partition);
        }
        due
    }

    /// Forget every pause (after a rebalance); returns the partitions that were paused.
    pub fn clear(&mut self) -> Vec<Partition> {
        std::mem::take(&mut self.paused).into_keys().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(n: i32) -> Partition {
        ("callbacks.retry.1".to_string(), n)
    }

    #[test]
    fn without_a_delay_everything_is_due() {
        let mut gate = DelayGate::new(None);
        assert_eq!(gate.admit(&p(0), Some(1_000), 0), Gate::Due);
        assert_eq!(gate.next_wake(), None);
    }

    #[test]
    fn a_record_waits_for_its_timestamp_plus_the_delay() {
        let mut gate = DelayGate::new(Some(60_000));
        assert_eq!(gate.admit(&p(0), Some(1_000), 61_000), Gate::Due);
        assert_eq!(
            gate.admit(&p(0), Some(2_000), 61_000),
            Gate::Wait { until: 62_000 }
        );
        // Later records of a paused partition are not looked at; other partitions go on.
        assert_eq!(gate.admit(&p(0), Some(1_500), 61_000), Gate::Skip);
        assert_eq!(gate.admit(&p(1), Some(0), 61_000), Gate::Due);
        assert_eq!(gate.next_wake(), Some(62_000));
        assert!(gate.wake(61_999).is_empty());
        assert_eq!(gate.wake(62_000), vec![p(0)]);
        assert_eq!(gate.admit(&p(0), Some(2_000), 62_000), Gate::Due);
    }

    #[test]
    fn a_record_without_a_timestamp_is_due_and_clear_forgets_pauses() {
        let mut gate = DelayGate::new(Some(1_000));
        assert_eq!(gate.admit(&p(0), None, 0), Gate::Due);
        assert_eq!(gate.admit(&p(1), Some(0), 0), Gate::Wait { until: 1_000 });
        assert_eq!(gate.clear(), vec![p(1)]);
        assert_eq!(gate.next_wake(), None);
    }
}
