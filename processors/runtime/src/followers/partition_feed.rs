//! One partition of a followed topic: its own queue of the shared reader, read in order and
//! fanned out to every follower of the topic. A follower joining after records were read makes
//! the partition start again from the beginning, and those already following skip what they had.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::Message;
use rdkafka::consumer::Consumer;
use rdkafka::consumer::stream_consumer::StreamPartitionQueue;
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::OwnedMessage;
use rdkafka::topic_partition_list::Offset;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::Fed;
use crate::error_log::ErrorLog;
use crate::kafka::{Reader, ReaderContext};

/// How long a seek back to the beginning may take to be accepted.
const SEEK_TIMEOUT: Duration = Duration::from_secs(10);

/// A follower as a partition sees it: where to send, and the first offset it still needs.
#[derive(Debug, Clone)]
pub(crate) struct Sink {
    records: mpsc::Sender<Fed>,
    from: i64,
}

impl Sink {
    /// A follower that needs everything.
    pub fn new(records: mpsc::Sender<Fed>) -> Self {
        Sink { records, from: 0 }
    }
}

/// Who gets what of one partition: its followers and how far the partition was read.
#[derive(Debug, Default)]
struct Fanout {
    sinks: Vec<Sink>,
    /// The offset after the last record read; `None`: none read since the (re)start.
    next: Option<i64>,
    /// The partition reported its end and no record came since.
    at_end: bool,
}

impl Fanout {
    /// Whether a new follower needs the partition read again from the beginning.
    fn must_rewind(&self) -> bool {
        self.next.is_some()
    }

    /// The partition starts again from the beginning.
    fn rewound(&mut self) {
        self.next = None;
        self.at_end = false;
    }

    /// The followers to feed the record at `offset` (those that did not have it yet, each
    /// moved past it), by index.
    fn takers(&mut self, offset: i64) -> Vec<usize> {
        self.next = Some(offset + 1);
        self.at_end = false;
        let mut takers = Vec::new();
        for (index, sink) in self.sinks.iter_mut().enumerate() {
            if offset >= sink.from {
                sink.from = offset + 1;
                takers.push(index);
            }
        }
        takers
    }

    /// Forget the followers at `gone` (indexes, ascending), which left.
    fn forget(&mut self, gone: &[usize]) {
        for &index in gone.iter().rev() {
            self.sinks.remove(index);
        }
    }
}

/// The task reading one partition for every follower of its topic.
pub(crate) struct PartitionFeed {
    topic: String,
    partition: i32,
    reader: Arc<Reader>,
    queue: StreamPartitionQueue<ReaderContext>,
    fanout: Fanout,
    errors: ErrorLog,
}

/// What the task does next.
enum Step {
    Stop,
    Join(Sink),
    Read(KafkaResult<OwnedMessage>),
}

impl PartitionFeed {
    /// The feed of `partition` of the physical `topic`, from its split `queue`.
    pub fn new(
        topic: &str,
        partition: i32,
        reader: Arc<Reader>,
        queue: StreamPartitionQueue<ReaderContext>,
    ) -> Self {
        PartitionFeed {
            topic: topic.to_string(),
            partition,
            reader,
            queue,
            fanout: Fanout::default(),
            errors: ErrorLog::default(),
        }
    }

    /// Read and feed until `stop` or until no follower can join any more (the reader closed).
    pub async fn run(mut self, mut joins: mpsc::UnboundedReceiver<Sink>, stop: CancellationToken) {
        loop {
            let step = tokio::select! {
                biased;
                _ = stop.cancelled() => Step::Stop,
                joined = joins.recv() => joined.map_or(Step::Stop, Step::Join),
                read = self.queue.recv() => Step::Read(read.map(|m| m.detach())),
            };
            match step {
                Step::Stop => return,
                Step::Join(sink) => self.join(sink).await,
                Step::Read(Ok(message)) => self.feed(message).await,
                Step::Read(Err(KafkaError::PartitionEOF(_))) => self.end().await,
                Step::Read(Err(error)) => {
                    // An error event, not a busy loop: librdkafka retries with its own backoff.
                    if let Some(left_out) = self.errors.admit(Instant::now()) {
                        tracing::warn!(topic = %self.topic, partition = self.partition, %error, left_out, "consume error while following");
                    }
                }
            }
        }
    }

