//! The Kafka runner every stage shares: consume a batch, process it (`batch.rs`), then either
//! commit outputs and offsets in one transaction (exactly once) or commit offsets once every
//! output is acknowledged (at least once). A failed batch is consumed again from where it
//! started; nothing is skipped. Bad input goes to `deadletter.<topic>`; an input whose outputs
//! the broker can never take is marked poison and the batch processed again without it
//! (`poison.rs`). A batch failing past the stuck limits makes `/healthz` say so (`stuck.rs`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::Message;
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::message::OwnedMessage;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

use crate::batch::{BatchContext, BatchFailure, handle_batch};
use crate::error_log::ErrorLog;
use crate::metrics::StageLabel;
use crate::poison::Poisoned;
use crate::processing::Processing;
use crate::processor::AsyncProcessor;
use crate::retry::{backoff, sleep_or_stop};
use crate::stage_consumer::{RebalanceCounter, StageConsumer};
use crate::stuck::StuckWatch;
use crate::transaction::{TransactionError, Transactions};
use crate::{Runtime, RuntimeError};

/// How a stage consumes.
#[derive(Debug, Clone)]
pub struct RunnerOptions {
    /// Stage name: used in logs, metrics and dead-letter headers.
    pub stage: String,
    /// Consumer group (in the namespace); by default `switchyard.<stage>`.
    pub group_id: String,
    /// Logical topics to consume.
    pub topics: Vec<String>,
    /// Most records in flight at once (one batch).
    pub max_batch: usize,
    /// How long to wait for a batch to fill once its first record arrived.
    pub linger: Duration,
    /// The guarantee; `None` takes the runtime's (`--processing`). Stages that touch the
    /// outside world set `AtLeastOnce`: a transaction cannot take back an HTTP call.
    pub processing: Option<Processing>,
    /// Records finish out of order (`unordered.rs`): at least once, for stages whose calls
    /// to the outside world may be slow for some records and fast for others.
    pub unordered: bool,
    /// For a delayed topic (unordered only): a record runs once its timestamp plus this delay
    /// has passed (or at its `switchyard.due-at` header).
    pub delay: Option<Duration>,
    /// Most not-yet-due records held per partition before it is paused (unordered only). 1
    /// for a topic whose records come due in order (a fixed delay); more where each record
    /// has its own time, so a late one does not block earlier-due ones behind it.
    pub held_per_partition: usize,
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
            processing: None,
            unordered: false,
            delay: None,
            held_per_partition: 1,
        }
    }

    /// The same options for a topic whose records each carry their own due time (the
    /// `switchyard.due-at` header): unordered, holding up to `held` records a partition.
    pub fn due_per_record(mut self, held: usize) -> Self {
        self.delay = Some(Duration::ZERO);
        self.held_per_partition = held.max(1);
        self.unordered()
    }

    /// The same options with records finishing out of order, at least once.
    pub fn unordered(mut self) -> Self {
        self.unordered = true;
        self.processing = Some(Processing::AtLeastOnce);
        self
    }

    /// The same options for a delayed topic: unordered, each record waiting until its
    /// timestamp + `delay`.
    pub fn delayed(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self.unordered()
    }

    /// The same options for a stage whose correctness needs transactions (a state store):
    /// always exactly once, whatever `--processing` says.
    pub fn exactly_once(mut self) -> Self {
        self.processing = Some(Processing::ExactlyOnce);
        self
    }

    /// The same options for a stage that calls the outside world: always at least once.
    pub fn at_least_once(mut self) -> Self {
        self.processing = Some(Processing::AtLeastOnce);
        self
    }
}

/// The stuck watch's name of an ordered runner's work: one batch at a time.
const BATCH: &str = "batch";

/// Where a batch's outputs go.
enum Sink {
    Transactions(Transactions),
    Plain(rdkafka::producer::FutureProducer),
}

