//! One batch of a stage: decode each record, process it, encode its outputs and hand them to
//! the producer, then wait for every acknowledgement. Bad input becomes one dead letter; an
//! input whose outputs the broker can never take (`poison.rs`) becomes a dead letter and the
//! stage's own report of it. Logical topic names become the namespace's names here, at the
//! Kafka boundary.

use std::time::Instant;

use futures::{StreamExt, stream};
use rdkafka::Message;
use rdkafka::error::KafkaError;
use rdkafka::message::{OwnedHeaders, OwnedMessage};
use rdkafka::producer::{DeliveryFuture, FutureRecord};

use crate::kafka::Producer;
use rdkafka::types::RDKafkaErrorCode;
use switchyard_schemas::CodecError;
use tokio_util::sync::CancellationToken;

use crate::Runtime;
use crate::dead_letter::{DeadLetterKind, dead_letter_headers};
use crate::input::StageInput;
use crate::metrics::{StageLabel, StageTopic};
use crate::permanent::{ProduceFailureClass, record_bytes};
use crate::poison::{Poison, PoisonLevel, Poisoned, SourceId, source_of};
use crate::processor::{AsyncProcessor, Origin, Output, StageError};
use crate::retry::{backoff, sleep_or_stop};
use crate::stuck::StuckWatch;

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
    /// The input it was made from (None for state changelog records).
    pub source: Option<SourceId>,
}

impl Encoded {
    /// The bytes it takes against the broker's record limit.
    fn bytes(&self) -> usize {
        let headers = self.headers.as_ref().map_or(0, |h| {
            use rdkafka::message::Headers;
            h.iter()
                .map(|h| h.key.len() + h.value.map_or(0, <[u8]>::len))
                .sum()
        });
        record_bytes(
            self.key.len(),
            self.payload.as_ref().map_or(0, Vec::len),
            headers,
        )
    }
}

/// Why a batch could not be finished.
pub(crate) enum BatchFailure {
    /// Stop requested while waiting on a retriable failure.
    Interrupted,
    /// A produce failed for good after the producer's own retries: process the batch again.
    Produce(String),
    /// The transaction's outcome is unknown: go on from the group's committed offsets.
    Uncertain(String),
    /// The producer refused an output of the input at `source` for what it is (checked per
    /// record, before sending): process the batch again with that input on the poison path.
    Poison { source: SourceId, reason: String },
}

/// What every record of a batch is processed with besides the processor.
pub(crate) struct BatchContext<'a> {
    pub stage: &'a str,
    pub shutdown: &'a CancellationToken,
    /// Inputs found poison in an earlier attempt at this batch.
    pub poisoned: &'a Poisoned,
    pub watch: &'a StuckWatch,
    /// An input whose output is over the record limit takes the poison path at once (the
    /// stage keeps no state the input could have changed); otherwise the batch is processed
    /// again with the input marked.
    pub poison_inline: bool,
}

/// Process and produce a whole batch; returns the (logical topic, key) of every output once all
/// are acknowledged and the processor flushed.
pub(crate) async fn handle_batch<P: AsyncProcessor>(
    runtime: &Runtime,
    processor: &P,
    producer: &Producer,
    batch: &[(OwnedMessage, Instant)],
    context: &BatchContext<'_>,
) -> Result<Vec<(String, String)>, BatchFailure> {
    let mut produced = produce_batch(runtime, processor, producer, batch, context).await?;
    let received: Vec<Instant> = batch.iter().map(|(_, at)| *at).collect();
    produced.extend(finish_work(runtime, processor, producer, context.stage, &received).await?);
    Ok(produced)
}

/// Process a batch and produce its outputs; returns the (logical topic, key) of every output
/// once all are acknowledged. The state's changelog and the processor's flush are left to
/// `finish_work`, once per commit.
pub(crate) async fn produce_batch<P: AsyncProcessor>(
    runtime: &Runtime,
    processor: &P,
    producer: &Producer,
    batch: &[(OwnedMessage, Instant)],
    context: &BatchContext<'_>,
) -> Result<Vec<(String, String)>, BatchFailure> {
    // Outputs are handed to the producer as soon as each record is processed, so producing
    // overlaps processing; the batch is done when every delivery is acknowledged.
    let mut deliveries = Vec::new();
    let pending: Vec<_> = batch
        .iter()
        .map(|(message, _)| outputs_of(runtime, processor, message, context))
        .collect();
    let mut results = stream::iter(pending).buffered(processor.concurrency().max(1));
    while let Some(outputs) = results.next().await {
        for record in outputs? {
            let delivery = enqueue(producer, &record)
                .await
                .map_err(|e| e.into_failure(&record))?;
            deliveries.push(Pending::of(record, delivery));
        }
    }
    await_deliveries(runtime, context.stage, deliveries).await
}

