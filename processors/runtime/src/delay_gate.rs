//! When records of delayed topics may run (no I/O; the unordered runner pauses, seeks and
//! resumes the consumer as this says). A record is due at its `switchyard.due-at` header if it
//! has one (held and paced messages: each its own time), else at its timestamp plus its
//! topic's delay (the callback tiers, each its own delay, beside `reports.final` with none).
//! Holding and pausing are per topic-partition. A record not yet due is held, uncommitted, and the
//! records behind it go on, so one late record never blocks an earlier-due one behind it;
//! only a partition holding [`DelayGate::cap`] records is paused until some are due.

use std::collections::{BTreeMap, BTreeSet};

use rdkafka::message::{Header, Headers, OwnedHeaders};

use crate::watermark::Partition;

/// The header that says when a record may run (ms since the epoch, decimal).
pub const DUE_AT_HEADER: &str = "switchyard.due-at";

/// Most records held per partition by default.
pub const DEFAULT_HELD_PER_PARTITION: usize = 10_000;

/// The header set of a record due at `at`.
pub fn due_at_header(at: i64) -> OwnedHeaders {
    OwnedHeaders::new().insert(Header {
        key: DUE_AT_HEADER,
        value: Some(at.to_string().as_bytes()),
    })
}

/// The due time a record's headers carry, if any.
pub fn due_at_of<H: Headers>(headers: Option<&H>) -> Option<i64> {
    crate::dead_letter::header_text(headers?, DUE_AT_HEADER)?
        .parse()
        .ok()
}

/// What to do with a record just received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Process it now.
    Due,
    /// Hold it until `until` (ms since the epoch); when `pause` is set its partition is full:
    /// pause it, rewound just past this record.
    Hold { until: i64, pause: bool },
    /// Its partition is paused: drop it unprocessed (it is consumed again on resume).
    Skip,
}

/// The records held and the partitions paused.
#[derive(Debug)]
pub struct DelayGate {
    /// The delay in milliseconds of every topic not in `topic_delays`; `None` = due at once
    /// unless the header says.
    delay_ms: Option<i64>,
    /// Delays of single topics (as `Partition` names them), over `delay_ms`.
    topic_delays: BTreeMap<String, i64>,
    cap: usize,
    held: BTreeSet<(i64, Partition, i64)>,
    per_partition: BTreeMap<Partition, usize>,
    paused: BTreeSet<Partition>,
}

impl DelayGate {
    /// A gate for topics delayed by `delay_ms`, holding at most `cap` records a partition.
    pub fn new(delay_ms: Option<i64>, cap: usize) -> Self {
        DelayGate {
            delay_ms,
            topic_delays: BTreeMap::new(),
            cap: cap.max(1),
            held: BTreeSet::new(),
            per_partition: BTreeMap::new(),
            paused: BTreeSet::new(),
        }
    }

    /// The same gate with the records of `topic` delayed by `delay_ms`, whatever the others
    /// wait.
    pub fn with_topic_delay(mut self, topic: &str, delay_ms: i64) -> Self {
        self.topic_delays.insert(topic.to_string(), delay_ms);
        self
    }

    /// Most records held per partition.
    pub fn cap(&self) -> usize {
        self.cap
    }

    /// The delay of `topic`'s records, if they have one.
    pub fn delay_of(&self, topic: &str) -> Option<i64> {
        self.topic_delays.get(topic).copied().or(self.delay_ms)
    }

    /// Decide for record `offset` of `partition`, due at `due_at` (its header) or stamped
    /// `timestamp` (ms; `None` when the broker kept none), at `now`.
    pub fn admit(
        &mut self,
        partition: &Partition,
        offset: i64,
        due_at: Option<i64>,
        timestamp: Option<i64>,
        now: i64,
    ) -> Gate {
        if self.paused.contains(partition) {
            return Gate::Skip;
        }
        let until = match (due_at, self.delay_of(&partition.0), timestamp) {
            (Some(at), _, _) => at,
            (None, Some(delay), Some(timestamp)) => timestamp.saturating_add(delay),
            _ => return Gate::Due,
        };
        if until <= now {
            return Gate::Due;
        }
        self.held.insert((until, partition.clone(), offset));
        let count = self.per_partition.entry(partition.clone()).or_default();
        *count += 1;
        let pause = *count >= self.cap;
        if pause {
            self.paused.insert(partition.clone());
        }
        Gate::Hold { until, pause }
    }

    /// The earliest time a held record becomes due.
    pub fn next_wake(&self) -> Option<i64> {
        self.held.first().map(|(until, _, _)| *until)
    }

    /// Records due at `now` (no longer held), and the paused partitions that now have room.
    pub fn wake(&mut self, now: i64) -> (Vec<(Partition, i64)>, Vec<Partition>) {
        let mut due = Vec::new();
        while let Some((until, _, _)) = self.held.first()
            && *until <= now
        {
            let Some((_, partition, offset)) = self.held.pop_first() else {
                break;
            };
            if let Some(count) = self.per_partition.get_mut(&partition) {
                *count = count.saturating_sub(1);
            }
            due.push((partition, offset));
        }
        let resumed: Vec<Partition> = self
            .paused
            .iter()
            .filter(|p| self.per_partition.get(*p).copied().unwrap_or(0) < self.cap)
            .cloned()
            .collect();
        for partition in &resumed {
            self.paused.remove(partition);
        }
        (due, resumed)
    }