/// Run `processor` until `shutdown` is cancelled. Finishes the batch in flight, commits it,
/// and leaves the group on the way out.
pub async fn run<P: AsyncProcessor>(
    runtime: &Runtime,
    processor: Arc<P>,
    options: RunnerOptions,
    shutdown: CancellationToken,
) -> Result<(), RuntimeError> {
    let stateful = processor.state().is_some();
    if options.unordered {
        if stateful {
            return Err(RuntimeError::Misconfigured(format!(
                "stage {} keeps a state store, which needs records in order",
                options.stage
            )));
        }
        return crate::unordered::run_unordered(runtime, processor, options, shutdown).await;
    }
    let processing = options.processing.unwrap_or(runtime.processing);
    if stateful && processing == Processing::AtLeastOnce {
        // Without a transaction the changelog, the outputs and the offsets do not move
        // together, and nothing fences a member that lost its partitions: state (money) could
        // diverge. A stateful stage is exactly once or does not run.
        return Err(RuntimeError::Misconfigured(format!(
            "stage {} keeps a state store and runs only exactly once",
            options.stage
        )));
    }
    // A state store is kept per input partition: partition p of every input topic (and of the
    // changelog) must belong to the same member, which the range assignor guarantees for
    // topics with equal partition counts.
    let overrides: &[(&str, String)] = if stateful {
        &[("partition.assignment.strategy", "range".to_string())]
    } else {
        &[]
    };
    let (consumer, rebalances) = runtime
        .kafka
        .stage_consumer_with(&options.group_id, overrides)?;
    let topics: Vec<String> = options
        .topics
        .iter()
        .map(|t| runtime.kafka.topic(t))
        .collect();
    let topic_refs: Vec<&str> = topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topic_refs)?;
    let mut sink = match processing {
        Processing::ExactlyOnce => {
            let id = format!("{}.{}", options.group_id, runtime.instance_id);
            match Transactions::start(&runtime.kafka, &id, &shutdown).await? {
                Some(transactions) => Sink::Transactions(transactions),
                None => return Ok(()),
            }
        }
        Processing::AtLeastOnce => Sink::Plain(runtime.producer()?),
    };
    tracing::info!(stage = %options.stage, topics = ?topics, group = %options.group_id, %processing, "stage started");

    let mut committed: BTreeMap<(String, i32), i64> = BTreeMap::new();
    let mut failures = 0u32;
    let mut errors = ErrorLog::default();
    let watch = StuckWatch::new(runtime, &options.stage);
    let mut poisoned = Poisoned::default();
    loop {
        // A rebalance runs inside `recv`, so it can happen while a batch is gathered: records
        // fetched before it may belong to partitions that are no longer (or anew) ours. Such a
        // batch is dropped and every partition restarts from its committed offset.
        let epoch = rebalances.epoch();
        let Some(batch) = next_batch(&consumer, &options, &mut errors, &shutdown).await else {
            break;
        };
        if batch.is_empty() {
            continue;
        }
        if rebalances.epoch() != epoch {
            // Some records may be from before the rebalance, some from after: go back to what
            // the group committed for every partition now ours.
            tracing::info!(stage = %options.stage, records = batch.len(), "the group rebalanced while a batch was gathered; dropped, to be consumed again from the committed offsets");
            seek_to_committed(&consumer, &options.stage);
            watch.progressed(None);
            continue;
        }
        if let Some(store) = processor.state() {
            let assigned = assigned_partitions(&consumer);
            let needed = batch.iter().map(|(m, _)| m.partition()).collect();
            match store
                .prepare(runtime, epoch, &assigned, &needed, &shutdown)
                .await
            {
                Ok(()) => {}
                Err(RuntimeError::Stopped) => {
                    rewind(&consumer, &batch, &options.stage);
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        let context = BatchContext {
            stage: &options.stage,
            shutdown: &shutdown,
            poisoned: &poisoned,
            watch: &watch,
            poison_inline: !stateful,
        };
        let outcome = match &mut sink {
            Sink::Transactions(transactions) => {
                transactional_batch(
                    runtime,
                    &*processor,
                    transactions,
                    &consumer,
                    (&rebalances, epoch),
                    &batch,
                    &context,
                )
                .await
            }
            Sink::Plain(producer) => {
                match handle_batch(runtime, &*processor, producer, &batch, &context).await {
                    Ok(produced) => {
                        let offsets = next_offsets(&batch);
                        commit(&consumer, &offsets, CommitMode::Async, &options.stage);
                        committed.extend(offsets);
                        Ok(produced)
                    }
                    Err(failure) => Err(failure),
                }
            }
        };
        match outcome {
            Ok(produced) => {
                failures = 0;
                poisoned.committed(&next_offsets(&batch));
                watch.progressed(None);
                if let Some(store) = processor.state() {
                    store.commit();
                }
                for (topic, key) in produced {
                    processor.produced(&topic, &key);
                }
            }
            Err(BatchFailure::Uncertain(reason)) => {
                // The batch may have committed: what is in memory and where the consumer
                // stands are both unknown. Start over from what the broker holds.
                if let Some(store) = processor.state() {
                    store.forget();
                }
                processor.batch_failed();
                seek_to_committed(&consumer, &options.stage);
                watch.failed(BATCH, &reason);
                tracing::warn!(stage = %options.stage, %reason, "transaction outcome unknown; going on from the committed offsets with state restored");
            }
            Err(BatchFailure::Poison { source, reason }) => {
                // Not a retry of the same work: the batch goes again with the input on its
                // poison path, each refusal of it one level further down (bounded).
                if let Some(store) = processor.state() {
                    store.rollback();
                }
                processor.batch_failed();
                rewind(&consumer, &batch, &options.stage);
                let (topic, partition, offset) = source.clone();
                let level = poisoned.mark(source, reason.clone());
                tracing::warn!(stage = %options.stage, %topic, partition, offset, %reason, ?level, "the broker can never take an output of this input; processing the batch again with it dead-lettered");
            }
            Err(failure) => {
                if let Some(store) = processor.state() {
                    store.rollback();
                }
                processor.batch_failed();
                rewind(&consumer, &batch, &options.stage);
                let BatchFailure::Produce(reason) = failure else {
                    tracing::warn!(stage = %options.stage, "stopped with a batch unfinished; it will be consumed again");
                    break;
                };
                failures += 1;
                watch.failed(BATCH, &reason);
                runtime
                    .metrics
                    .batch_retries
                    .get_or_create(&StageLabel {
                        stage: options.stage.clone(),
                    })
                    .inc();
                tracing::warn!(stage = %options.stage, %reason, attempt = failures, "batch not committed; consuming it again");
                // `transactional_batch` already aborted (or replaced the producer).
                if sleep_or_stop(backoff(failures), &shutdown).await {
                    break;
                }
            }
        }
    }
    match &sink {
        Sink::Transactions(transactions) => transactions.abort_quietly().await,
        Sink::Plain(_) => {
            // Make sure the last commits landed before leaving the group — only for partitions
            // still ours: the broker checks the generation, not the assignment, so committing
            // a partition a rebalance gave away could move its new owner's offset back.
            let owned = consumer.assignment().unwrap_or_default();
            committed
                .retain(|(topic, partition), _| owned.find_partition(topic, *partition).is_some());
            commit(&consumer, &committed, CommitMode::Sync, &options.stage);
        }
    }
    consumer.unsubscribe();
    tracing::info!(stage = %options.stage, "stage stopped");
    Ok(())
}

/// Exactly once: begin, process and produce, then commit the outputs with the batch's offsets.
/// A rebalance during the batch aborts it: its partitions may already be someone else's.
#[allow(clippy::too_many_arguments)]
async fn transactional_batch<P: AsyncProcessor>(
    runtime: &Runtime,
    processor: &P,
    transactions: &mut Transactions,
    consumer: &StageConsumer,
    (rebalances, epoch): (&RebalanceCounter, u64),
    batch: &[(OwnedMessage, Instant)],
    context: &BatchContext<'_>,
) -> Result<Vec<(String, String)>, BatchFailure> {
    let shutdown = context.shutdown;
    if let Err(e) = transactions.begin() {
        let _ = transactions.recover(&e, shutdown).await;
        return Err(BatchFailure::Produce(e.to_string()));
    }
    let produced =
        match handle_batch(runtime, processor, transactions.producer(), batch, context).await {
            Ok(produced) => produced,
            Err(failure) => {
                let aborted = TransactionError::Aborted("the batch was not produced".into());
                return match transactions.recover(&aborted, shutdown).await {
                    Ok(true) => Err(failure),
                    _ => Err(BatchFailure::Interrupted),
                };
            }
        };
    let offsets = offsets_list(&next_offsets(batch));
    let group = consumer.group_metadata();
    let result = match (offsets, group) {
        _ if rebalances.epoch() != epoch => Err(TransactionError::Aborted(
            "the group rebalanced during the batch".into(),
        )),
        (Ok(offsets), Some(group)) => transactions.commit(offsets, group).await,
        (Err(e), _) => Err(TransactionError::Aborted(e.to_string())),
        (_, None) => Err(TransactionError::Aborted("no group metadata yet".into())),
    };
    match result {
        Ok(()) => Ok(produced),
        Err(error @ TransactionError::Uncertain(_)) => {
            let reason = error.to_string();
            match transactions.recover(&error, shutdown).await {
                Ok(true) => Err(BatchFailure::Uncertain(reason)),
                _ => Err(BatchFailure::Interrupted),
            }
        }
        Err(error) => {
            // Abort now (or replace a fenced producer) so the next attempt starts clean.
            let reason = error.to_string();
            match transactions.recover(&error, shutdown).await {
                Ok(true) => Err(BatchFailure::Produce(reason)),
                _ => Err(BatchFailure::Interrupted),
            }
        }
    }
}

/// Wait for the first record (or shutdown), then gather up to `max_batch` within `linger`.
async fn next_batch(
    consumer: &StageConsumer,
    options: &RunnerOptions,
    errors: &mut ErrorLog,
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
            // Errors are events (a broker down, a fetch failed): librdkafka reconnects with
            // its own backoff, so nothing waits here — a queue of stale errors after an outage
            // is drained at once instead of one per sleep.
            if let Some(left_out) = errors.admit(Instant::now()) {
                tracing::warn!(stage = %options.stage, error = %e, left_out, "consume error");
            }
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
                    if let Some(left_out) = errors.admit(Instant::now()) {
                        tracing::warn!(stage = %options.stage, error = %e, left_out, "consume error");
                    }
                    break;
                }
            },
            _ = tokio::time::sleep_until(deadline) => break,
        }
    }
    Some(batch)
}