/// What ends a unit of work before its commit: the state's changes produced to its changelog
/// and acknowledged, the processor flushed (a sink writes what it buffered), the latency of
/// each record `received` observed.
pub(crate) async fn finish_work<P: AsyncProcessor>(
    runtime: &Runtime,
    processor: &P,
    producer: &Producer,
    stage: &str,
    received: &[Instant],
) -> Result<Vec<(String, String)>, BatchFailure> {
    let mut deliveries = Vec::new();
    if let Some(store) = processor.state() {
        let records = store
            .changelog_records(runtime)
            .await
            .map_err(|e| BatchFailure::Produce(format!("state changelog: {e}")))?;
        for record in records {
            let delivery = enqueue(producer, &record)
                .await
                .map_err(|e| e.into_failure(&record))?;
            deliveries.push(Pending::of(record, delivery));
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
    for at in received {
        latency.observe(at.elapsed().as_secs_f64());
    }
    Ok(produced)
}

/// An output handed to the producer, waiting for its acknowledgement.
pub(crate) struct Pending {
    pub topic: String,
    pub key: String,
    pub dead_letter: bool,
    pub delivery: DeliveryFuture,
}

impl Pending {
    pub(crate) fn of(record: Encoded, delivery: DeliveryFuture) -> Self {
        Pending {
            topic: record.topic,
            key: record.key,
            dead_letter: record.dead_letter,
            delivery,
        }
    }
}

/// Wait until every delivery is acknowledged, counting each in the stage's metrics; returns
/// the (logical topic, key) of each.
pub(crate) async fn await_deliveries(
    runtime: &Runtime,
    stage: &str,
    deliveries: Vec<Pending>,
) -> Result<Vec<(String, String)>, BatchFailure> {
    let mut produced = Vec::with_capacity(deliveries.len());
    for pending in deliveries {
        let Pending {
            topic,
            key,
            dead_letter,
            delivery,
        } = pending;
        match delivery.await {
            Ok(Ok(_)) => {}
            Ok(Err((e, _))) => {
                // The broker refuses a whole record batch (its `max.message.bytes` is the
                // batch's), so which input is to blame is unknown: retried, and stuck if it
                // lasts. A record over our own limit never gets here (checked before producing).
                let mut reason = format!("to {topic}: {e}");
                if ProduceFailureClass::of(&e).is_permanent() {
                    reason.push_str(
                        "; check the topic exists, may be written, and takes records of --max-record-bytes",
                    );
                }
                return Err(BatchFailure::Produce(reason));
            }
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

/// Decode, process and encode one input; bad input becomes one dead letter, a poison input
/// its dead letter and report.
pub(crate) async fn outputs_of<P: AsyncProcessor>(
    runtime: &Runtime,
    processor: &P,
    message: &OwnedMessage,
    context: &BatchContext<'_>,
) -> Result<Vec<Encoded>, BatchFailure> {
    let (stage, shutdown) = (context.stage, context.shutdown);
    let topic = runtime.kafka.namespace.logical(message.topic());
    let origin = origin_of(runtime, message);
    runtime
        .metrics
        .consumed
        .get_or_create(&StageTopic {
            stage: stage.to_string(),
            topic: topic.to_string(),
        })
        .inc();
    if let Some(poison) = context.poisoned.get(message) {
        return poison_outputs(runtime, processor, message, poison, context).await;
    }
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
                context.watch.failed(&record_item(message), &reason);
                tracing::warn!(stage, topic = origin.topic, offset = origin.offset, %reason, tries, "stage unavailable; retrying the record");
                if sleep_or_stop(backoff(tries), shutdown).await {
                    return Err(BatchFailure::Interrupted);
                }
            }
        }
    };
    if tries > 0 {
        context.watch.progressed(Some(&record_item(message)));
    }
    let mut encoded = Vec::with_capacity(outputs.len());
    for output in outputs {
        let output_topic = output.topic.clone();
        match encode_output(runtime, message, output, shutdown).await? {
            Ok(record) if record.bytes() > runtime.kafka.max_record_bytes => {
                let reason = format!(
                    "its output to {} is too large: {} bytes; the broker takes at most {}",
                    record.topic,
                    record.bytes(),
                    runtime.kafka.max_record_bytes
                );
                if !context.poison_inline {
                    return Err(BatchFailure::Poison {
                        source: source_of(message),
                        reason,
                    });
                }
                let poison = Poison::new(reason);
                return poison_outputs(runtime, processor, message, &poison, context).await;
            }
            Ok(record) => encoded.push(record),
            Err(e) => {
                // The stage built a record its schema refuses: a bug, but the input is kept.
                let reason = format!("output to {output_topic} cannot be encoded: {e}");
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

/// The stuck watch's name of one record's work.
pub(crate) fn record_item(message: &OwnedMessage) -> String {
    format!(
        "{}/{}/{}",
        message.topic(),
        message.partition(),
        message.offset()
    )
}

/// Where `message` was read, as a stage sees it.
fn origin_of<'a>(runtime: &Runtime, message: &'a OwnedMessage) -> Origin<'a> {
    Origin {
        topic: runtime.kafka.namespace.logical(message.topic()),
        partition: message.partition(),
        offset: message.offset(),
        timestamp: message.timestamp().to_millis(),
        key: message.key(),
    }
}

/// Encode one output of `message` for its topic on the broker (the inner `Err`: the schema
/// refuses it).
async fn encode_output(
    runtime: &Runtime,
    message: &OwnedMessage,
    output: Output,
    shutdown: &CancellationToken,
) -> Result<Result<Encoded, CodecError>, BatchFailure> {
    let physical = runtime.kafka.topic(&output.topic);
    let due = output.due();
    Ok(
        retry_retriable(shutdown, || output.encode_for(&runtime.codec, &physical))
            .await?
            .map(|payload| Encoded {
                topic: output.topic,
                physical,
                key: output.key,
                headers: due.map(crate::delay_gate::due_at_header),
                payload,
                dead_letter: false,
                partition: None,
                source: Some(source_of(message)),
            }),
    )
}

/// The poison path of an input whose outputs the broker can never take: its dead letter (kind
/// `unproducible`, with the reason) and, unless an earlier attempt could not write even that,
/// the records the stage makes to end its message (`AsyncProcessor::unproducible`) — each
/// left out, and logged, if it is itself unwritable.
async fn poison_outputs<P: AsyncProcessor>(
    runtime: &Runtime,
    processor: &P,
    message: &OwnedMessage,
    poison: &Poison,
    context: &BatchContext<'_>,
) -> Result<Vec<Encoded>, BatchFailure> {
    let stage = context.stage;
    let origin = origin_of(runtime, message);
    runtime
        .metrics
        .unproducible
        .get_or_create(&StageTopic {
            stage: stage.to_string(),
            topic: origin.topic.to_string(),
        })
        .inc();
    if poison.level == PoisonLevel::Skip {
        tracing::error!(stage, topic = origin.topic, partition = origin.partition, offset = origin.offset, reason = %poison.reason, "not even its dead letter can be written; the input is passed over (it stays in its topic until retention)");
        return Ok(Vec::new());
    }
    let mut records = vec![dead_letter(
        runtime,
        stage,
        message,
        DeadLetterKind::Unproducible,
        &poison.reason,
    )];
    if poison.level == PoisonLevel::DeadLetterOnly {
        return Ok(records);
    }
    let Some(payload) = message.payload() else {
        return Ok(records);
    };
    let input = match retry_retriable(context.shutdown, || {
        P::Input::decode(&runtime.codec, origin.topic, payload)
    })
    .await?
    {
        Ok(input) => input,
        Err(_) => return Ok(records),
    };
    for output in processor.unproducible(input, origin, &poison.reason) {
        let topic = output.topic.clone();
        match encode_output(runtime, message, output, context.shutdown).await? {
            Ok(record) if record.bytes() <= runtime.kafka.max_record_bytes => records.push(record),
            Ok(record) => {
                tracing::error!(stage, %topic, bytes = record.bytes(), offset = origin.offset, "the report of a poison input is itself over the record limit; only its dead letter is written")
            }
            Err(e) => {
                tracing::error!(stage, %topic, error = %e, offset = origin.offset, "the report of a poison input cannot be encoded; only its dead letter is written")
            }
        }
    }
    Ok(records)
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
    let mut record = Encoded {
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
        source: Some(source_of(message)),
    };
    if record.bytes() > runtime.kafka.max_record_bytes {
        // The input fitted, its headers and the reason tip it over: the bytes stay readable at
        // the source position the headers name.
        let bytes = record.payload.take().map_or(0, |p| p.len());
        record.headers = Some(crate::dead_letter::payload_omitted(
            dead_letter_headers(message, stage, kind, reason),
            bytes,
        ));
    }
    record
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

/// A record the producer would not take.
pub(crate) struct EnqueueError {
    pub class: ProduceFailureClass,
    pub reason: String,
}

impl EnqueueError {
    /// The batch failure it makes: poison when the record itself is refused.
    pub(crate) fn into_failure(self, record: &Encoded) -> BatchFailure {
        match (self.class, &record.source) {
            (ProduceFailureClass::RecordRefused, Some(source)) => BatchFailure::Poison {
                source: source.clone(),
                reason: self.reason,
            },
            _ => BatchFailure::Produce(self.reason),
        }
    }
}

/// Hand a record to the producer; waits while its local queue is full.
pub(crate) async fn enqueue(
    producer: &Producer,
    record: &Encoded,
) -> Result<DeliveryFuture, EnqueueError> {
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
            Err((e, _)) => {
                return Err(EnqueueError {
                    class: ProduceFailureClass::of(&e),
                    reason: format!("to {}: {e}", record.topic),
                });
            }
        }
    }
}
