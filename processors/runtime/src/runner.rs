//! The Kafka runner every stage shares: consume a batch, decode, process, produce every output,
//! wait for all acknowledgements, then commit. At-least-once: an offset is committed only once
//! everything its record caused is on the broker. Bad input goes to `deadletter.<topic>`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{StreamExt, stream};
use rdkafka::Message;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{OwnedHeaders, OwnedMessage};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaErrorCode;
use switchyard_schemas::CodecError;
use tokio_util::sync::CancellationToken;

use crate::dead_letter::{DeadLetterKind, dead_letter_headers};
use crate::metrics::{StageLabel, StageTopic};
use crate::processor::{AsyncProcessor, Origin, StageError};
use crate::{Runtime, RuntimeError};

/// How a stage consumes.
#[derive(Debug, Clone)]
pub struct RunnerOptions {
    /// Stage name: used in logs, metrics and dead-letter headers.
    pub stage: String,
    /// Consumer group; by default `switchyard.<stage>`.
    pub group_id: String,
    /// Topics to consume.
    pub topics: Vec<String>,
    /// Most records in flight at once (one batch).
    pub max_batch: usize,
    /// How long to wait for a batch to fill once its first record arrived.
    pub linger: Duration,
    /// `fetch.wait.max.ms` for this stage, if not the settings' default (stages off the
    /// latency path, like history, wait longer and cost the broker less).
    pub fetch_wait_max_ms: Option<u32>,
}

impl RunnerOptions {
    /// Options for `stage` consuming `topics`, with the default group and batching.
    pub fn new(stage: &str, topics: &[&str]) -> Self {
        RunnerOptions {
            stage: stage.to_string(),
            group_id: format!("switchyard.{stage}"),
            topics: topics.iter().map(|t| t.to_string()).collect(),
            max_batch: 500,
            linger: Duration::from_millis(5),
            fetch_wait_max_ms: None,
        }
    }
}

/// One record to produce, already encoded.
struct Encoded {
    topic: String,
    key: String,
    payload: Option<Vec<u8>>,
    headers: Option<OwnedHeaders>,
}

/// Why a batch could not be finished.
enum BatchFailure {
    /// Stop requested while waiting on a retriable failure: exit without committing.
    Interrupted,
    /// A produce failed for good after the producer's own retries: process the batch again.
    Produce(String),
}

/// Run `processor` until `shutdown` is cancelled. Finishes the batch in flight, commits it,
/// and leaves the group on the way out.
pub async fn run<P: AsyncProcessor>(
    runtime: &Runtime,
    processor: Arc<P>,
    options: RunnerOptions,
    shutdown: CancellationToken,
) -> Result<(), RuntimeError> {
    let kafka = match options.fetch_wait_max_ms {
        Some(ms) => runtime.kafka.with_fetch_wait(ms),
        None => runtime.kafka.clone(),
    };
    let consumer = kafka.group_consumer(&options.group_id)?;
    let topics: Vec<&str> = options.topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topics)?;
    let producer = runtime.producer()?;
    tracing::info!(stage = %options.stage, topics = ?options.topics, group = %options.group_id, "stage started");

    let mut committed: BTreeMap<(String, i32), i64> = BTreeMap::new();
    'batches: while let Some(batch) = next_batch(&consumer, &options, &shutdown).await {
        if batch.is_empty() {
            continue;
        }
        let mut attempt = 0u32;
        loop {
            match handle_batch(
                runtime,
                &*processor,
                &producer,
                &options.stage,
                &batch,
                &shutdown,
            )
            .await
            {
                Ok(()) => break,
                Err(BatchFailure::Interrupted) => {
                    tracing::warn!(stage = %options.stage, "stopped with a batch unfinished; it will be consumed again");
                    break 'batches;
                }
                Err(BatchFailure::Produce(reason)) => {
                    attempt += 1;
                    processor.batch_failed();
                    runtime
                        .metrics
                        .batch_retries
                        .get_or_create(&StageLabel {
                            stage: options.stage.clone(),
                        })
                        .inc();
                    tracing::error!(stage = %options.stage, %reason, attempt, "produce failed; processing the batch again");
                    if sleep_or_stop(backoff(attempt), &shutdown).await {
                        break 'batches;
                    }
                }
            }
        }
        let offsets = next_offsets(&batch);
        commit(&consumer, &offsets, CommitMode::Async, &options.stage);
        committed.extend(offsets);
    }
    // Make sure the last commits landed before leaving the group — only for partitions still
    // ours: the broker checks the generation, not the assignment, so committing a partition a
    // rebalance gave away could move its new owner's offset back.
    let owned = consumer.assignment().unwrap_or_default();
    committed.retain(|(topic, partition), _| owned.find_partition(topic, *partition).is_some());
    commit(&consumer, &committed, CommitMode::Sync, &options.stage);
    consumer.unsubscribe();
    tracing::info!(stage = %options.stage, "stage stopped");
    Ok(())
}

