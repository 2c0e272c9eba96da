//! The history role: one runner (one consumer) over every event topic, writing each batch's
//! events to the store in one write.

use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use switchyard_runtime::{
    AsyncProcessor, CancellationToken, Invalid, Origin, Output, RunnerOptions, Runtime, StageError,
    StageInput, names,
};
use switchyard_schemas::{
    CallbackResult, Codec, CodecError, DeliveryReport, DispatchOutcome, FinalReport, Rejection,
    ReportAck, RoutingDecision, Submission, ValidatedMessage,
};

use crate::HistoryStore;
use crate::event::{Event, HistoryRecord};

/// A record of any history topic, decoded with its topic's type, that makes its event once it
/// knows where it was read.
pub struct HistoryInput(Box<dyn FnOnce(Origin<'_>) -> Event + Send>);

impl std::fmt::Debug for HistoryInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HistoryInput")
    }
}

impl HistoryInput {
    async fn decode_as<T: HistoryRecord>(
        codec: &Codec,
        payload: &[u8],
    ) -> Result<Self, CodecError> {
        let record: T = codec.decode(payload).await?;
        Ok(HistoryInput(Box::new(move |origin| record.event(origin))))
    }

    /// The event of this record, read at `origin`.
    pub fn event(self, origin: Origin<'_>) -> Event {
        (self.0)(origin)
    }
}

impl StageInput for HistoryInput {
    fn decode<'a>(
        codec: &'a Codec,
        topic: &'a str,
        payload: &'a [u8],
    ) -> BoxFuture<'a, Result<Self, CodecError>> {
        Box::pin(async move {
            match topic {
                names::ACCEPTED => Self::decode_as::<Submission>(codec, payload).await,
                names::VALIDATED => Self::decode_as::<ValidatedMessage>(codec, payload).await,
                names::REJECTED => Self::decode_as::<Rejection>(codec, payload).await,
                names::ROUTED => Self::decode_as::<RoutingDecision>(codec, payload).await,
                names::DISPATCHED => Self::decode_as::<DispatchOutcome>(codec, payload).await,
                names::REPORTS => Self::decode_as::<DeliveryReport>(codec, payload).await,
                names::FINAL => Self::decode_as::<FinalReport>(codec, payload).await,
                names::CALLBACK_RESULTS => Self::decode_as::<CallbackResult>(codec, payload).await,
                names::REPORT_ACKS => Self::decode_as::<ReportAck>(codec, payload).await,
                other => Err(CodecError::Decode(format!(
                    "{other} is not a history topic"
                ))),
            }
        })
    }
}

/// Writes records to the history: events of a batch are buffered and written when the runner
/// flushes, before it commits the batch's offsets.
#[derive(Debug)]
pub struct HistorySink {
    store: HistoryStore,
    pending: Mutex<Vec<Event>>,
}

impl HistorySink {
    pub fn new(store: HistoryStore) -> Self {
        HistorySink {
            store,
            pending: Mutex::default(),
        }
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, Vec<Event>> {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl AsyncProcessor for HistorySink {
    type Input = HistoryInput;

    fn process<'a>(
        &'a self,
        input: HistoryInput,
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

/// The history's one runner: a consumer (group `switchyard.history`) over every topic of
/// `HISTORY_TOPICS`. A store is outside Kafka: at least once, with idempotent writes keyed by
/// event id.
fn spawn(
    runtime: &Runtime,
    store: &HistoryStore,
    shutdown: &CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let (runtime, shutdown) = (runtime.clone(), shutdown.clone());
    let sink = Arc::new(HistorySink::new(store.clone()));
    let options = RunnerOptions::new("history", &HISTORY_TOPICS).at_least_once();
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
        spawn(&runtime, &store, &shutdown),
    ];
    for task in tasks {
        let _ = task.await;
    }
}
