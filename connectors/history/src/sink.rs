//! The history role: one runner per event topic, each writing its records to the store.

use std::marker::PhantomData;
use std::sync::{Arc, Mutex};

use switchyard_runtime::{
    CancellationToken, Origin, Output, Processor, RunnerOptions, Runtime, StageError, names,
};
use switchyard_schemas::{
    CallbackResult, DeliveryReport, DispatchOutcome, FinalReport, Rejection, ReportAck,
    RoutingDecision, Submission, ValidatedMessage,
};

use crate::SqliteHistory;
use crate::event::{Event, HistoryRecord};

/// Writes records of one type to the history: events of a batch are buffered and written in
/// one transaction when the runner flushes, before it commits the batch's offsets.
#[derive(Debug)]
pub struct HistorySink<T> {
    store: SqliteHistory,
    pending: Mutex<Vec<Event>>,
    _record: PhantomData<fn() -> T>,
}

impl<T> HistorySink<T> {
    pub fn new(store: SqliteHistory) -> Self {
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

impl<T: HistoryRecord> Processor for HistorySink<T> {
    type Input = T;

    fn process(&self, input: T, origin: Origin<'_>) -> Result<Vec<Output>, StageError> {
        self.pending().push(input.event(origin));
        Ok(Vec::new())
    }

    fn batch_failed(&self) {
        self.pending().clear();
    }

    fn flush(&self) -> Result<(), StageError> {
        let events = std::mem::take(&mut *self.pending());
        self.store
            .record_all(&events)
            .map_err(|e| StageError::Unavailable(e.to_string()))
    }
}

fn spawn<T: HistoryRecord>(
    runtime: &Runtime,
    store: &SqliteHistory,
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

/// Run the history role until `shutdown`.
pub async fn run_history(runtime: Runtime, store: SqliteHistory, shutdown: CancellationToken) {
    let tasks = vec![
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
