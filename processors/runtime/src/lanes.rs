//! Priority lanes on one consumer: a stage reading several topics in strict priority (a
//! sender's `otp`, `normal`, `bulk`, `ad` lanes) takes every record its consumer already
//! fetched into a buffer per lane, and each batch from the highest lane that has any. An OTP
//! fetched behind thousands of bulk records is therefore next, not last. A partition holding
//! more than [`Lanes::per_partition`] buffered records is paused until its buffer drains, so
//! the buffers stay bounded while the partitions with nothing buffered (an idle OTP lane) are
//! still fetched.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::Instant;

use futures::FutureExt;
use rdkafka::Message;
use rdkafka::consumer::Consumer;
use rdkafka::message::OwnedMessage;
use rdkafka::topic_partition_list::TopicPartitionList;
use tokio_util::sync::CancellationToken;

use crate::error_log::ErrorLog;
use crate::runner::{RunnerOptions, first_offsets, seek_each};
use crate::stage_consumer::{RebalanceCounter, StageConsumer};

/// A record and when it was received.
type Received = (OwnedMessage, Instant);

/// A topic and partition.
type PartitionKey = (String, i32);

/// The lane buffers of one consumer.
#[derive(Debug)]
pub(crate) struct Lanes {
    /// Lane (0 = highest) of each physical topic; a topic not named goes last.
    lane_of: HashMap<String, usize>,
    buffers: Vec<VecDeque<Received>>,
    /// Buffered records per partition.
    held: BTreeMap<PartitionKey, usize>,
    paused: BTreeSet<PartitionKey>,
    /// Most records buffered per partition before it is paused.
    per_partition: usize,
    /// The consumer's rebalance count when the buffers were last filled: after a rebalance
    /// the consumer starts every partition again from its committed offset (unpaused), and
    /// what was buffered is dropped.
    epoch: u64,
}

impl Lanes {
    /// Buffers for `topics` (physical names, highest priority first), pausing a partition
    /// once it holds `per_partition` records.
    pub(crate) fn new(topics: &[String], per_partition: usize) -> Self {
        Lanes {
            lane_of: topics
                .iter()
                .enumerate()
                .map(|(lane, topic)| (topic.clone(), lane))
                .collect(),
            buffers: (0..topics.len().max(1)).map(|_| VecDeque::new()).collect(),
            held: BTreeMap::new(),
            paused: BTreeSet::new(),
            per_partition: per_partition.max(1),
            epoch: 0,
        }
    }

    fn buffered(&self) -> usize {
        self.buffers.iter().map(VecDeque::len).sum()
    }

    fn push(&mut self, message: OwnedMessage) {
        let last = self.buffers.len() - 1;
        let lane = self
            .lane_of
            .get(message.topic())
            .copied()
            .unwrap_or(last)
            .min(last);
        *self
            .held
            .entry((message.topic().to_string(), message.partition()))
            .or_default() += 1;
        self.buffers[lane].push_back((message, Instant::now()));
    }

    /// Take every record the consumer already holds, without waiting.
    fn take_ready(&mut self, consumer: &StageConsumer, errors: &mut ErrorLog, stage: &str) {
        loop {
            match consumer.recv().now_or_never() {
                Some(Ok(message)) => self.push(message.detach()),
                Some(Err(e)) => {
                    if let Some(left_out) = errors.admit(Instant::now()) {
                        tracing::warn!(stage, error = %e, left_out, "consume error");
                    }
                    return;
                }
                None => return,
            }
        }
    }

