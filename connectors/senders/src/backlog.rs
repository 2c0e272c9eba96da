//! A sender's backlog: the records of `sender.<name>` its dispatchers' consumer group
//! (`switchyard.dispatch.<name>`) has not committed yet, from the broker's offsets.

use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaResult;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use switchyard_runtime::Runtime;
use switchyard_runtime::names::sender as sender_topic;

/// How long a broker request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Reads one sender's backlog; holds its broker client, so asking again is cheap.
pub struct Backlog {
    consumer: StreamConsumer,
    topic: String,
}

impl std::fmt::Debug for Backlog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backlog")
            .field("topic", &self.topic)
            .finish()
    }
}

impl Backlog {
    /// A reader for `sender`'s topic and its dispatchers' group (joins no group).
    pub fn new(runtime: &Runtime, sender: &str) -> KafkaResult<Self> {
        Ok(Backlog {
            consumer: runtime
                .kafka
                .group_consumer(&format!("switchyard.dispatch.{sender}"))?,
            topic: runtime.kafka.topic(&sender_topic(sender)),
        })
    }

    /// Messages waiting now (blocking: call it off the async threads).
    pub fn read(&self) -> KafkaResult<i64> {
        let topic = &self.topic;
        let metadata = self.consumer.fetch_metadata(Some(topic), REQUEST_TIMEOUT)?;
        let mut list = TopicPartitionList::new();
        for t in metadata.topics().iter().filter(|t| t.name() == topic) {
            for p in t.partitions() {
                list.add_partition(topic, p.id());
            }
        }
        let committed = self.consumer.committed_offsets(list, REQUEST_TIMEOUT)?;
        let mut waiting = 0;
        for e in committed.elements() {
            let (low, high) =
                self.consumer
                    .fetch_watermarks(topic, e.partition(), REQUEST_TIMEOUT)?;
            let from = match e.offset() {
                Offset::Offset(o) => o,
                _ => low,
            };
            waiting += (high - from).max(0);
        }
        Ok(waiting)
    }
}

/// Messages waiting in `sender`'s topic, once (blocking: call it off the async threads).
pub fn backlog(runtime: &Runtime, sender: &str) -> KafkaResult<i64> {
    Backlog::new(runtime, sender)?.read()
}
