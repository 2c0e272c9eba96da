//! The runner for stages that call the outside world (webhooks, carriers): at least once, with
//! records finishing out of order. One slow call holds back only the commit of its own
//! partition, never the records behind it, so one customer's dead endpoint cannot stall the
//! others. With a delay (the callback retry tiers: one per topic, beside the undelayed
//! `reports.final` in the same runner) a record runs only once its timestamp plus its topic's
//! delay has passed: its topic-partition is paused until then (the record waiting at its head
//! is kept, uncommitted, and the partition rewound past it), and nothing sleeps holding
//! records.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use rdkafka::Message;
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::message::OwnedMessage;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use switchyard_schemas::now_millis;
use tokio_util::sync::CancellationToken;

use crate::batch::{BatchContext, BatchFailure, Pending, await_deliveries, enqueue, outputs_of};
use crate::delay_gate::{DelayGate, Gate, due_at_of};
use crate::error_log::ErrorLog;
use crate::metrics::StageLabel;
use crate::poison::Poisoned;
use crate::processor::AsyncProcessor;
use crate::retry::{backoff, sleep_or_stop};
use crate::runner::{RunnerOptions, commit};
use crate::stage_consumer::StageConsumer;
use crate::stuck::StuckWatch;
use crate::watermark::{Partition, Watermarks};
use crate::{Runtime, RuntimeError};

/// How often finished offsets are committed.
const COMMIT_EVERY: Duration = Duration::from_millis(100);

