//! The Kafka runner every stage shares: consume a batch, process it (`batch.rs`), then either
//! commit outputs and offsets in a transaction that gathers batches for the commit interval
//! (exactly once, `exactly_once.rs`) or commit offsets once every output is acknowledged (at
//! least once). A failed batch is consumed again from where it
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
use crate::lanes::Lanes;
use crate::metrics::StageLabel;
use crate::poison::Poisoned;
use crate::processing::Processing;
use crate::processor::AsyncProcessor;
use crate::retry::{backoff, sleep_or_stop};
use crate::stage_consumer::{RebalanceCounter, StageConsumer};
use crate::stuck::StuckWatch;
use crate::transaction::Transactions;
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
    /// has passed (or at its `switchyard.due-at` header). The delay of every topic not in
    /// `topic_delays`.
    pub delay: Option<Duration>,
    /// Delays of single topics (logical names; unordered only), over `delay`: one runner over
    /// topics with different delays (the callback role: `reports.final` at once, retry tier n
    /// after its wait).
    pub topic_delays: BTreeMap<String, Duration>,
    /// Most not-yet-due records held per partition before it is paused (unordered only). 1
    /// for a topic whose records come due in order (a fixed delay); more where each record
    /// has its own time, so a late one does not block earlier-due ones behind it.
    pub held_per_partition: usize,
    /// Exactly once: how long a transaction stays open gathering batches; `None` takes the
    /// runtime's (`--commit-interval-ms`).
    pub commit_interval: Option<Duration>,
    /// The topics are lanes in strict priority, highest first (`lanes.rs`; at least once):
    /// each batch comes from the highest lane holding records.
    pub lanes: bool,
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
            topic_delays: BTreeMap::new(),
            held_per_partition: 1,
            commit_interval: None,
            lanes: false,
        }
    }

    /// The same options with the topics as lanes in strict priority, highest first: every
    /// batch from the highest lane holding records, at least once.
    pub fn lanes_in_priority_order(mut self) -> Self {
        self.lanes = true;
        self.at_least_once()
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

    /// The same options with the records of `topic` (one of the topics) waiting until their
    /// timestamp + `delay`, whatever the other topics wait: unordered.
    pub fn delayed_topic(mut self, topic: &str, delay: Duration) -> Self {
        self.topic_delays.insert(topic.to_string(), delay);
        self.unordered()
    }

    /// How long the records of `topic` (logical) wait after their timestamp, if at all.
    pub fn delay_of(&self, topic: &str) -> Option<Duration> {
        self.topic_delays.get(topic).copied().or(self.delay)
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

/// The stuck watch's name of an ordered runner's work: one batch (or transaction) at a time.
pub(crate) const BATCH: &str = "batch";

/// Run `processor` until `shutdown` is cancelled. Finishes the batch in flight, commits it,
/// and leaves the group on the way out.
pub async fn run<P: AsyncProcessor>(
    runtime: &Runtime,
    processor: Arc<P>,
    options: RunnerOptions,
    shutdown: CancellationToken,
) -> Result<(), RuntimeError> {
    let stateful = processor.state().is_some();
    if options.lanes
        && (options.unordered
            || options.processing.unwrap_or(runtime.processing) == Processing::ExactlyOnce)
    {
        return Err(RuntimeError::Misconfigured(format!(
            "stage {} reads lanes in priority order, which runs ordered and at least once",
            options.stage
        )));
    }
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
    // A lane topic that does not exist would hold up the group's assignment of the others
    // (librdkafka waits for every subscribed topic's metadata): lanes read those that exist.
    let topics = if options.lanes {
        existing_topics(&consumer, topics, &options.stage)
    } else {
        topics
    };
    let topic_refs: Vec<&str> = topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topic_refs)?;
    if processing == Processing::ExactlyOnce {
        let id = format!("{}.{}", options.group_id, runtime.instance_id);
        let Some(transactions) = Transactions::start(&runtime.kafka, &id, &shutdown).await? else {
            return Ok(());
        };
        tracing::info!(stage = %options.stage, topics = ?topics, group = %options.group_id, %processing, "stage started");
        crate::exactly_once::run_exactly_once(
            runtime,
            processor,
            &options,
            (&consumer, &rebalances),
            transactions,
            &shutdown,
        )
        .await?;
    } else {
        let producer = runtime.producer()?;
        tracing::info!(stage = %options.stage, topics = ?topics, group = %options.group_id, %processing, lanes = options.lanes, "stage started");
        // A partition pauses at two batches buffered: enough to keep the sender busy.
        let lanes = options
            .lanes
            .then(|| Lanes::new(&topics, options.max_batch.saturating_mul(2)));
        at_least_once(
            runtime,
            &*processor,
            &options,
            (&consumer, &rebalances),
            (&producer, lanes),
            &shutdown,
        )
        .await;
    }
    consumer.unsubscribe();
    tracing::info!(stage = %options.stage, "stage stopped");
    Ok(())
}

/// The `topics` the brokers have (all of them if the brokers cannot say), saying which are
/// missing.
fn existing_topics(consumer: &StageConsumer, topics: Vec<String>, stage: &str) -> Vec<String> {
    let Ok(metadata) = consumer.fetch_metadata(None, Duration::from_secs(10)) else {
        return topics;
    };
    let known: std::collections::HashSet<&str> =
        metadata.topics().iter().map(|t| t.name()).collect();
    let (present, missing): (Vec<String>, Vec<String>) =
        topics.into_iter().partition(|t| known.contains(t.as_str()));
    if !missing.is_empty() {
        tracing::warn!(
            stage,
            ?missing,
            "lane topics missing (apply the topic catalog to create them); reading the others"
        );
    }
    present
}

/// At least once: each batch's outputs acknowledged, then its offsets committed.
async fn at_least_once<P: AsyncProcessor>(
    runtime: &Runtime,
    processor: &P,
    options: &RunnerOptions,
    (consumer, rebalances): (&StageConsumer, &RebalanceCounter),
    (producer, mut lanes): (&crate::kafka::Producer, Option<Lanes>),
    shutdown: &CancellationToken,
) {
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
        let gathered = match lanes.as_mut() {
            Some(lanes) => {
                lanes
                    .next_batch(consumer, rebalances, options, &mut errors, shutdown)
                    .await
            }
            None => next_batch(consumer, options, &mut errors, shutdown, None).await,
        };
        let Some(batch) = gathered else {
            break;
        };
        if batch.is_empty() {
            continue;
        }
        // Before the first assignment nothing was fetched: a batch gathered across it is all
        // from the new assignment.
        if rebalances.epoch() != epoch && epoch != 0 {
            tracing::info!(stage = %options.stage, records = batch.len(), "the group rebalanced while a batch was gathered; dropped, to be consumed again from the committed offsets");
            if let Some(lanes) = lanes.as_mut() {
                lanes.forget();
            }
            seek_to_committed(consumer, &options.stage);
            watch.progressed(None);
            continue;
        }
        let context = BatchContext {
            stage: &options.stage,
            shutdown,
            poisoned: &poisoned,
            watch: &watch,
            // Stateful stages are refused at least once (`run`): nothing to roll back.
            poison_inline: true,
        };
        match handle_batch(runtime, processor, producer, &batch, &context).await {
            Ok(produced) => {
                let offsets = next_offsets(&batch);
                commit(consumer, &offsets, CommitMode::Async, &options.stage);
                failures = 0;
                poisoned.committed(&offsets);
                committed.extend(offsets);
                watch.progressed(None);
                for (topic, key) in produced {
                    processor.produced(&topic, &key);
                }
            }
            Err(BatchFailure::Poison { source, reason }) => {
                // Not a retry of the same work: the batch goes again with the input on its
                // poison path, each refusal of it one level further down (bounded).
                processor.batch_failed();
                if let Some(lanes) = lanes.as_mut() {
                    lanes.unread(consumer, &options.stage);
                }
                rewind(consumer, &batch, &options.stage);
                let (topic, partition, offset) = source.clone();
                let level = poisoned.mark(source, reason.clone());
                tracing::warn!(stage = %options.stage, %topic, partition, offset, %reason, ?level, "the producer refuses an output of this input; processing the batch again with it dead-lettered");
            }
            Err(failure) => {
                processor.batch_failed();
                if let Some(lanes) = lanes.as_mut() {
                    lanes.unread(consumer, &options.stage);
                }
                rewind(consumer, &batch, &options.stage);
                let (BatchFailure::Produce(reason) | BatchFailure::Uncertain(reason)) = failure
                else {
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
                if sleep_or_stop(backoff(failures), shutdown).await {
                    break;
                }
            }
        }
    }
    // Make sure the last commits landed before leaving the group — only for partitions still
    // ours: the broker checks the generation, not the assignment, so committing a partition a
    // rebalance gave away could move its new owner's offset back.
    let owned = consumer.assignment().unwrap_or_default();
    committed.retain(|(topic, partition), _| owned.find_partition(topic, *partition).is_some());
    commit(consumer, &committed, CommitMode::Sync, &options.stage);
}

/// Wait for the first record (or shutdown; or `until`, then the batch is empty), then gather
/// up to `max_batch` within `linger`.
pub(crate) async fn next_batch(
    consumer: &StageConsumer,
    options: &RunnerOptions,
    errors: &mut ErrorLog,
    shutdown: &CancellationToken,
    until: Option<tokio::time::Instant>,
) -> Option<Vec<(OwnedMessage, Instant)>> {
    let first = tokio::select! {
        biased;
        _ = shutdown.cancelled() => return None,
        received = consumer.recv() => received,
        _ = sleep_until_some(until), if until.is_some() => return Some(Vec::new()),
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

async fn sleep_until_some(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Move every assigned partition to the group's committed offset (after a transaction whose
/// outcome is unknown).
pub(crate) fn seek_to_committed(consumer: &StageConsumer, stage: &str) {
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
pub(crate) fn assigned_partitions(consumer: &StageConsumer) -> std::collections::BTreeSet<i32> {
    consumer
        .assignment()
        .map(|list| list.elements().iter().map(|e| e.partition()).collect())
        .unwrap_or_default()
}

/// The offset to commit per partition: one past the last record of the batch.
pub(crate) fn next_offsets(batch: &[(OwnedMessage, Instant)]) -> BTreeMap<(String, i32), i64> {
    let mut offsets = BTreeMap::new();
    for (message, _) in batch {
        let next = offsets
            .entry((message.topic().to_string(), message.partition()))
            .or_insert(0);
        *next = (*next).max(message.offset() + 1);
    }
    offsets
}

pub(crate) fn offsets_list(
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
pub(crate) fn rewind(consumer: &StageConsumer, batch: &[(OwnedMessage, Instant)], stage: &str) {
    seek_each(consumer, &first_offsets(batch), stage);
}

/// Per partition, the offset of the batch's first record there.
pub(crate) fn first_offsets<'a>(
    batch: impl IntoIterator<Item = &'a (OwnedMessage, Instant)>,
) -> BTreeMap<(String, i32), i64> {
    let mut first: BTreeMap<(String, i32), i64> = BTreeMap::new();
    for (message, _) in batch {
        let offset = first
            .entry((message.topic().to_string(), message.partition()))
            .or_insert(i64::MAX);
        *offset = (*offset).min(message.offset());
    }
    first
}

/// Seek each partition still assigned to its offset in `offsets` — a local seek, no broker
/// call.
pub(crate) fn seek_each(
    consumer: &StageConsumer,
    offsets: &BTreeMap<(String, i32), i64>,
    stage: &str,
) {
    let owned = consumer.assignment().unwrap_or_default();
    for ((topic, partition), offset) in offsets {
        if owned.find_partition(topic, *partition).is_none() {
            continue;
        }
        if let Err(e) = consumer.seek(
            topic,
            *partition,
            Offset::Offset(*offset),
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
