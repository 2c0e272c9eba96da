//! A sender's backlog: the records of `sender.<name>` its dispatchers' consumer group
//! (`switchyard.dispatch.<name>`) has not committed yet, from the broker's offsets.

use std::time::Duration;

use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaResult;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use switchyard_runtime::Runtime;
use switchyard_runtime::names::sender as sender_topic;

/// How long a broker request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Messages waiting in `sender`'s topic (blocking: call it off the async threads).
pub fn backlog(runtime: &Runtime, sender: &str) -> KafkaResult<i64> {
    let topic = runtime.kafka.topic(&sender_topic(sender));
    let consumer = runtime
        .kafka
        .group_consumer(&format!("switchyard.dispatch.{sender}"))?;
    let metadata = consumer.fetch_metadata(Some(&topic), REQUEST_TIMEOUT)?;
    let mut list = TopicPartitionList::new();
    for t in metadata.topics().iter().filter(|t| t.name() == topic) {
        for p in t.partitions() {
            list.add_partition(&topic, p.id());
        }
    }
    let committed = consumer.committed_offsets(list, REQUEST_TIMEOUT)?;
    let mut waiting = 0;
    for e in committed.elements() {
        let (low, high) = consumer.fetch_watermarks(&topic, e.partition(), REQUEST_TIMEOUT)?;
        let from = match e.offset() {
            Offset::Offset(o) => o,
            _ => low,
        };
        waiting += (high - from).max(0);
    }
    Ok(waiting)
}
