//! The history role: one runner per event topic, each writing its records to the store.

use std::marker::PhantomData;
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use switchyard_runtime::{
    AsyncProcessor, CancellationToken, Invalid, Origin, Output, RunnerOptions, Runtime, StageError,
    names,
};
use switchyard_schemas::{
    CallbackResult, DeliveryReport, DispatchOutcome, FinalReport, Rejection, ReportAck,
    RoutingDecision, Submission, ValidatedMessage,
};

use crate::HistoryStore;
use crate::event::{Event, HistoryRecord};

/// Writes records of one type to the history: events of a batch are buffered and written when
/// the runner flushes, before it commits the batch's offsets.
#[derive(Debug)]
pub struct HistorySink<T> {
    store: HistoryStore,
    pending: Mutex<Vec<Event>>,
    _record: PhantomData<fn() -> T>,
}

impl<T> HistorySink<T> {
    pub fn new(store: HistoryStore) -> Self {
        HistorySink {
            store,
            pending: Mutex::default(),
            _record: PhantomData,
        }
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, Vec<Event>> {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl<T: HistoryRecord> AsyncProcessor for HistorySink<T> {
    type Input = T;

    fn process<'a>(
        &'a self,
        input: T,
        origin: Origin<'a>,
    ) -> BoxFuture<'a, Result<Vec<Output>, StageError>> {
        let event = input.event(origin);
        // A record naming no message cannot be kept (CQL refuses an empty key): written, it
        // would fail its batch forever; it goes to the dead-letter topic instead.
        if event.message_id.is_empty() {
            let invalid = Invalid::new(format!("{} record without a message id", event.kind));
            return Box::pin(std::future::ready(Err(invalid.into())));
        }
        self.pending().push(event);
        Box::pin(std::future::ready(Ok(Vec::new())))
    }

    fn batch_failed(&self) {
        self.pending().clear();
    }

    fn flush(&self) -> BoxFuture<'_, Result<(), StageError>> {
        let events = std::mem::take(&mut *self.pending());
        Box::pin(async move {
            // Any store error makes the runner write the batch again (writes are idempotent).
            self.store.record_all(&events).await.map_err(|e| {
                if !e.is_retriable() {
                    tracing::error!(error = %e, "history store refuses writes; retrying");
                }
                StageError::Unavailable(e.to_string())
            })
        })
    }
}

fn spawn<T: HistoryRecord>(
    runtime: &Runtime,
    store: &HistoryStore,
    topic: &str,
    shutdown: &CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let (runtime, shutdown) = (runtime.clone(), shutdown.clone());
    let sink = Arc::new(HistorySink::<T>::new(store.clone()));
    // A store is outside Kafka: at least once, with idempotent writes keyed by event id.
    let options = RunnerOptions::new(&format!("history.{topic}"), &[topic]).at_least_once();
    tokio::spawn(async move {
        if let Err(e) = switchyard_runtime::run(&runtime, sink, options, shutdown).await {
            tracing::error!(error = %e, "history runner stopped");
        }
    })
}

/// The topics the history stage consumes (the input of `history rebuild` too).
pub const HISTORY_TOPICS: [&str; 9] = [
    names::ACCEPTED,
    names::VALIDATED,
    names::REJECTED,
    names::ROUTED,
    names::DISPATCHED,
    names::REPORTS,
    names::FINAL,
    names::CALLBACK_RESULTS,
    names::REPORT_ACKS,
];

/// How often expired messages are deleted (SQLite; CQL rows expire by their TTL).
const PURGE_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// Delete expired messages every `PURGE_EVERY` until `shutdown` (the first run at start).
async fn purge_periodically(store: HistoryStore, shutdown: CancellationToken) {
    if matches!(store, HistoryStore::Cql(_)) {
        return;
    }
    let mut every = tokio::time::interval(PURGE_EVERY);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = every.tick() => {}
        }
        match store.purge_expired(switchyard_schemas::now_millis()).await {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(deleted, "expired history messages deleted"),
            Err(e) => tracing::warn!(error = %e, "expired history messages not deleted"),
        }
    }
}

/// Run the history role until `shutdown`.
pub async fn run_history(runtime: Runtime, store: HistoryStore, shutdown: CancellationToken) {
    let tasks = vec![
        tokio::spawn(purge_periodically(store.clone(), shutdown.clone())),
        spawn::<Submission>(&runtime, &store, names::ACCEPTED, &shutdown),
        spawn::<ValidatedMessage>(&runtime, &store, names::VALIDATED, &shutdown),
        spawn::<Rejection>(&runtime, &store, names::REJECTED, &shutdown),
        spawn::<RoutingDecision>(&runtime, &store, names::ROUTED, &shutdown),
        spawn::<DispatchOutcome>(&runtime, &store, names::DISPATCHED, &shutdown),
        spawn::<DeliveryReport>(&runtime, &store, names::REPORTS, &shutdown),
        spawn::<FinalReport>(&runtime, &store, names::FINAL, &shutdown),
        spawn::<CallbackResult>(&runtime, &store, names::CALLBACK_RESULTS, &shutdown),
        spawn::<ReportAck>(&runtime, &store, names::REPORT_ACKS, &shutdown),
    ];
    for task in tasks {
        let _ = task.await;
    }
}