/// Run `processor` until `shutdown`: up to `options.max_batch` records in flight, each
/// committed once it and every record before it on its partition are done. On shutdown the
/// records in flight are finished (or left uncommitted, to be consumed again).
pub async fn run_unordered<P: AsyncProcessor>(
    runtime: &Runtime,
    processor: Arc<P>,
    options: RunnerOptions,
    shutdown: CancellationToken,
) -> Result<(), RuntimeError> {
    let mut overrides: Vec<(&str, String)> = fetch_wait_ms(&options)
        .map(|wait| wait.min(u128::from(runtime.kafka.fetch_wait_max_ms)))
        .map(|wait| vec![("fetch.wait.max.ms", wait.to_string())])
        .unwrap_or_default();
    // The reset after a rebalance assumes every partition was revoked and assigned anew from
    // its committed offset (eager rebalancing), whatever the operator's overrides say.
    overrides.push(("partition.assignment.strategy", "range,roundrobin".into()));
    let (consumer, rebalances) = runtime
        .kafka
        .stage_consumer_with(&options.group_id, &overrides)?;
    let topics: Vec<String> = options
        .topics
        .iter()
        .map(|t| runtime.kafka.topic(t))
        .collect();
    let topic_refs: Vec<&str> = topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topic_refs)?;
    let producer = runtime.producer()?;
    let millis = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    let delay_ms = options.delay.map(millis);
    let mut gate = DelayGate::new(delay_ms, options.held_per_partition);
    // The gate sees topics by their names on the broker.
    for (topic, delay) in &options.topic_delays {
        gate = gate.with_topic_delay(&runtime.kafka.topic(topic), millis(*delay));
    }
    let topic_delays_ms: BTreeMap<&str, i64> = options
        .topic_delays
        .iter()
        .map(|(topic, delay)| (topic.as_str(), millis(*delay)))
        .collect();
    tracing::info!(stage = %options.stage, topics = ?topics, group = %options.group_id, delay_ms, topic_delays_ms = ?topic_delays_ms, "stage started (unordered, at least once)");

    // Records not yet due (uncommitted: after a crash or a rebalance they are consumed again).
    let mut held: BTreeMap<(Partition, i64), OwnedMessage> = BTreeMap::new();
    let mut marks = Watermarks::default();
    let mut errors = ErrorLog::default();
    let mut epoch = rebalances.epoch();
    let stage = options.stage.as_str();
    let watch = StuckWatch::new(runtime, stage);
    let mut in_flight = FuturesUnordered::new();
    let mut commit_tick = tokio::time::interval(COMMIT_EVERY);
    commit_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Eager rebalancing: every partition was revoked and assigned anew from its committed
    // offset, unpaused (`stage_consumer.rs`). What was in flight or held is consumed again.
    let after_rebalance = |epoch: &mut u64,
                           marks: &mut Watermarks,
                           held: &mut BTreeMap<(Partition, i64), OwnedMessage>,
                           gate: &mut DelayGate| {
        if rebalances.epoch() != *epoch {
            *epoch = rebalances.epoch();
            // What was failing may be another member's now; it says so itself if it is.
            watch.progressed(None);
            marks.reset();
            held.clear();
            gate.clear();
        }
    };
    loop {
        after_rebalance(&mut epoch, &mut marks, &mut held, &mut gate);
        let wake = gate.next_wake().map(|at| {
            let wait = Duration::from_millis((at - now_millis()).max(0) as u64);
            tokio::time::Instant::now() + wait
        });
        let room = in_flight.len() < options.max_batch.max(1);
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            Some((partition, offset)) = in_flight.next(), if !in_flight.is_empty() => {
                marks.finish(&partition, offset);
            }
            _ = sleep_until_some(wake), if wake.is_some() => {
                after_rebalance(&mut epoch, &mut marks, &mut held, &mut gate);
                let (due, resumed) = gate.wake(now_millis());
                for key in &due {
                    // Started (in the watermarks) when it was held.
                    if let Some(message) = held.remove(key) {
                        in_flight.push(handle(runtime, &*processor, &producer, (stage, &watch), message, &shutdown));
                    }
                }
                resume(&consumer, &resumed, stage);
            }
            _ = commit_tick.tick() => {
                commit_owned(&consumer, marks.to_commit(), CommitMode::Async, stage);
            }
            received = consumer.recv(), if room => {
                let message = match received {
                    Ok(message) => message.detach(),
                    Err(e) => {
                        if let Some(left_out) = errors.admit(Instant::now()) {
                            tracing::warn!(stage, error = %e, left_out, "consume error");
                        }
                        continue;
                    }
                };
                // A rebalance happens inside `recv`: judge this record by the new assignment.
                after_rebalance(&mut epoch, &mut marks, &mut held, &mut gate);
                let partition = (message.topic().to_string(), message.partition());
                let due_at = due_at_of(message.headers());
                let offset = message.offset();
                match gate.admit(&partition, offset, due_at, message.timestamp().to_millis(), now_millis()) {
                    Gate::Due => {
                        marks.start(&partition, offset);
                        in_flight.push(handle(runtime, &*processor, &producer, (stage, &watch), message, &shutdown));
                    }
                    Gate::Hold { until, pause } => {
                        tracing::trace!(stage, topic = %partition.0, partition = partition.1, offset, until, pause, "not due; held");
                        marks.start(&partition, offset);
                        if pause {
                            pause_at(&consumer, &partition, offset + 1, stage);
                        }
                        held.insert((partition, offset), message);
                    }
                    Gate::Skip => {}
                }
            }
        }
    }
    // Finish what is in flight (a stop interrupts only records waiting on a retry).
    while let Some((partition, offset)) = in_flight.next().await {
        marks.finish(&partition, offset);
    }
    commit_owned(&consumer, marks.to_commit(), CommitMode::Sync, stage);
    consumer.unsubscribe();
    tracing::info!(stage, "stage stopped");
    Ok(())
}

