//! The exactly-once loop (Kafka Streams' EOS v2 model, decision 0027): one transactional
//! producer per runner; a transaction stays open across fetched batches and commits every
//! `commit_interval` — or as soon as the input goes quiet — carrying every output, the state's
//! changelog and the consumed offsets of every partition read since the last commit. A failure
//! or a rebalance aborts it, the state goes back to what was committed, and every partition
//! goes back to its committed offset.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::Message;
use rdkafka::consumer::Consumer;
use tokio_util::sync::CancellationToken;

use crate::batch::{BatchContext, BatchFailure, finish_work, produce_batch};
use crate::error_log::ErrorLog;
use crate::kafka::TRANSACTION_TIMEOUT_MS;
use crate::metrics::StageLabel;
use crate::poison::Poisoned;
use crate::processor::AsyncProcessor;
use crate::retry::{backoff, sleep_or_stop};
use crate::runner::{
    BATCH, RunnerOptions, assigned_partitions, first_offsets, next_batch, next_offsets,
    offsets_list, rewind, seek_each, seek_to_committed,
};
use crate::stage_consumer::{RebalanceCounter, StageConsumer};
use crate::stuck::StuckWatch;
use crate::transaction::{TransactionError, Transactions};
use crate::{Runtime, RuntimeError};

/// The transaction being filled.
struct Open {
    started: tokio::time::Instant,
    /// The rebalance count it began in: a rebalance since makes its offsets someone else's.
    epoch: u64,
    /// Per partition, the offset after the last record processed in it.
    offsets: BTreeMap<(String, i32), i64>,
    /// Per partition, its first record in the transaction: where an abort goes back to (the
    /// committed offset, known without asking the broker).
    start: BTreeMap<(String, i32), i64>,
    /// (logical topic, key) of every output produced in it.
    produced: Vec<(String, String)>,
    /// When each of its records was received (latency).
    received: Vec<Instant>,
}

/// What the loop shares with its steps.
struct Loop<'a, P> {
    runtime: &'a Runtime,
    processor: &'a P,
    options: &'a RunnerOptions,
    consumer: &'a StageConsumer,
    rebalances: &'a RebalanceCounter,
    shutdown: &'a CancellationToken,
    watch: StuckWatch,
}