    /// Records held now.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// Forget everything (after a rebalance); returns the partitions that were paused.
    pub fn clear(&mut self) -> Vec<Partition> {
        self.held.clear();
        self.per_partition.clear();
        std::mem::take(&mut self.paused).into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(n: i32) -> Partition {
        ("callbacks.retry.1".to_string(), n)
    }

    #[test]
    fn without_a_delay_or_a_due_time_everything_is_due() {
        let mut gate = DelayGate::new(None, 10);
        assert_eq!(gate.admit(&p(0), 0, None, Some(1_000), 0), Gate::Due);
        assert_eq!(gate.next_wake(), None);
    }

    #[test]
    fn a_record_waits_for_its_timestamp_plus_the_delay_without_blocking_the_next() {
        let mut gate = DelayGate::new(Some(60_000), 10);
        assert_eq!(gate.admit(&p(0), 0, None, Some(1_000), 61_000), Gate::Due);
        assert_eq!(
            gate.admit(&p(0), 1, None, Some(2_000), 61_000),
            Gate::Hold {
                until: 62_000,
                pause: false
            }
        );
        assert_eq!(gate.admit(&p(0), 2, None, Some(500), 61_000), Gate::Due);
        assert_eq!(gate.next_wake(), Some(62_000));
        assert_eq!(gate.wake(61_999), (vec![], vec![]));
        assert_eq!(gate.wake(62_000), (vec![(p(0), 1)], vec![]));
    }

    #[test]
    fn the_due_header_wins_and_records_wake_in_due_order() {
        let mut gate = DelayGate::new(Some(0), 10);
        assert!(matches!(
            gate.admit(&p(0), 0, Some(5_000), Some(0), 100),
            Gate::Hold { until: 5_000, .. }
        ));
        assert!(matches!(
            gate.admit(&p(0), 1, Some(300), Some(0), 100),
            Gate::Hold { until: 300, .. }
        ));
        assert!(matches!(
            gate.admit(&p(1), 0, Some(200), Some(0), 100),
            Gate::Hold { until: 200, .. }
        ));
        assert_eq!(gate.next_wake(), Some(200));
        assert_eq!(gate.wake(400).0, vec![(p(1), 0), (p(0), 1)]);
        assert_eq!(gate.held(), 1);
    }

    #[test]
    fn a_full_partition_is_paused_until_a_record_is_due() {
        let mut gate = DelayGate::new(None, 2);
        assert_eq!(
            gate.admit(&p(0), 0, Some(1_000), None, 0),
            Gate::Hold {
                until: 1_000,
                pause: false
            }
        );
        assert_eq!(
            gate.admit(&p(0), 1, Some(2_000), None, 0),
            Gate::Hold {
                until: 2_000,
                pause: true
            }
        );
        assert_eq!(gate.admit(&p(0), 2, Some(0), None, 0), Gate::Skip);
        assert_eq!(gate.admit(&p(1), 0, Some(0), None, 0), Gate::Due);
        assert_eq!(gate.wake(1_000), (vec![(p(0), 0)], vec![p(0)]));
        assert_eq!(gate.clear(), Vec::<Partition>::new());
        assert_eq!(gate.next_wake(), None);
    }

    #[test]
    fn each_topic_waits_its_own_delay_and_holds_pause_only_its_own_partitions() {
        let tier = |n: u32, partition: i32| (format!("callbacks.retry.{n}"), partition);
        let first = ("reports.final".to_string(), 0);
        let mut gate = DelayGate::new(None, 1)
            .with_topic_delay("callbacks.retry.1", 100)
            .with_topic_delay("callbacks.retry.2", 300);
        // Stamped at 1,000, seen at 1,050: tier 1 waits until 1,100, tier 2 until 1,300, and
        // the undelayed topic runs at once.
        assert_eq!(
            gate.admit(&tier(1, 0), 0, None, Some(1_000), 1_050),
            Gate::Hold {
                until: 1_100,
                pause: true
            }
        );
        assert_eq!(
            gate.admit(&tier(2, 0), 0, None, Some(1_000), 1_050),
            Gate::Hold {
                until: 1_300,
                pause: true
            }
        );
        assert_eq!(gate.admit(&first, 0, None, Some(1_000), 1_050), Gate::Due);
        // Partition 0 of tier 1 is paused (its cap is one), not partition 0 of the others,
        // nor another partition of its own topic.
        assert_eq!(gate.admit(&tier(1, 0), 1, None, Some(0), 1_050), Gate::Skip);
        assert_eq!(gate.admit(&first, 1, None, Some(1_000), 1_050), Gate::Due);
        assert_eq!(
            gate.admit(&tier(1, 1), 0, None, Some(900), 1_050),
            Gate::Due,
            "tier 1's delay has passed for a record stamped at 900"
        );
        // The due-at header still wins over a topic's delay.
        assert_eq!(
            gate.admit(&tier(2, 1), 0, Some(1_060), Some(1_000), 1_050),
            Gate::Hold {
                until: 1_060,
                pause: true
            }
        );
        assert_eq!(
            gate.wake(1_100),
            (
                vec![(tier(2, 1), 0), (tier(1, 0), 0)],
                vec![tier(1, 0), tier(2, 1)]
            )
        );
        assert_eq!(gate.next_wake(), Some(1_300));
        assert_eq!(gate.delay_of("callbacks.retry.3"), None);
    }

    #[test]
    fn the_header_is_read_back() {
        let headers = due_at_header(1_234);
        assert_eq!(due_at_of(Some(&headers)), Some(1_234));
        assert_eq!(due_at_of::<OwnedHeaders>(None), None);
    }
}