/// The `fetch.wait.max.ms` of a runner reading delayed topics (never more than the runtime's
/// stage wait); `None` (the runtime's) when no topic is delayed. Data wakes a waiting fetch, but
/// a paused partition resumed while a fetch is in flight is fetched only when that fetch
/// returns: the wait is how late a held record's successors may start. Delayed topics keep it
/// to a twentieth of their shortest delay (25 to 500 ms); topics whose records each carry their
/// own due time (held, paced messages, receipt deadlines) to 100 ms. An undelayed topic beside
/// them (the callback role: `reports.final` with the retry tiers) changes nothing: its records
/// wake the fetch.
fn fetch_wait_ms(options: &RunnerOptions) -> Option<u128> {
    options
        .topics
        .iter()
        .filter_map(|topic| options.delay_of(topic))
        .min()
        .map(|shortest| {
            if shortest.is_zero() {
                100
            } else {
                (shortest.as_millis() / 20).clamp(25, 500)
            }
        })
}

/// The text of a failed attempt.
fn failure_reason(failure: BatchFailure) -> String {
    match failure {
        BatchFailure::Produce(reason)
        | BatchFailure::Uncertain(reason)
        | BatchFailure::Poison { reason, .. } => reason,
        BatchFailure::Interrupted => "stopped".to_string(),
    }
}

