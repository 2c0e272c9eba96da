//! One batch of a stage: decode each record, process it, encode its outputs and hand them to
//! the producer, then wait for every acknowledgement. Bad input becomes one dead letter.
//! Logical topic names become the namespace's names here, at the Kafka boundary.

use std::time::Instant;

use futures::{StreamExt, stream};
use rdkafka::Message;
use rdkafka::error::KafkaError;
use rdkafka::message::{OwnedHeaders, OwnedMessage};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use switchyard_schemas::CodecError;
use tokio_util::sync::CancellationToken;

use crate::Runtime;
use crate::dead_letter::{DeadLetterKind, dead_letter_headers};
use crate::input::StageInput;
use crate::metrics::{StageLabel, StageTopic};
use crate::processor::{AsyncProcessor, Origin, StageError};
use crate::retry::{backoff, sleep_or_stop};

/// One record to produce, already encoded, addressed by its physical topic.
pub(crate) struct Encoded {
    /// Logical topic (what the stage named; metrics and hooks use it).
    pub topic: String,
    /// Topic on the broker.
    pub physical: String,
    pub key: String,
    pub payload: Option<Vec<u8>>,
    pub headers: Option<OwnedHeaders>,
    /// Whether this is a dead letter (counted apart).
    pub dead_letter: bool,
    /// A partition chosen by the runtime (state changelogs); None = by key.
    pub partition: Option<i32>,
}

/// Why a batch could not be finished.
pub(crate) enum BatchFailure {
    /// Stop requested while waiting on a retriable failure.
    Interrupted,
    /// A produce failed for good after the producer's own retries: process the batch again.
    Produce(String),
    /// The transaction's outcome is unknown: go on from the group's committed offsets.
    Uncertain(String),
}

/// Process and produce a whole batch; returns the (logical topic, key) of every output once all
/// are acknowledged and the processor flushed.
pub(crate) async fn handle_batch<P: AsyncProcessor>(
    runtime: &Runtime,
    processor: &P,
    producer: &FutureProducer,
    stage: &str,
    batch: &[(OwnedMessage, Instant)],
    shutdown: &CancellationToken,
) -> Result<Vec<(String, String)>, BatchFailure> {
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
            deliveries.push((record.topic, record.key, record.dead_letter, delivery));
        }
    }
    if let Some(store) = processor.state() {
        let records = store
            .changelog_records(runtime)
            .await
            .map_err(|e| BatchFailure::Produce(format!("state changelog: {e}")))?;
        for record in records {
            let delivery = enqueue(producer, &record)
                .await
                .map_err(BatchFailure::Produce)?;
            deliveries.push((record.topic, record.key, false, delivery));
        }
    }
    let produced = await_deliveries(runtime, stage, deliveries).await?;
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
    Ok(produced)
}

/// An output handed to the producer: (logical topic, key, is a dead letter, its delivery).
pub(crate) type Pending = (String, String, bool, DeliveryFuture);

/// Wait until every delivery is acknowledged, counting each in the stage's metrics; returns
/// the (logical topic, key) of each.
pub(crate) async fn await_deliveries(
    runtime: &Runtime,
    stage: &str,
    deliveries: Vec<Pending>,
) -> Result<Vec<(String, String)>, BatchFailure> {
    let mut produced = Vec::with_capacity(deliveries.len());
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
        let counter = if dead_letter {
            &runtime.metrics.dead_lettered
        } else {
            &runtime.metrics.produced
        };
        counter
            .get_or_create(&StageTopic {
                stage: stage.to_string(),
                topic: topic.clone(),
            })
            .inc();
        produced.push((topic, key));
    }
    Ok(produced)
}

/// Decode, process and encode one input; bad input becomes one dead letter.
pub(crate) async fn outputs_of<P: AsyncProcessor>(
    runtime: &Runtime,
    processor: &P,
    stage: &str,
    message: &OwnedMessage,
    shutdown: &CancellationToken,
) -> Result<Vec<Encoded>, BatchFailure> {
    let topic = runtime.kafka.namespace.logical(message.topic());
    let origin = Origin {
        topic,
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
            topic: topic.to_string(),
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
        let input = match retry_retriable(shutdown, || {
            P::Input::decode(&runtime.codec, topic, payload)
        })
        .await?
        {
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
        let physical = runtime.kafka.topic(&output.topic);
        let due = output.due();
        match retry_retriable(shutdown, || output.encode_for(&runtime.codec, &physical)).await? {
            Ok(payload) => encoded.push(Encoded {
                topic: output.topic,
                physical,
                key: output.key,
                headers: due.map(crate::delay_gate::due_at_header),
                payload,
                dead_letter: false,
                partition: None,
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
    let topic =
        switchyard_topics::names::dead_letter(runtime.kafka.namespace.logical(message.topic()));
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
        physical: runtime.kafka.topic(&topic),
        topic,
        key: message
            .key()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .unwrap_or_default(),
        payload: message.payload().map(<[u8]>::to_vec),
        headers: Some(dead_letter_headers(message, stage, kind, reason)),
        dead_letter: true,
        partition: None,
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
pub(crate) async fn enqueue(
    producer: &FutureProducer,
    record: &Encoded,
) -> Result<DeliveryFuture, String> {
    loop {
        let mut future_record: FutureRecord<'_, str, Vec<u8>> =
            FutureRecord::to(&record.physical).key(&record.key);
        if let Some(payload) = &record.payload {
            future_record = future_record.payload(payload);
        }
        if let Some(headers) = &record.headers {
            future_record = future_record.headers(headers.clone());
        }
        if let Some(partition) = record.partition {
            future_record = future_record.partition(partition);
        }
        match producer.send_result(future_record) {
            Ok(delivery) => return Ok(delivery),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            }
            Err((e, _)) => return Err(format!("to {}: {e}", record.topic)),
        }
    }
}