/// Run `processor` exactly once until `shutdown`: the open transaction is committed on the way
/// out, then the group is left.
pub(crate) async fn run_exactly_once<P: AsyncProcessor>(
    runtime: &Runtime,
    processor: Arc<P>,
    options: &RunnerOptions,
    (consumer, rebalances): (&StageConsumer, &RebalanceCounter),
    mut transactions: Transactions,
    shutdown: &CancellationToken,
) -> Result<(), RuntimeError> {
    let stateful = processor.state().is_some();
    // Well inside the broker's transaction timeout, whatever was configured.
    let interval = options
        .commit_interval
        .unwrap_or(runtime.commit_interval)
        .min(Duration::from_millis(u64::from(TRANSACTION_TIMEOUT_MS) / 4));
    let this = Loop {
        runtime,
        processor: &*processor,
        options,
        consumer,
        rebalances,
        shutdown,
        watch: StuckWatch::new(runtime, &options.stage),
    };
    let mut errors = ErrorLog::default();
    let mut poisoned = Poisoned::default();
    let mut failures = 0u32;
    let mut open: Option<Open> = None;
    loop {
        let epoch = rebalances.epoch();
        // With a transaction open, wait for more input until its interval is up, or a linger
        // of quiet: a burst fills one transaction, a lone record is not held for the interval.
        let until = open
            .as_ref()
            .map(|o| (o.started + interval).min(tokio::time::Instant::now() + options.linger));
        let Some(batch) = next_batch(consumer, options, &mut errors, shutdown, until).await else {
            break;
        };
        if rebalances.epoch() != epoch || open.as_ref().is_some_and(|o| o.epoch != epoch) {
            // Records fetched before the rebalance may be of partitions no longer ours, and the
            // open transaction's offsets too: abort, and go on from what the group committed.
            tracing::info!(stage = %options.stage, records = batch.len(), "the group rebalanced; the open transaction is aborted and every partition goes back to its committed offset");
            if open.take().is_some() {
                this.abort(&mut transactions, None).await;
            } else {
                seek_to_committed(consumer, &options.stage);
            }
            this.watch.progressed(None);
            continue;
        }
        if !batch.is_empty() {
            if let Some(store) = processor.state() {
                let needed = batch.iter().map(|(m, _)| m.partition()).collect();
                // A restore reads a changelog to its end, waiting out other transactions on
                // it: never inside an open transaction, which could time out meanwhile.
                if store.would_restore(epoch, &needed)
                    && let Some(current) = open.take()
                {
                    let mut back = first_offsets(&batch);
                    for (partition, first) in &current.start {
                        let at = back.entry(partition.clone()).or_insert(*first);
                        *at = (*at).min(*first);
                    }
                    match this
                        .settle(&mut transactions, current, &mut poisoned, &mut failures)
                        .await
                    {
                        Ok(()) => {}
                        Err(true) => break,
                        Err(false) => {
                            // Not committed: this batch goes back with the transaction's records.
                            seek_each(consumer, &back, &options.stage);
                            continue;
                        }
                    }
                }
                let assigned = assigned_partitions(consumer);
                match store
                    .prepare(runtime, epoch, &assigned, &needed, shutdown)
                    .await
                {
                    Ok(()) => {}
                    Err(RuntimeError::Stopped) => {
                        rewind(consumer, &batch, &options.stage);
                        break;
                    }
                    Err(e) => {
                        if let Some(current) = open.take() {
                            this.abort(&mut transactions, Some(&current.start)).await;
                        }
                        return Err(e);
                    }
                }
            }
            if open.is_none() {
                if let Err(e) = transactions.begin() {
                    let reason = e.to_string();
                    let _ = transactions.recover(&e, shutdown).await;
                    rewind(consumer, &batch, &options.stage);
                    failures += 1;
                    if this.failed(&reason, failures).await {
                        break;
                    }
                    continue;
                }
                open = Some(Open {
                    started: tokio::time::Instant::now(),
                    epoch,
                    offsets: BTreeMap::new(),
                    start: BTreeMap::new(),
                    produced: Vec::new(),
                    received: Vec::new(),
                });
            }
            if let Some(current) = open.as_mut() {
                for (partition, first) in first_offsets(&batch) {
                    let at = current.start.entry(partition).or_insert(first);
                    *at = (*at).min(first);
                }
            }
            let context = BatchContext {
                stage: &options.stage,
                shutdown,
                poisoned: &poisoned,
                watch: &this.watch,
                poison_inline: !stateful,
            };
            let produced = produce_batch(
                runtime,
                &*processor,
                transactions.producer(),
                &batch,
                &context,
            )
            .await;
            let Some(current) = open.as_mut() else {
                continue;
            };
            match produced {
                Ok(produced) => {
                    current.produced.extend(produced);
                    for ((topic, partition), next) in next_offsets(&batch) {
                        let at = current.offsets.entry((topic, partition)).or_insert(next);
                        *at = (*at).max(next);
                    }
                    current.received.extend(batch.iter().map(|(_, at)| *at));
                    if current.started.elapsed() < interval && !shutdown.is_cancelled() {
                        continue;
                    }
                }
                Err(failure) => {
                    let start = open.take().map(|o| o.start).unwrap_or_default();
                    this.abort(&mut transactions, Some(&start)).await;
                    if this
                        .failed_work(failure, &mut poisoned, &mut failures)
                        .await
                    {
                        break;
                    }
                    continue;
                }
            }
        }
        // The interval is up, or the input went quiet: commit what is open.
        let Some(current) = open.take() else {
            continue;
        };
        if let Err(true) = this
            .settle(&mut transactions, current, &mut poisoned, &mut failures)
            .await
        {
            break;
        }
    }
    // Stopping: what is open is finished and committed, so a clean stop repeats nothing.
    if let Some(current) = open.take() {
        if rebalances.epoch() == current.epoch {
            if let Err(BatchFailure::Produce(reason) | BatchFailure::Uncertain(reason)) =
                this.commit(&mut transactions, current).await
            {
                tracing::warn!(stage = %options.stage, %reason, "the open transaction did not commit on the way out; its records will be consumed again");
            }
        } else {
            this.abort(&mut transactions, None).await;
        }
    }
    transactions.abort_quietly().await;
    Ok(())
}