/// Wait for the first record (or shutdown), then gather up to `max_batch` within `linger`.
async fn next_batch(
    consumer: &StreamConsumer,
    options: &RunnerOptions,
    shutdown: &CancellationToken,
) -> Option<Vec<(OwnedMessage, Instant)>> {
    let first = tokio::select! {
        biased;
        _ = shutdown.cancelled() => return None,
        received = consumer.recv() => received,
    };
    let first = match first {
        Ok(message) => message.detach(),
        Err(e) => {
            tracing::warn!(stage = %options.stage, error = %e, "consume error");
            tokio::time::sleep(Duration::from_millis(200)).await;
            return Some(Vec::new());
        }
    };
    let mut batch = vec![(first, Instant::now())];
    let deadline = tokio::time::Instant::now() + options.linger;
    while batch.len() < options.max_batch {
        tokio::select! {
            received = consumer.recv() => match received {
                Ok(message) => batch.push((message.detach(), Instant::now())),
                Err(e) => {
                    tracing::warn!(stage = %options.stage, error = %e, "consume error");
                    break;
                }
            },
            _ = tokio::time::sleep_until(deadline) => break,
        }
    }
    Some(batch)
}

async fn handle_batch<P: AsyncProcessor>(
    runtime: &Runtime,
    processor: &P,
    producer: &FutureProducer,
    stage: &str,
    batch: &[(OwnedMessage, Instant)],
    shutdown: &CancellationToken,
) -> Result<(), BatchFailure> {
    // Outputs are handed to the producer as soon as each record is processed, so producing
    // overlaps processing; the batch is done when every delivery is acknowledged.
    let mut deliveries = Vec::new();
    let pending: Vec<_> = batch
        .iter()
        .map(|(message, _)| outputs_of(runtime, processor, stage, message, shutdown))
        .collect();
    let mut results = stream::iter(pending).buffered(processor.concurrency().max(1));
    while let Some(outputs) = results.next().await {
        for record in outputs? {
            let delivery = enqueue(producer, &record)
                .await
                .map_err(BatchFailure::Produce)?;
            deliveries.push((record.topic, record.key, record.headers.is_some(), delivery));
        }
    }
    for (topic, key, dead_letter, delivery) in deliveries {
        match delivery.await {
            Ok(Ok(_)) => {}
            Ok(Err((e, _))) => return Err(BatchFailure::Produce(format!("to {topic}: {e}"))),
            Err(_) => {
                return Err(BatchFailure::Produce(format!(
                    "to {topic}: producer dropped the delivery"
                )));
            }
        }
        processor.produced(&topic, &key);
        let counter = if dead_letter {
            &runtime.metrics.dead_lettered
        } else {
            &runtime.metrics.produced
        };
        counter
            .get_or_create(&StageTopic {
                stage: stage.to_string(),
                topic,
            })
            .inc();
    }
    processor
        .flush()
        .await
        .map_err(|e| BatchFailure::Produce(format!("flush: {e}")))?;
    let latency = runtime
        .metrics
        .processing_latency
        .get_or_create(&StageLabel {
            stage: stage.to_string(),
        });
    for (_, received) in batch {
        latency.observe(received.elapsed().as_secs_f64());
    }
    Ok(())
}

/// Decode, process and encode one input; bad input becomes one dead letter.
async fn outputs_of<P: AsyncProcessor>(
    runtime: &Runtime,
    processor: &P,
    stage: &str,
    message: &OwnedMessage,
    shutdown: &CancellationToken,
) -> Result<Vec<Encoded>, BatchFailure> {
    let origin = Origin {
        topic: message.topic(),
        partition: message.partition(),
        offset: message.offset(),
        timestamp: message.timestamp().to_millis(),
        key: message.key(),
    };
    runtime
        .metrics
        .consumed
        .get_or_create(&StageTopic {
            stage: stage.to_string(),
            topic: message.topic().to_string(),
        })
        .inc();
    let Some(payload) = message.payload() else {
        return Ok(vec![dead_letter(
            runtime,
            stage,
            message,
            DeadLetterKind::Undecodable,
            "empty payload (tombstone) on a stage input",
        )]);
    };
    let mut tries = 0;
    let outputs = loop {
        let input =
            match retry_retriable(shutdown, || runtime.codec.decode::<P::Input>(payload)).await? {
                Ok(input) => input,
                Err(e) => {
                    let reason = e.to_string();
                    return Ok(vec![dead_letter(
                        runtime,
                        stage,
                        message,
                        DeadLetterKind::Undecodable,
                        &reason,
                    )]);
                }
            };
        match processor.process(input, origin).await {
            Ok(outputs) => break outputs,
            Err(StageError::Invalid(invalid)) => {
                return Ok(vec![dead_letter(
                    runtime,
                    stage,
                    message,
                    DeadLetterKind::Invalid,
                    &invalid.reason,
                )]);
            }
            Err(StageError::Unavailable(reason)) => {
                tries += 1;
                tracing::warn!(stage, topic = origin.topic, offset = origin.offset, %reason, tries, "stage unavailable; retrying the record");
                if sleep_or_stop(backoff(tries), shutdown).await {
                    return Err(BatchFailure::Interrupted);
                }
            }
        }
    };
    let mut encoded = Vec::with_capacity(outputs.len());
    for output in outputs {
        match retry_retriable(shutdown, || output.encode(&runtime.codec)).await? {
            Ok(payload) => encoded.push(Encoded {
                topic: output.topic,
                key: output.key,
                payload,
                headers: None,
            }),
            Err(e) => {
                // The stage built a record its schema refuses: a bug, but the input is kept.
                let reason = format!("output to {} cannot be encoded: {e}", output.topic);
                return Ok(vec![dead_letter(
                    runtime,
                    stage,
                    message,
                    DeadLetterKind::Invalid,
                    &reason,
                )]);
            }
        }
    }
    tracing::trace!(
        stage,
        topic = origin.topic,
        partition = origin.partition,
        offset = origin.offset,
        outputs = encoded.len(),
        "processed"
    );
    Ok(encoded)
}

