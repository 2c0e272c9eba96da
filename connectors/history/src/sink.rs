//! The history role: one runner per event topic, each writing its records to the store.

use std::marker::PhantomData;
use std::sync::Arc;

use switchyard_runtime::{
    CancellationToken, Origin, Output, Processor, RunnerOptions, Runtime, StageError,
};
use switchyard_schemas::{
    CallbackAttempt, DeliveryReport, DispatchOutcome, FinalReport, Rejection, RoutingDecision,
    Submission, ValidatedMessage,
};

use crate::SqliteHistory;
use crate::event::HistoryRecord;

/// Writes records of one type to the history.
#[derive(Debug)]
pub struct HistorySink<T> {
    store: SqliteHistory,
    _record: PhantomData<fn() -> T>,
}

impl<T: HistoryRecord> Processor for HistorySink<T> {
    type Input = T;

    fn process(&self, input: T, origin: Origin<'_>) -> Result<Vec<Output>, StageError> {
        self.store
            .record(&input.event(origin))
            .map_err(|e| StageError::Unavailable(e.to_string()))?;
        Ok(Vec::new())
    }
}

fn spawn<T: HistoryRecord>(
    runtime: &Runtime,
    store: &SqliteHistory,
    topic: &str,
    shutdown: &CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let (runtime, shutdown) = (runtime.clone(), shutdown.clone());
    let sink = Arc::new(HistorySink::<T> {
        store: store.clone(),
        _record: PhantomData,
    });
    let options = RunnerOptions::new(&format!("history.{topic}"), &[topic]);
    tokio::spawn(async move {
        if let Err(e) = switchyard_runtime::run(&runtime, sink, options, shutdown).await {
            tracing::error!(error = %e, "history runner stopped");
        }
    })
}

/// Run the history role until `shutdown`.
pub async fn run_history(runtime: Runtime, store: SqliteHistory, shutdown: CancellationToken) {
    let tasks = vec![
        spawn::<Submission>(&runtime, &store, "messages.accepted", &shutdown),
        spawn::<ValidatedMessage>(&runtime, &store, "messages.validated", &shutdown),
        spawn::<Rejection>(&runtime, &store, "messages.rejected", &shutdown),
        spawn::<RoutingDecision>(&runtime, &store, "messages.routed", &shutdown),
        spawn::<DispatchOutcome>(&runtime, &store, "messages.dispatched", &shutdown),
        spawn::<DeliveryReport>(&runtime, &store, "messages.reports", &shutdown),
        spawn::<FinalReport>(&runtime, &store, "reports.final", &shutdown),
        spawn::<CallbackAttempt>(&runtime, &store, "callbacks.retry.1", &shutdown),
    ];
    for task in tasks {
        let _ = task.await;
    }
}