    /// A new follower: fed from here if nothing was read yet, else from the beginning again.
    async fn join(&mut self, sink: Sink) {
        if self.fanout.must_rewind() {
            if let Err(error) = self.rewind().await {
                // Its table does not become ready (and says so when waited for).
                tracing::error!(topic = %self.topic, partition = self.partition, %error, "cannot read the partition again for a new follower");
                return;
            }
            tracing::debug!(topic = %self.topic, partition = self.partition, "partition read again for a new follower");
            self.fanout.rewound();
        } else if self.fanout.at_end && sink.records.send(Fed::End(self.partition)).await.is_err() {
            return;
        }
        self.fanout.sinks.push(sink);
    }

    /// Seek the partition back to its beginning; records of before the seek are discarded by
    /// librdkafka (its version barrier), its end is reported again when reached.
    async fn rewind(&self) -> KafkaResult<()> {
        let (reader, topic, partition) = (self.reader.clone(), self.topic.clone(), self.partition);
        tokio::task::spawn_blocking(move || {
            reader.seek(&topic, partition, Offset::Beginning, SEEK_TIMEOUT)
        })
        .await
        .unwrap_or_else(|e| Err(KafkaError::Seek(e.to_string())))
    }

    /// Feed a record to every follower that does not have it yet.
    async fn feed(&mut self, message: OwnedMessage) {
        let takers = self.fanout.takers(message.offset());
        let mut gone = Vec::new();
        let mut message = Some(message);
        for (n, &index) in takers.iter().enumerate() {
            let record = if n + 1 == takers.len() {
                message.take()
            } else {
                message.clone()
            };
            let Some(record) = record else { break };
            if self.fanout.sinks[index]
                .records
                .send(Fed::Record(record))
                .await
                .is_err()
            {
                gone.push(index);
            }
        }
        self.fanout.forget(&gone);
    }

    /// The partition was read to its end: every follower hears it.
    async fn end(&mut self) {
        self.fanout.at_end = true;
        let mut gone = Vec::new();
        for (index, sink) in self.fanout.sinks.iter().enumerate() {
            if sink.records.send(Fed::End(self.partition)).await.is_err() {
                gone.push(index);
            }
        }
        self.fanout.forget(&gone);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sink() -> (Sink, mpsc::Receiver<Fed>) {
        let (tx, rx) = mpsc::channel(8);
        (Sink::new(tx), rx)
    }

    #[test]
    fn a_follower_joining_before_any_record_shares_the_read_without_a_rewind() {
        let mut fanout = Fanout::default();
        let (first, _a) = sink();
        fanout.sinks.push(first);
        assert!(!fanout.must_rewind());
        let (second, _b) = sink();
        fanout.sinks.push(second);
        assert_eq!(fanout.takers(0), vec![0, 1]);
        assert_eq!(fanout.takers(1), vec![0, 1]);
    }

    #[test]
    fn after_a_rewind_each_follower_gets_only_what_it_did_not_have() {
        let mut fanout = Fanout::default();
        let (first, _a) = sink();
        fanout.sinks.push(first);
        for offset in 0..3 {
            assert_eq!(fanout.takers(offset), vec![0]);
        }
        // A second follower comes: the partition is read again from the beginning.
        assert!(fanout.must_rewind());
        fanout.rewound();
        let (second, _b) = sink();
        fanout.sinks.push(second);
        // Offsets may have gaps (transaction markers, compaction).
        assert_eq!(fanout.takers(0), vec![1]);
        assert_eq!(fanout.takers(2), vec![1]);
        assert_eq!(fanout.takers(4), vec![0, 1]);
        assert_eq!(fanout.takers(5), vec![0, 1]);
    }

    #[test]
    fn an_end_with_nothing_read_is_known_to_a_later_follower() {
        let mut fanout = Fanout {
            at_end: true,
            ..Fanout::default()
        };
        assert!(
            !fanout.must_rewind(),
            "an empty partition needs no second read"
        );
        fanout.takers(7);
        assert!(
            !fanout.at_end,
            "a record after the end: not at the end any more"
        );
    }

    #[test]
    fn followers_that_left_are_forgotten_in_order() {
        let mut fanout = Fanout::default();
        let mut receivers = Vec::new();
        for _ in 0..4 {
            let (s, r) = sink();
            fanout.sinks.push(s);
            receivers.push(r);
        }
        let senders: Vec<_> = fanout.sinks.iter().map(|s| s.records.clone()).collect();
        fanout.forget(&[1, 3]);
        assert_eq!(fanout.sinks.len(), 2);
        assert!(fanout.sinks[0].records.same_channel(&senders[0]));
        assert!(fanout.sinks[1].records.same_channel(&senders[2]));
    }
}
