//! Restore partitions of a state store from its changelog: read each from the beginning to
//! its end (read_committed, so only committed batches count), applying values and tombstones.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use rdkafka::Message;
use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use switchyard_schemas::StateEntry;
use tokio_util::sync::CancellationToken;

use super::PartitionState;
use crate::retry::{backoff, sleep_or_stop};
use crate::{Runtime, RuntimeError};

/// Read `partitions` of the logical `changelog` whole; entries expired at `now` are skipped.
pub(super) async fn restore(
    runtime: &Runtime,
    changelog: &str,
    partitions: &BTreeSet<i32>,
    now: i64,
    shutdown: &CancellationToken,
) -> Result<HashMap<i32, PartitionState>, RuntimeError> {
    let physical = runtime.kafka.topic(changelog);
    let reader = runtime.kafka.reader(&format!("restore.{changelog}"))?;
    let mut assignment = TopicPartitionList::new();
    for &partition in partitions {
        assignment.add_partition_offset(&physical, partition, Offset::Beginning)?;
    }
    reader.assign(&assignment)?;
    // The end to reach is the high watermark, not the first end-of-partition: under
    // read_committed the end is reported at the last stable offset, which stops at the first
    // record of a transaction still open (a killed member's, or commit markers still on their
    // way); everything committed after it would be missed. So read until the position passes
    // the high watermark, waiting for open transactions to end (at most the transaction
    // timeout).
    let ends = high_watermarks(runtime, &physical, partitions)?;
    let mut states: HashMap<i32, PartitionState> = partitions
        .iter()
        .map(|p| (*p, PartitionState::default()))
        .collect();
    let mut open: BTreeSet<i32> = partitions
        .iter()
        .filter(|p| ends.get(p).copied().unwrap_or(0) > 0)
        .copied()
        .collect();
    let mut records = 0u64;
    let started = std::time::Instant::now();
    while !open.is_empty() {
        let received = tokio::select! {
            _ = shutdown.cancelled() => return Err(RuntimeError::Stopped),
            received = tokio::time::timeout(Duration::from_secs(30), reader.recv()) => received,
        };
        let message = match received {
            Err(_) => {
                tracing::warn!(%changelog, waiting_for = ?open, "changelog restore is slow; still reading");
                continue;
            }
            Ok(Err(KafkaError::PartitionEOF(partition))) => {
                if reached(&reader, &physical, partition, &ends) {
                    open.remove(&partition);
                } else {
                    tracing::info!(%changelog, partition, waited_ms = started.elapsed().as_millis() as u64, "changelog has a transaction still open; waiting for it to end");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                continue;
            }
            Ok(Err(e)) => {
                tracing::warn!(%changelog, error = %e, "changelog read error; retrying");
                continue;
            }
            Ok(Ok(message)) => message,
        };
        let partition = message.partition();
        let Some(key) = message
            .key()
            .map(|k| String::from_utf8_lossy(k).into_owned())
        else {
            continue;
        };
        let entry = match message.payload() {
            None => None,
            Some(payload) => Some(decode(runtime, payload, shutdown).await?),
        };
        records += 1;
        states
            .entry(partition)
            .or_default()
            .restore(key, entry, now);
    }
    tracing::debug!(%changelog, records, "changelog read");
    Ok(states)
}

/// The high watermark of each partition, read by a read_uncommitted client (a read_committed
/// one would answer the last stable offset).
fn high_watermarks(
    runtime: &Runtime,
    physical: &str,
    partitions: &BTreeSet<i32>,
) -> Result<HashMap<i32, i64>, RuntimeError> {
    let mut config = runtime.kafka.client_config();
    config.set("isolation.level", "read_uncommitted");
    let client: rdkafka::consumer::BaseConsumer = config.create()?;
    let mut ends = HashMap::new();
    for &partition in partitions {
        let (_, high) = client.fetch_watermarks(physical, partition, Duration::from_secs(10))?;
        ends.insert(partition, high);
    }
    Ok(ends)
}

/// Whether the reader's position in `partition` reached its end.
fn reached(
    reader: &crate::Reader,
    physical: &str,
    partition: i32,
    ends: &HashMap<i32, i64>,
) -> bool {
    let end = ends.get(&partition).copied().unwrap_or(0);
    reader
        .position()
        .ok()
        .and_then(|list| {
            list.find_partition(physical, partition)
                .and_then(|p| match p.offset() {
                    rdkafka::topic_partition_list::Offset::Offset(o) => Some(o),
                    _ => None,
                })
        })
        .is_some_and(|position| position >= end)
}

/// Decode one changelog value, waiting while the registry is down. A value that cannot be
/// decoded stops the stage: skipping it would silently change its state.
async fn decode(
    runtime: &Runtime,
    payload: &[u8],
    shutdown: &CancellationToken,
) -> Result<StateEntry, RuntimeError> {
    let mut tries = 0;
    loop {
        match runtime.codec.decode::<StateEntry>(payload).await {
            Ok(entry) => return Ok(entry),
            Err(e) if e.is_retriable() => {
                tries += 1;
                tracing::warn!(error = %e, tries, "schema registry unavailable while restoring state; waiting");
                if sleep_or_stop(backoff(tries), shutdown).await {
                    return Err(RuntimeError::Stopped);
                }
            }
            Err(e) => {
                return Err(RuntimeError::State(format!(
                    "undecodable changelog entry: {e}"
                )));
            }
        }
    }
}
