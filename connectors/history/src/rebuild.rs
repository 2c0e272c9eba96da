//! `switchyard history rebuild`: a store rebuilt from the topics the history stage consumes.
//! Each topic is read from the beginning by a reader of its own (no group offsets touched),
//! up to the end it had when the rebuild started, and its records become the same events the
//! history stage makes of them (same keys, so a rebuild into a store that has some of them
//! changes nothing but what is missing).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use rdkafka::Message;
use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use switchyard_runtime::{Origin, Runtime, names};
use switchyard_schemas::{
    CallbackResult, DeliveryReport, DispatchOutcome, FinalReport, Rejection, ReportAck,
    RoutingDecision, Submission, ValidatedMessage,
};

use crate::event::HistoryRecord;
use crate::{HistoryError, HistoryStore};

/// Events written to the store at once.
const BATCH: usize = 500;
/// Longest wait for the next record before the rebuild gives up on a topic.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a rebuild stopped.
#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    /// The brokers could not be read (retry the rebuild: it is idempotent).
    #[error("reading {topic}: {source}")]
    Kafka {
        topic: String,
        #[source]
        source: KafkaError,
    },
    /// A topic gave nothing for too long before its end.
    #[error("{topic}: no record nor end of partition for {IDLE_TIMEOUT:?}")]
    Stalled { topic: String },
    /// The schema registry is unavailable (retry).
    #[error("decoding {topic}: {reason}")]
    Registry { topic: String, reason: String },
    /// The target store failed.
    #[error(transparent)]
    Store(#[from] HistoryError),
}

impl RebuildError {
    /// Whether running the rebuild again may succeed.
    pub fn is_retriable(&self) -> bool {
        match self {
            RebuildError::Store(e) => e.is_retriable(),
            _ => true,
        }
    }
}

/// What a rebuild read and wrote, per topic.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RebuildReport {
    /// (logical topic, records turned into events, records skipped as undecodable).
    pub topics: Vec<(String, u64, u64)>,
}

impl RebuildReport {
    /// Events written in all.
    pub fn events(&self) -> u64 {
        self.topics.iter().map(|(_, n, _)| n).sum()
    }
}

/// Rebuild `target` from every history topic on `runtime`'s brokers.
pub async fn rebuild(
    runtime: &Runtime,
    target: &HistoryStore,
) -> Result<RebuildReport, RebuildError> {
    let mut report = RebuildReport::default();
    let run_id = uuid_like();
    for topic in crate::HISTORY_TOPICS {
        let (written, skipped) = match topic {
            names::ACCEPTED => topic_into::<Submission>(runtime, target, topic, &run_id).await?,
            names::VALIDATED => {
                topic_into::<ValidatedMessage>(runtime, target, topic, &run_id).await?
            }
            names::REJECTED => topic_into::<Rejection>(runtime, target, topic, &run_id).await?,
            names::ROUTED => topic_into::<RoutingDecision>(runtime, target, topic, &run_id).await?,
            names::DISPATCHED => {
                topic_into::<DispatchOutcome>(runtime, target, topic, &run_id).await?
            }
            names::REPORTS => topic_into::<DeliveryReport>(runtime, target, topic, &run_id).await?,
            names::FINAL => topic_into::<FinalReport>(runtime, target, topic, &run_id).await?,
            names::CALLBACK_RESULTS => {
                topic_into::<CallbackResult>(runtime, target, topic, &run_id).await?
            }
            names::REPORT_ACKS => topic_into::<ReportAck>(runtime, target, topic, &run_id).await?,
            other => {
                tracing::warn!(topic = other, "no record type known for this history topic");
                continue;
            }
        };
        tracing::info!(topic, written, skipped, "history topic rebuilt");
        report.topics.push((topic.to_string(), written, skipped));
    }
    Ok(report)
}

/// A name for this run's readers, unique enough among concurrent rebuilds.
fn uuid_like() -> String {
    format!(
        "{}.{}",
        std::process::id(),
        switchyard_schemas::now_millis()
    )
}

/// Read one topic from the beginning to the end offsets it had at start, writing its events.
async fn topic_into<T: HistoryRecord>(
    runtime: &Runtime,
    target: &HistoryStore,
    topic: &str,
    run_id: &str,
) -> Result<(u64, u64), RebuildError> {
    let kafka_error = |source| RebuildError::Kafka {
        topic: topic.to_string(),
        source,
    };
    let physical = runtime.kafka.topic(topic);
    let reader = runtime
        .kafka
        .reader(&format!("history.rebuild.{run_id}.{topic}"))
        .map_err(kafka_error)?;
    let metadata = reader
        .fetch_metadata(Some(&physical), Duration::from_secs(10))
        .map_err(kafka_error)?;
    let mut assignment = TopicPartitionList::new();
    let mut ends = HashMap::new();
    for t in metadata.topics().iter().filter(|t| t.name() == physical) {
        for p in t.partitions() {
            let (_, high) = reader
                .fetch_watermarks(&physical, p.id(), Duration::from_secs(10))
                .map_err(kafka_error)?;
            ends.insert(p.id(), high);
            assignment
                .add_partition_offset(&physical, p.id(), Offset::Beginning)
                .map_err(kafka_error)?;
        }
    }
    let mut open: HashSet<i32> = ends
        .iter()
        .filter(|(_, high)| **high > 0)
        .map(|(p, _)| *p)
        .collect();
    if open.is_empty() {
        return Ok((0, 0));
    }
    reader.assign(&assignment).map_err(kafka_error)?;
    let (mut events, mut written, mut skipped) = (Vec::with_capacity(BATCH), 0, 0);
    while !open.is_empty() {
        let next = tokio::time::timeout(IDLE_TIMEOUT, reader.recv())
            .await
            .map_err(|_| RebuildError::Stalled {
                topic: topic.to_string(),
            })?;
        let message = match next {
            Ok(message) => message,
            // The end of what this partition holds (past its start-time end, or the records
            // after it are not committed yet).
            Err(KafkaError::PartitionEOF(p)) => {
                open.remove(&p);
                continue;
            }
            Err(e) => return Err(kafka_error(e)),
        };
        let (partition, offset) = (message.partition(), message.offset());
        let end = ends.get(&partition).copied().unwrap_or(0);
        if offset >= end {
            open.remove(&partition);
            continue;
        }
        if offset + 1 >= end {
            open.remove(&partition);
        }
        let record = match runtime
            .codec
            .decode::<T>(message.payload().unwrap_or_default())
            .await
        {
            Ok(record) => record,
            Err(e) if e.is_retriable() => {
                return Err(RebuildError::Registry {
                    topic: topic.to_string(),
                    reason: e.to_string(),
                });
            }
            Err(e) => {
                // The history stage dead-letters such records: they have no event.
                tracing::warn!(topic, partition, offset, error = %e, "undecodable record skipped");
                skipped += 1;
                continue;
            }
        };
        events.push(record.event(Origin {
            topic,
            partition,
            offset,
            timestamp: message.timestamp().to_millis(),
            key: message.key(),
        }));
        if events.len() >= BATCH {
            target.record_all(&events).await?;
            written += events.len() as u64;
            events.clear();
        }
    }
    target.record_all(&events).await?;
    written += events.len() as u64;
    Ok((written, skipped))
}