/// Move every assigned partition to the group's committed offset (after a transaction whose
/// outcome is unknown).
fn seek_to_committed(consumer: &StageConsumer, stage: &str) {
    let committed = match consumer.committed(Duration::from_secs(30)) {
        Ok(list) => list,
        Err(e) => {
            tracing::error!(stage, error = %e, "cannot read the committed offsets");
            return;
        }
    };
    for element in committed.elements() {
        let offset = match element.offset() {
            Offset::Offset(o) => Offset::Offset(o),
            _ => Offset::Beginning,
        };
        if let Err(e) = consumer.seek(
            element.topic(),
            element.partition(),
            offset,
            Duration::from_secs(10),
        ) {
            tracing::error!(stage, topic = element.topic(), partition = element.partition(), error = %e, "cannot seek to the committed offset");
        }
    }
}

/// The partition numbers assigned to this member, over every input topic.
fn assigned_partitions(consumer: &StageConsumer) -> std::collections::BTreeSet<i32> {
    consumer
        .assignment()
        .map(|list| list.elements().iter().map(|e| e.partition()).collect())
        .unwrap_or_default()
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

fn offsets_list(
    offsets: &BTreeMap<(String, i32), i64>,
) -> Result<TopicPartitionList, rdkafka::error::KafkaError> {
    let mut list = TopicPartitionList::new();
    for ((topic, partition), offset) in offsets {
        list.add_partition_offset(topic, *partition, Offset::Offset(*offset))?;
    }
    Ok(list)
}

/// Move the consumer back to the first record of the batch on each partition still assigned,
/// so a batch that was not committed is consumed again (revoked partitions restart from their
/// committed offset at their new owner).
fn rewind(consumer: &StageConsumer, batch: &[(OwnedMessage, Instant)], stage: &str) {
    let mut first: BTreeMap<(String, i32), i64> = BTreeMap::new();
    for (message, _) in batch {
        let offset = first
            .entry((message.topic().to_string(), message.partition()))
            .or_insert(i64::MAX);
        *offset = (*offset).min(message.offset());
    }
    let owned = consumer.assignment().unwrap_or_default();
    for ((topic, partition), offset) in first {
        if owned.find_partition(&topic, partition).is_none() {
            continue;
        }
        if let Err(e) = consumer.seek(
            &topic,
            partition,
            Offset::Offset(offset),
            Duration::from_secs(10),
        ) {
            tracing::error!(stage, %topic, partition, error = %e, "cannot rewind");
        }
    }
}

pub(crate) fn commit(
    consumer: &StageConsumer,
    offsets: &BTreeMap<(String, i32), i64>,
    mode: CommitMode,
    stage: &str,
) {
    if offsets.is_empty() {
        return;
    }
    let list = match offsets_list(offsets) {
        Ok(list) => list,
        Err(e) => {
            tracing::error!(stage, error = %e, "cannot build commit");
            return;
        }
    };
    // A partition revoked by a rebalance refuses the commit; its new owner reprocesses from
    // the last committed offset, so nothing is lost (at-least-once).
    if let Err(e) = consumer.commit(&list, mode) {
        tracing::warn!(stage, error = %e, "commit refused; records will be consumed again");
    }
}
