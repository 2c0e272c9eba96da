//! A few transactional producers a process shares for all-or-nothing publishes (the ingress's
//! batches): each publish takes one, runs begin → send → commit, and aborts on failure. A
//! producer is created on first use and replaced when it breaks.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::kafka::Producer;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use crate::Runtime;
use crate::publish::PublishError;
use crate::transaction::{TransactionError, Transactions};

/// How many atomic publishes may run at once in one process.
const SLOTS: usize = 4;

/// The shared transactional producers.
#[derive(Debug, Default)]
pub(crate) struct AtomicPool {
    slots: [Mutex<Option<Transactions>>; SLOTS],
    next: AtomicUsize,
}

impl AtomicPool {
    /// Run `send` inside a transaction on one of the pool's producers; commit if it succeeds,
    /// abort (nothing becomes visible) if it fails.
    pub async fn run<F, Fut, T>(&self, runtime: &Runtime, send: F) -> Result<T, PublishError>
    where
        F: FnOnce(Producer) -> Fut,
        Fut: Future<Output = Result<T, PublishError>>,
    {
        let index = self.next.fetch_add(1, Ordering::Relaxed) % SLOTS;
        let mut slot = self.slots[index].lock().await;
        if slot.is_none() {
            let id = format!("switchyard.publish.{}.{index}", runtime.instance_id);
            // Never waits forever: a publish has a caller waiting for an answer.
            let stop = CancellationToken::new();
            let started = tokio::time::timeout(
                std::time::Duration::from_secs(30),
                Transactions::start(&runtime.kafka, &id, &stop),
            )
            .await;
            stop.cancel();
            *slot = match started {
                Ok(Ok(Some(transactions))) => Some(transactions),
                Ok(Err(e)) => return Err(unavailable(e.to_string())),
                _ => return Err(unavailable("transactions not ready".into())),
            };
        }
        let Some(transactions) = slot.as_mut() else {
            return Err(unavailable("no transactional producer".into()));
        };
        if let Err(e) = transactions.begin() {
            *slot = None;
            return Err(unavailable(e.to_string()));
        }
        let sent = send(transactions.producer().clone()).await;
        let outcome = match sent {
            Ok(value) => transactions
                .commit_records()
                .await
                .map(|()| value)
                .map_err(|e| (e, None)),
            Err(e) => Err((TransactionError::Aborted(e.to_string()), Some(e))),
        };
        match outcome {
            Ok(value) => Ok(value),
            Err((error, original)) => {
                let stop = CancellationToken::new();
                stop.cancel();
                // Abort; a producer that cannot abort is dropped and made anew next time.
                if !matches!(transactions.recover(&error, &stop).await, Ok(true)) {
                    *slot = None;
                }
                Err(original.unwrap_or_else(|| unavailable(error.to_string())))
            }
        }
    }
}

fn unavailable(reason: String) -> PublishError {
    PublishError::Unavailable {
        topic: "(transaction)".into(),
        reason,
    }
}
