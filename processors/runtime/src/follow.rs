//! Following a topic from its beginning: the loop tables, key sets and the schema registry
//! share. Each record goes to the caller's `apply`; `ready` turns true once every partition
//! reported its end (fetch-based, exact even where watermarks are not — decision 0001).

use std::collections::HashSet;
use std::future::Future;

use rdkafka::error::KafkaError;
use rdkafka::message::OwnedMessage;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::error_log::ErrorLog;
use crate::kafka::{Reader, read_from_beginning};
use crate::{Runtime, RuntimeError};

/// Follow the logical `topic` from its beginning in the background; returns the receiver that
/// turns true once caught up.
pub fn spawn_following<F, Fut>(
    runtime: &Runtime,
    reader_name: &str,
    topic: &str,
    shutdown: CancellationToken,
    apply: F,
) -> Result<watch::Receiver<bool>, RuntimeError>
where
    F: FnMut(OwnedMessage) -> Fut + Send + 'static,
    Fut: Future<Output = bool> + Send + 'static,
{
    let consumer = runtime.kafka.reader(reader_name)?;
    let partitions = read_from_beginning(&consumer, &runtime.kafka.topic(topic))?;
    let (ready_tx, ready) = watch::channel(false);
    tokio::spawn(follow(
        consumer,
        topic.to_string(),
        partitions,
        Some(ready_tx),
        shutdown,
        apply,
    ));
    Ok(ready)
}

/// Read with `consumer` (already assigned to `partitions` of `topic`) until `shutdown` or until
/// `apply` returns false.
pub async fn follow<F, Fut>(
    consumer: Reader,
    topic: String,
    mut not_at_end: HashSet<i32>,
    ready: Option<watch::Sender<bool>>,
    shutdown: CancellationToken,
    mut apply: F,
) where
    F: FnMut(OwnedMessage) -> Fut,
    Fut: Future<Output = bool>,
{
    let mut errors = ErrorLog::default();
    loop {
        let received = tokio::select! {
            _ = shutdown.cancelled() => return,
            received = consumer.recv() => received,
        };
        match received {
            Ok(message) => {
                if !apply(message.detach()).await {
                    return;
                }
            }
            Err(KafkaError::PartitionEOF(partition)) => {
                if not_at_end.remove(&partition) && not_at_end.is_empty() {
                    tracing::debug!(%topic, "caught up");
                    if let Some(ready) = &ready {
                        let _ = ready.send(true);
                    }
                }
            }
            Err(e) => {
                // An error event, not a busy loop: librdkafka reconnects with its own backoff.
                if let Some(left_out) = errors.admit(std::time::Instant::now()) {
                    tracing::warn!(%topic, error = %e, left_out, "consume error while following");
                }
            }
        }
    }
}
