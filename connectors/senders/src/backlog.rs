//! A sender's backlog: the records of its lane topics (`sender.<name>`, `sender.<name>.otp`, …)
//! that its dispatchers' consumer group (`switchyard.dispatch.<name>.lanes`) has not committed
//! yet, from the broker's offsets.

use std::time::Duration;

use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaResult;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use switchyard_runtime::{GroupConsumer, Runtime, names};

/// How long a broker request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Reads one sender's backlog; holds one broker client (in its dispatchers' group, which it
/// never joins), so asking again is cheap.
pub struct Backlog {
    consumer: GroupConsumer,
    topics: Vec<String>,
}

impl std::fmt::Debug for Backlog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backlog")
            .field("topics", &self.topics)
            .finish()
    }
}

impl Backlog {
    /// A reader for `sender`'s lane topics and their dispatchers' groups (joins no group).
    pub fn new(runtime: &Runtime, sender: &str) -> KafkaResult<Self> {
        Ok(Backlog {
            consumer: runtime
                .kafka
                .group_consumer(&crate::service::dispatch_group(sender))?,
            topics: names::sender_lanes(sender)
                .iter()
                .map(|t| runtime.kafka.topic(t))
                .collect(),
        })
    }

    /// Messages waiting now in every lane (blocking: call it off the async threads).
    pub fn read(&self) -> KafkaResult<i64> {
        let mut waiting = 0;
        for topic in &self.topics {
            waiting += lane_backlog(&self.consumer, topic)?;
        }
        Ok(waiting)
    }
}

/// The records of `topic` that `consumer`'s group has not committed.
fn lane_backlog(consumer: &GroupConsumer, topic: &str) -> KafkaResult<i64> {
    let metadata = consumer.fetch_metadata(Some(topic), REQUEST_TIMEOUT)?;
    let mut list = TopicPartitionList::new();
    for t in metadata.topics().iter().filter(|t| t.name() == topic) {
        for p in t.partitions() {
            list.add_partition(topic, p.id());
        }
    }
    let committed = consumer.committed_offsets(list, REQUEST_TIMEOUT)?;
    let mut waiting = 0;
    for e in committed.elements() {
        let (low, high) = consumer.fetch_watermarks(topic, e.partition(), REQUEST_TIMEOUT)?;
        let from = match e.offset() {
            Offset::Offset(o) => o,
            _ => low,
        };
        waiting += (high - from).max(0);
    }
    Ok(waiting)
}

/// Messages waiting in `sender`'s lane topics, once (blocking: call it off the async threads).
pub fn backlog(runtime: &Runtime, sender: &str) -> KafkaResult<i64> {
    Backlog::new(runtime, sender)?.read()
}