async fn sleep_until_some(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Process one record and produce its outputs; a failed produce is retried (the outputs again,
/// not the processing: a webhook is not called twice for it). An output the broker can never
/// take puts the record on its poison path instead (`poison.rs`). Returns the record's
/// position once done; a record interrupted by shutdown returns offset -1, so it stays
/// unfinished and uncommitted.
async fn handle<P: AsyncProcessor>(
    runtime: &Runtime,
    processor: &P,
    producer: &crate::kafka::Producer,
    (stage, watch): (&str, &StuckWatch),
    message: OwnedMessage,
    shutdown: &CancellationToken,
) -> (Partition, i64) {
    let partition = (message.topic().to_string(), message.partition());
    let offset = message.offset();
    let received = Instant::now();
    let unfinished = (partition.clone(), -1);
    let item = crate::batch::record_item(&message);
    let mut poisoned = Poisoned::default();
    let mut records = None;
    // Each output is produced until acknowledged; one that was acknowledged is not produced
    // again when another failed (a second retry record would mean a second webhook).
    let mut acknowledged = std::collections::BTreeSet::new();
    let mut tries = 0;
    loop {
        let context = BatchContext {
            stage,
            shutdown,
            poisoned: &poisoned,
            watch,
            poison_inline: true,
        };
        let all = match &records {
            Some(all) => all,
            None => match outputs_of(runtime, processor, &message, &context).await {
                Ok(made) => records.insert(made),
                Err(_) => return unfinished,
            },
        };
        let mut failed = 0;
        let mut reason = String::new();
        let mut poison = None;
        // Hand every output not yet acknowledged to the producer first, then wait for each.
        let mut sent = Vec::with_capacity(all.len());
        for (index, record) in all.iter().enumerate() {
            if acknowledged.contains(&index) {
                continue;
            }
            match enqueue(producer, record).await {
                Ok(delivery) => sent.push((index, record, delivery)),
                Err(e) => match e.into_failure(record) {
                    BatchFailure::Poison { source, reason } => poison = Some((source, reason)),
                    other => {
                        failed += 1;
                        reason = failure_reason(other);
                    }
                },
            }
        }
        for (index, record, delivery) in sent {
            let one = vec![Pending {
                topic: record.topic.clone(),
                key: record.key.clone(),
                dead_letter: record.dead_letter,
                delivery,
            }];
            match await_deliveries(runtime, stage, one).await {
                Ok(produced) => {
                    acknowledged.insert(index);
                    for (topic, key) in produced {
                        processor.produced(&topic, &key);
                    }
                }
                Err(BatchFailure::Interrupted) => return unfinished,
                Err(other) => {
                    failed += 1;
                    reason = failure_reason(other);
                }
            }
        }
        if let Some((source, reason)) = poison {
            // The record's poison path replaces what is left of its outputs (those already
            // acknowledged stand).
            let level = poisoned.mark(source, reason.clone());
            tracing::warn!(stage, offset, %reason, ?level, "the broker can never take an output of this record; dead-lettering it");
            // At `Skip` the poison path makes nothing (it logs and counts the record).
            records = None;
            acknowledged.clear();
            continue;
        }
        if failed == 0 {
            break;
        }
        tries += 1;
        watch.failed(&item, &reason);
        tracing::warn!(stage, %reason, tries, offset, left = failed, "outputs not acknowledged; producing those again");
        if sleep_or_stop(backoff(tries), shutdown).await {
            return unfinished;
        }
    }
    watch.progressed(Some(&item));
    runtime
        .metrics
        .processing_latency
        .get_or_create(&StageLabel {
            stage: stage.to_string(),
        })
        .observe(received.elapsed().as_secs_f64());
    (partition, offset)
}

/// Pause a partition and rewind it to `offset` (just past the held head record), so it is
/// fetched from there on resume (records fetched ahead of the pause are discarded by the seek).
fn pause_at(consumer: &StageConsumer, partition: &Partition, offset: i64, stage: &str) {
    let mut list = TopicPartitionList::new();
    list.add_partition(&partition.0, partition.1);
    if let Err(e) = consumer.pause(&list) {
        tracing::warn!(stage, topic = %partition.0, partition = partition.1, error = %e, "cannot pause");
    }
    if let Err(e) = consumer.seek(
        &partition.0,
        partition.1,
        Offset::Offset(offset),
        Duration::ZERO,
    ) {
        tracing::warn!(stage, topic = %partition.0, partition = partition.1, error = %e, "cannot rewind a paused partition");
    }
}

/// Resume partitions (librdkafka resumes any partition it knows, assigned or not).
fn resume(consumer: &StageConsumer, partitions: &[Partition], stage: &str) {
    if partitions.is_empty() {
        return;
    }
    let mut list = TopicPartitionList::new();
    for (topic, partition) in partitions {
        list.add_partition(topic, *partition);
    }
    if let Err(e) = consumer.resume(&list) {
        tracing::warn!(stage, error = %e, "cannot resume");
    }
}

/// Commit the offsets of partitions still assigned (a revoked partition's new owner must not
/// see its offset moved).
fn commit_owned(
    consumer: &StageConsumer,
    mut offsets: BTreeMap<Partition, i64>,
    mode: CommitMode,
    stage: &str,
) {
    let owned = consumer.assignment().unwrap_or_default();
    offsets.retain(|(topic, partition), _| owned.find_partition(topic, *partition).is_some());
    commit(consumer, &offsets, mode, stage);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fetch_wait_follows_the_shortest_delay() {
        let tier = |n: u32| format!("callbacks.retry.{n}");
        let one = RunnerOptions::new("t", &["callbacks.retry.1"]).delayed(Duration::from_secs(60));
        assert_eq!(fetch_wait_ms(&one), Some(500));
        let short = RunnerOptions::new("t", &["a"]).delayed(Duration::from_millis(1_000));
        assert_eq!(fetch_wait_ms(&short), Some(50));
        let due = RunnerOptions::new("t", &["messages.held"]).due_per_record(10);
        assert_eq!(fetch_wait_ms(&due), Some(100));
        assert_eq!(fetch_wait_ms(&RunnerOptions::new("t", &["a"])), None);
        // Every topic delayed, each its own: the shortest decides.
        let tiers = RunnerOptions::new("t", &[&tier(1), &tier(2)])
            .delayed_topic(&tier(1), Duration::from_millis(2_000))
            .delayed_topic(&tier(2), Duration::from_millis(6_000));
        assert_eq!(fetch_wait_ms(&tiers), Some(100));
        // The callback role: `reports.final` undelayed beside the tiers changes nothing.
        let mixed = RunnerOptions::new("t", &["reports.final", &tier(1)])
            .delayed_topic(&tier(1), Duration::from_secs(2));
        assert_eq!(fetch_wait_ms(&mixed), Some(100));
        assert_eq!(mixed.delay_of(&tier(1)), Some(Duration::from_secs(2)));
        assert_eq!(mixed.delay_of("reports.final"), None);
    }
}