    /// The next batch: up to `max_batch` records of the highest lane holding any, waiting for
    /// a first record (then `linger` for more) when nothing is buffered. `None` on shutdown;
    /// empty after a consume error.
    pub(crate) async fn next_batch(
        &mut self,
        consumer: &StageConsumer,
        rebalances: &RebalanceCounter,
        options: &RunnerOptions,
        errors: &mut ErrorLog,
        shutdown: &CancellationToken,
    ) -> Option<Vec<Received>> {
        let stage = options.stage.as_str();
        if rebalances.epoch() != self.epoch {
            self.forget();
            self.epoch = rebalances.epoch();
        }
        self.take_ready(consumer, errors, stage);
        if self.buffered() == 0 {
            let first = tokio::select! {
                biased;
                _ = shutdown.cancelled() => return None,
                received = consumer.recv() => received.map(|m| m.detach()),
            };
            match first {
                Ok(message) => self.push(message),
                Err(e) => {
                    if let Some(left_out) = errors.admit(Instant::now()) {
                        tracing::warn!(stage, error = %e, left_out, "consume error");
                    }
                    return Some(Vec::new());
                }
            }
            let deadline = tokio::time::Instant::now() + options.linger;
            while self.buffered() < options.max_batch {
                tokio::select! {
                    received = consumer.recv() => match received {
                        Ok(message) => self.push(message.detach()),
                        Err(_) => break,
                    },
                    _ = tokio::time::sleep_until(deadline) => break,
                }
            }
            self.take_ready(consumer, errors, stage);
        }
        // What is buffered now belongs to the assignment as it is now (a rebalance during the
        // gathering makes the runner drop the batch and call `forget`).
        self.epoch = rebalances.epoch();
        let batch = self.take(options.max_batch);
        self.flow(consumer, stage);
        Some(batch)
    }

    /// Up to `max` records of the highest lane holding any.
    fn take(&mut self, max: usize) -> Vec<Received> {
        let Some(lane) = self.buffers.iter().position(|b| !b.is_empty()) else {
            return Vec::new();
        };
        let count = max.max(1).min(self.buffers[lane].len());
        let batch: Vec<Received> = self.buffers[lane].drain(..count).collect();
        for (message, _) in &batch {
            let key = (message.topic().to_string(), message.partition());
            if let Some(held) = self.held.get_mut(&key) {
                *held = held.saturating_sub(1);
                if *held == 0 {
                    self.held.remove(&key);
                }
            }
        }
        batch
    }

    /// Pause partitions holding `per_partition` records or more; resume paused ones that hold
    /// fewer than half of it.
    fn flow(&mut self, consumer: &StageConsumer, stage: &str) {
        let (to_pause, to_resume) = self.flow_changes();
        if !to_pause.is_empty() {
            match consumer.pause(&partition_list(&to_pause)) {
                Ok(()) => self.paused.extend(to_pause),
                Err(e) => tracing::warn!(stage, error = %e, "cannot pause a full lane"),
            }
        }
        if !to_resume.is_empty() {
            match consumer.resume(&partition_list(&to_resume)) {
                Ok(()) => {
                    for key in &to_resume {
                        self.paused.remove(key);
                    }
                }
                Err(e) => tracing::warn!(stage, error = %e, "cannot resume a lane"),
            }
        }
    }

    /// Which partitions to pause and which to resume now.
    fn flow_changes(&self) -> (Vec<PartitionKey>, Vec<PartitionKey>) {
        let to_pause = self
            .held
            .iter()
            .filter(|(key, held)| **held >= self.per_partition && !self.paused.contains(*key))
            .map(|(key, _)| key.clone())
            .collect();
        let to_resume = self
            .paused
            .iter()
            .filter(|key| self.held.get(*key).copied().unwrap_or(0) < self.per_partition / 2)
            .cloned()
            .collect();
        (to_pause, to_resume)
    }

    /// Drop what is buffered, after a rebalance (the consumer restarts every partition from its
    /// committed offset, and a new assignment starts unpaused).
    pub(crate) fn forget(&mut self) {
        for buffer in &mut self.buffers {
            buffer.clear();
        }
        self.held.clear();
        self.paused.clear();
    }

