//! Following a topic from its beginning: each record goes to the caller's `apply`; `ready`
//! turns true once every partition reported its end (fetch-based, exact even where watermarks
//! are not — decision 0001). Tables and key sets follow through the runtime's shared reader
//! (`spawn_following`); the schema registry runs the same loop on a reader of its own (`follow`).

use std::collections::HashSet;
use std::future::Future;

use rdkafka::error::KafkaError;
use rdkafka::message::OwnedMessage;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::error_log::ErrorLog;
use crate::followers::{Fed, Feed};
use crate::kafka::Reader;
use crate::{Runtime, RuntimeError};

/// Follow the logical `topic` from its beginning in the background, with the runtime's shared
/// reader, until `shutdown` or until `apply` returns false; returns the receiver that turns
/// true once caught up (every partition of this topic read to its end).
pub async fn spawn_following<F, Fut>(
    runtime: &Runtime,
    topic: &str,
    shutdown: CancellationToken,
    apply: F,
) -> Result<watch::Receiver<bool>, RuntimeError>
where
    F: FnMut(OwnedMessage) -> Fut + Send + 'static,
    Fut: Future<Output = bool> + Send + 'static,
{
    let feed = runtime
        .followers
        .subscribe(&runtime.kafka, &runtime.kafka.topic(topic))
        .await?;
    let (ready_tx, ready) = watch::channel(false);
    tokio::spawn(follow_feed(
        feed,
        topic.to_string(),
        ready_tx,
        shutdown,
        apply,
    ));
    Ok(ready)
}

/// Apply what `feed` brings until `shutdown` or until `apply` returns false; leaving drops the
/// feed (the last follower of a reader closes it).
async fn follow_feed<F, Fut>(
    mut feed: Feed,
    topic: String,
    ready: watch::Sender<bool>,
    shutdown: CancellationToken,
    mut apply: F,
) where
    F: FnMut(OwnedMessage) -> Fut,
    Fut: Future<Output = bool>,
{
    let mut not_at_end = feed.partitions.clone();
    loop {
        let fed = tokio::select! {
            _ = shutdown.cancelled() => return,
            fed = feed.recv() => fed,
        };
        match fed {
            Some(Fed::Record(message)) => {
                if !apply(message).await {
                    return;
                }
            }
            Some(Fed::End(partition)) => {
                if not_at_end.remove(&partition) && not_at_end.is_empty() {
                    tracing::debug!(%topic, "caught up");
                    let _ = ready.send(true);
                }
            }
            None => {
                tracing::error!(%topic, "the table reader stopped feeding this table");
                return;
            }
        }
    }
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