impl<P: AsyncProcessor> Loop<'_, P> {
    /// Commit `open` and account for the outcome: `Err(stopped)` when it did not commit.
    async fn settle(
        &self,
        transactions: &mut Transactions,
        open: Open,
        poisoned: &mut Poisoned,
        failures: &mut u32,
    ) -> Result<(), bool> {
        match self.commit(transactions, open).await {
            Ok(committed) => {
                *failures = 0;
                poisoned.committed(&committed);
                self.watch.progressed(None);
                Ok(())
            }
            Err(failure) => Err(self.failed_work(failure, poisoned, failures).await),
        }
    }

    /// Finish the open transaction's work (changelog, flush) and commit it with its offsets;
    /// returns the offsets committed. On failure the transaction is aborted (or its producer
    /// replaced) and the state and the consumer are back at what was committed.
    async fn commit(
        &self,
        transactions: &mut Transactions,
        open: Open,
    ) -> Result<BTreeMap<(String, i32), i64>, BatchFailure> {
        let stage = &self.options.stage;
        let mut produced = open.produced;
        match finish_work(
            self.runtime,
            self.processor,
            transactions.producer(),
            stage,
            &open.received,
        )
        .await
        {
            Ok(more) => produced.extend(more),
            Err(failure) => {
                self.abort(transactions, Some(&open.start)).await;
                return Err(failure);
            }
        }
        let offsets = offsets_list(&open.offsets);
        let group = self.consumer.group_metadata();
        let result = match (offsets, group) {
            _ if self.rebalances.epoch() != open.epoch => Err(TransactionError::Aborted(
                "the group rebalanced during the transaction".into(),
            )),
            (Ok(offsets), Some(group)) => transactions.commit(offsets, group).await,
            (Err(e), _) => Err(TransactionError::Aborted(e.to_string())),
            (_, None) => Err(TransactionError::Aborted("no group metadata yet".into())),
        };
        match result {
            Ok(()) => {
                if let Some(store) = self.processor.state() {
                    store.commit();
                }
                for (topic, key) in produced {
                    self.processor.produced(&topic, &key);
                }
                Ok(open.offsets)
            }
            Err(error @ TransactionError::Uncertain(_)) => {
                // It may have committed: what is in memory and where the consumer stands are
                // both unknown. End it first (a new producer completes or aborts it), then start
                // over from what the broker holds.
                let reason = error.to_string();
                let recovered = transactions.recover(&error, self.shutdown).await;
                if let Some(store) = self.processor.state() {
                    store.forget();
                }
                self.processor.batch_failed();
                seek_to_committed(self.consumer, stage);
                match recovered {
                    Ok(true) => Err(BatchFailure::Uncertain(reason)),
                    _ => Err(BatchFailure::Interrupted),
                }
            }
            Err(error) => {
                // Abort first: the group's view of the offsets waits on this transaction.
                let reason = error.to_string();
                let recovered = transactions.recover(&error, self.shutdown).await;
                self.rolled_back(Some(&open.start));
                match recovered {
                    Ok(true) => Err(BatchFailure::Produce(reason)),
                    _ => Err(BatchFailure::Interrupted),
                }
            }
        }
    }

    /// Abort the open transaction: nothing of it becomes visible; state and consumer go back
    /// to what was committed — to `start` (its first offsets), or, after a rebalance (`None`),
    /// to the offsets the group holds.
    async fn abort(
        &self,
        transactions: &mut Transactions,
        start: Option<&BTreeMap<(String, i32), i64>>,
    ) {
        let aborted = TransactionError::Aborted("the transaction was not finished".into());
        if !matches!(
            transactions.recover(&aborted, self.shutdown).await,
            Ok(true)
        ) {
            tracing::warn!(stage = %self.options.stage, "could not abort; the producer was replaced or the stage is stopping");
        }
        self.rolled_back(start);
    }

    /// Uncommitted work is gone: the state's changes and the processor's in-flight memory are
    /// dropped and every partition the transaction read is read again from its first offset
    /// there (what was committed; a local seek), or from the group's offsets (`None`).
    fn rolled_back(&self, start: Option<&BTreeMap<(String, i32), i64>>) {
        if let Some(store) = self.processor.state() {
            store.rollback();
        }
        self.processor.batch_failed();
        match start {
            Some(start) => seek_each(self.consumer, start, &self.options.stage),
            None => seek_to_committed(self.consumer, &self.options.stage),
        }
    }

    /// After an aborted transaction: mark a poison input, or count the failure and wait.
    /// `true` when stopped.
    async fn failed_work(
        &self,
        failure: BatchFailure,
        poisoned: &mut Poisoned,
        failures: &mut u32,
    ) -> bool {
        let stage = &self.options.stage;
        match failure {
            BatchFailure::Poison { source, reason } => {
                // Not a retry of the same work: it goes again with the input on its poison
                // path, each refusal of it one level further down (bounded).
                let (topic, partition, offset) = source.clone();
                let level = poisoned.mark(source, reason.clone());
                tracing::warn!(stage = %stage, %topic, partition, offset, %reason, ?level, "the producer refuses an output of this input; processing again with it dead-lettered");
                false
            }
            BatchFailure::Uncertain(reason) => {
                self.watch.failed(BATCH, &reason);
                tracing::warn!(stage = %stage, %reason, "transaction outcome unknown; going on from the committed offsets with state restored");
                false
            }
            BatchFailure::Produce(reason) => {
                *failures += 1;
                self.failed(&reason, *failures).await
            }
            BatchFailure::Interrupted => {
                tracing::warn!(stage = %stage, "stopped with a transaction unfinished; its records will be consumed again");
                true
            }
        }
    }

    /// A failed attempt: counted, watched, then a backoff. `true` when stopped meanwhile.
    async fn failed(&self, reason: &str, attempt: u32) -> bool {
        let stage = &self.options.stage;
        self.watch.failed(BATCH, reason);
        self.runtime
            .metrics
            .batch_retries
            .get_or_create(&StageLabel {
                stage: stage.clone(),
            })
            .inc();
        tracing::warn!(stage = %stage, %reason, attempt, "transaction not committed; consuming its records again");
        sleep_or_stop(backoff(attempt), self.shutdown).await
    }
}

/// The default commit interval of exactly-once stages (`--commit-interval-ms`).
pub const DEFAULT_COMMIT_INTERVAL: Duration = Duration::from_millis(50);