    /// Give back what is buffered: each partition seeks to its first buffered record (before a
    /// failed batch is rewound) and resumes.
    pub(crate) fn unread(&mut self, consumer: &StageConsumer, stage: &str) {
        let first = first_offsets(self.buffers.iter().flatten());
        let paused: Vec<(String, i32)> = self.paused.iter().cloned().collect();
        self.forget();
        if !paused.is_empty()
            && let Err(e) = consumer.resume(&partition_list(&paused))
        {
            tracing::warn!(stage, error = %e, "cannot resume a lane");
        }
        seek_each(consumer, &first, stage);
    }
}

fn partition_list(keys: &[PartitionKey]) -> TopicPartitionList {
    let mut list = TopicPartitionList::new();
    for (topic, partition) in keys {
        list.add_partition(topic, *partition);
    }
    list
}

#[cfg(test)]
mod tests {
    use rdkafka::Timestamp;

    use super::*;

    fn record(topic: &str, partition: i32, offset: i64) -> OwnedMessage {
        OwnedMessage::new(
            Some(b"v".to_vec()),
            Some(b"k".to_vec()),
            topic.to_string(),
            Timestamp::NotAvailable,
            partition,
            offset,
            None,
        )
    }

    fn lanes() -> Lanes {
        Lanes::new(&["otp".into(), "normal".into(), "bulk".into()], 4)
    }

    fn offsets(batch: &[Received]) -> Vec<(String, i64)> {
        batch
            .iter()
            .map(|(m, _)| (m.topic().to_string(), m.offset()))
            .collect()
    }

    #[test]
    fn a_batch_comes_from_the_highest_lane_holding_records() {
        let mut lanes = lanes();
        for offset in 0..3 {
            lanes.push(record("bulk", 0, offset));
        }
        lanes.push(record("otp", 1, 7));
        lanes.push(record("normal", 0, 2));
        assert_eq!(offsets(&lanes.take(10)), vec![("otp".into(), 7)]);
        assert_eq!(offsets(&lanes.take(10)), vec![("normal".into(), 2)]);
        assert_eq!(
            offsets(&lanes.take(2)),
            vec![("bulk".into(), 0), ("bulk".into(), 1)]
        );
        assert_eq!(offsets(&lanes.take(2)), vec![("bulk".into(), 2)]);
        assert!(lanes.take(2).is_empty());
    }

    #[test]
    fn an_unknown_topic_goes_to_the_last_lane() {
        let mut lanes = lanes();
        lanes.push(record("elsewhere", 0, 1));
        lanes.push(record("normal", 0, 5));
        assert_eq!(offsets(&lanes.take(10)), vec![("normal".into(), 5)]);
        assert_eq!(offsets(&lanes.take(10)), vec![("elsewhere".into(), 1)]);
    }

    #[test]
    fn a_full_partition_is_paused_and_resumed_once_half_drained() {
        let mut lanes = lanes();
        for offset in 0..4 {
            lanes.push(record("bulk", 0, offset));
        }
        lanes.push(record("bulk", 1, 0));
        let (pause, resume) = lanes.flow_changes();
        assert_eq!(pause, vec![("bulk".to_string(), 0)]);
        assert!(resume.is_empty());
        lanes.paused.extend(pause);
        // Two taken: two left, not under half of four.
        lanes.take(2);
        assert_eq!(lanes.flow_changes(), (vec![], vec![]));
        lanes.take(2);
        let (pause, resume) = lanes.flow_changes();
        assert!(pause.is_empty());
        assert_eq!(resume, vec![("bulk".to_string(), 0)]);
    }

    #[test]
    fn forgetting_drops_every_buffered_record_and_pause() {
        let mut lanes = lanes();
        for offset in 0..5 {
            lanes.push(record("bulk", 0, offset));
        }
        lanes.paused.insert(("bulk".into(), 0));
        lanes.forget();
        assert_eq!(lanes.buffered(), 0);
        assert!(lanes.held.is_empty() && lanes.paused.is_empty());
        assert!(lanes.take(10).is_empty());
    }
}