fn dead_letter(
    runtime: &Runtime,
    stage: &str,
    message: &OwnedMessage,
    kind: DeadLetterKind,
    reason: &str,
) -> Encoded {
    tracing::warn!(
        stage,
        topic = message.topic(),
        partition = message.partition(),
        offset = message.offset(),
        kind = kind.as_str(),
        reason,
        "dead-lettered"
    );
    Encoded {
        topic: runtime.catalog.dead_letter_topic(message.topic()),
        key: message
            .key()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .unwrap_or_default(),
        payload: message.payload().map(<[u8]>::to_vec),
        headers: Some(dead_letter_headers(message, stage, kind, reason)),
    }
}

/// Run `attempt` until it succeeds or fails for good; a retriable codec failure (registry
/// down) waits and tries again. `Err` only when stopped while waiting.
async fn retry_retriable<T, F, Fut>(
    shutdown: &CancellationToken,
    mut attempt: F,
) -> Result<Result<T, CodecError>, BatchFailure>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, CodecError>>,
{
    let mut tries = 0;
    loop {
        match attempt().await {
            Err(e) if e.is_retriable() => {
                tries += 1;
                tracing::warn!(error = %e, tries, "schema registry unavailable; waiting");
                if sleep_or_stop(backoff(tries), shutdown).await {
                    return Err(BatchFailure::Interrupted);
                }
            }
            result => return Ok(result),
        }
    }
}

/// Hand a record to the producer; waits while its local queue is full.
async fn enqueue(producer: &FutureProducer, record: &Encoded) -> Result<DeliveryFuture, String> {
    loop {
        let mut future_record: FutureRecord<'_, str, Vec<u8>> =
            FutureRecord::to(&record.topic).key(&record.key);
        if let Some(payload) = &record.payload {
            future_record = future_record.payload(payload);
        }
        if let Some(headers) = &record.headers {
            future_record = future_record.headers(headers.clone());
        }
        match producer.send_result(future_record) {
            Ok(delivery) => return Ok(delivery),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            Err((e, _)) => return Err(format!("to {}: {e}", record.topic)),
        }
    }
}

/// The offset to commit per partition: one past the last record of the batch.
fn next_offsets(batch: &[(OwnedMessage, Instant)]) -> BTreeMap<(String, i32), i64> {
    let mut offsets = BTreeMap::new();
    for (message, _) in batch {
        let next = offsets
            .entry((message.topic().to_string(), message.partition()))
            .or_insert(0);
        *next = (*next).max(message.offset() + 1);
    }
    offsets
}

fn commit(
    consumer: &StreamConsumer,
    offsets: &BTreeMap<(String, i32), i64>,
    mode: CommitMode,
    stage: &str,
) {
    if offsets.is_empty() {
        return;
    }
    let mut list = TopicPartitionList::new();
    for ((topic, partition), offset) in offsets {
        if let Err(e) = list.add_partition_offset(topic, *partition, Offset::Offset(*offset)) {
            tracing::error!(stage, error = %e, "cannot build commit");
            return;
        }
    }
    // A partition revoked by a rebalance refuses the commit; its new owner reprocesses from
    // the last committed offset, so nothing is lost (at-least-once).
    if let Err(e) = consumer.commit(&list, mode) {
        tracing::warn!(stage, error = %e, "commit refused; records will be consumed again");
    }
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(100u64.saturating_mul(1 << attempt.min(6)))
}

/// Sleep, unless stopped first; true when stopped.
async fn sleep_or_stop(duration: Duration, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        _ = shutdown.cancelled() => true,
        _ = tokio::time::sleep(duration) => false,
    }
}
