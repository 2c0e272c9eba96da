//! `HistoryStore`: the one interface the ingress, the history stage and the tools use, over
//! the engine the URL names (decision 0016). Async: SQLite calls run on the blocking pool.

use std::time::Duration;

use switchyard_runtime::CancellationToken;

use crate::event::Event;
use crate::pull::{FailureCount, ReportPage};
use crate::search::{MessagePage, MessageQuery, SenderStats};
use crate::{CqlHistory, HistoryError, MessageView, Retention, SqliteHistory, StoreUrl};

/// A history store: SQLite or CQL. Cheap to clone.
#[derive(Debug, Clone)]
pub enum HistoryStore {
    Sqlite(SqliteHistory),
    Cql(CqlHistory),
}

/// Run a SQLite call on the blocking pool.
async fn blocking<T: Send + 'static>(
    store: &SqliteHistory,
    call: impl FnOnce(&SqliteHistory) -> Result<T, HistoryError> + Send + 'static,
) -> Result<T, HistoryError> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || call(&store))
        .await
        .map_err(|e| HistoryError::Unavailable(format!("history call did not finish: {e}")))?
}

impl HistoryStore {
    /// Open the store `url` names (creating its schema), keeping messages forever.
    pub async fn open(url: &str) -> Result<Self, HistoryError> {
        Self::open_with(url, Retention::default()).await
    }

    /// Open the store `url` names with a retention.
    pub async fn open_with(url: &str, retention: Retention) -> Result<Self, HistoryError> {
        match StoreUrl::parse(url)? {
            StoreUrl::Sqlite(path) => {
                let store = tokio::task::spawn_blocking(move || SqliteHistory::open(&path))
                    .await
                    .map_err(|e| HistoryError::Unavailable(e.to_string()))??;
                Ok(HistoryStore::Sqlite(store.with_retention(retention)))
            }
            StoreUrl::Cql { nodes, keyspace } => Ok(HistoryStore::Cql(
                CqlHistory::connect(&nodes, &keyspace, retention).await?,
            )),
        }
    }

    /// Open the store, waiting with backoff (logged) while it is unreachable, as roles wait for
    /// the brokers: a store down at start-up is not a crash loop. `None` when `shutdown` came
    /// first; a bad URL or a refused schema is an error at once.
    pub async fn open_waiting(
        url: &str,
        retention: Retention,
        shutdown: &CancellationToken,
    ) -> Result<Option<Self>, HistoryError> {
        let mut delay = Duration::from_millis(500);
        loop {
            match Self::open_with(url, retention.clone()).await {
                Ok(store) => return Ok(Some(store)),
                Err(e) if e.is_retriable() => {
                    tracing::warn!(error = %e, retry_in = ?delay, "history store not reachable yet");
                }
                Err(e) => return Err(e),
            }
            tokio::select! {
                () = shutdown.cancelled() => return Ok(None),
                () = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(Duration::from_secs(10));
        }
    }

    /// Which engine: `sqlite` or `cql`.
    pub fn engine(&self) -> &'static str {
        match self {
            HistoryStore::Sqlite(_) => "sqlite",
            HistoryStore::Cql(_) => "cql",
        }
    }

    /// Keep one event (idempotent by event key).
    pub async fn record(&self, event: &Event) -> Result<(), HistoryError> {
        self.record_all(std::slice::from_ref(event)).await
    }

    /// Keep events (each idempotent by its event key; on SQLite in one transaction, shared
    /// with whatever else is written at the same moment).
    pub async fn record_all(&self, events: &[Event]) -> Result<(), HistoryError> {
        if events.is_empty() {
            return Ok(());
        }
        match self {
            HistoryStore::Sqlite(s) => match s.group_writer() {
                Some(writer) => writer.record_all(events.to_vec()).await,
                None => {
                    let events = events.to_vec();
                    blocking(s, move |s| s.record_all(&events)).await
                }
            },
            HistoryStore::Cql(c) => c.record_all(events).await,
        }
    }

    /// A message and its events, oldest first.
    pub async fn message(&self, message_id: &str) -> Result<Option<MessageView>, HistoryError> {
        match self {
            HistoryStore::Sqlite(s) => {
                let id = message_id.to_string();
                blocking(s, move |s| s.message(&id)).await
            }
            HistoryStore::Cql(c) => c.message(message_id).await,
        }
    }

    /// Final reports of `customer_id` (sent by `client_id` or by no client) whose webhook has
    /// not succeeded and that were not acknowledged, oldest first, after `cursor`.
    pub async fn undelivered(
        &self,
        customer_id: &str,
        client_id: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<ReportPage, HistoryError> {
        match self {
            HistoryStore::Sqlite(s) => {
                let (customer, client) = (customer_id.to_string(), client_id.to_string());
                let cursor = cursor.map(str::to_string);
                blocking(s, move |s| {
                    s.undelivered(&customer, &client, cursor.as_deref(), limit)
                })
                .await
            }
            HistoryStore::Cql(c) => c.undelivered(customer_id, client_id, cursor, limit).await,
        }
    }

    /// Whether `client_id` of `customer_id` may acknowledge `message_id`.
    pub async fn ackable(
        &self,
        customer_id: &str,
        client_id: &str,
        message_id: &str,
    ) -> Result<bool, HistoryError> {
        match self {
            HistoryStore::Sqlite(s) => {
                let (customer, client, id) = (
                    customer_id.to_string(),
                    client_id.to_string(),
                    message_id.to_string(),
                );
                blocking(s, move |s| s.ackable(&customer, &client, &id)).await
            }
            HistoryStore::Cql(c) => c.ackable(customer_id, client_id, message_id).await,
        }
    }

    /// A client's messages the query lists, oldest accepted first, after `cursor`.
    pub async fn search(
        &self,
        query: &MessageQuery,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<MessagePage, HistoryError> {
        match self {
            HistoryStore::Sqlite(s) => {
                let (query, cursor) = (query.clone(), cursor.map(str::to_string));
                blocking(s, move |s| s.search(&query, cursor.as_deref(), limit)).await
            }
            HistoryStore::Cql(c) => c.search(query, cursor, limit).await,
        }
    }

    /// Final outcomes of `customer_id` finished in [`from`, `to`) ms, per sender.
    pub async fn sender_stats(
        &self,
        customer_id: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<SenderStats>, HistoryError> {
        match self {
            HistoryStore::Sqlite(s) => {
                let customer = customer_id.to_string();
                blocking(s, move |s| s.sender_stats(&customer, from, to)).await
            }
            HistoryStore::Cql(c) => c.sender_stats(customer_id, from, to).await,
        }
    }

    /// Delete what is past its customer's retention at `now` (ms): SQLite deletes rows; CQL
    /// rows expire by themselves (write TTLs), so there it deletes nothing. The number of
    /// messages deleted.
    pub async fn purge_expired(&self, now: i64) -> Result<u64, HistoryError> {
        match self {
            HistoryStore::Sqlite(s) => blocking(s, move |s| s.purge_expired(now)).await,
            HistoryStore::Cql(_) => Ok(0),
        }
    }

    /// The retention the store applies.
    pub fn retention(&self) -> &Retention {
        match self {
            HistoryStore::Sqlite(s) => s.retention(),
            HistoryStore::Cql(c) => c.retention(),
        }
    }

    /// Failed messages of `customer_id` finished in [`from`, `to`) (ms), counted by result code.
    pub async fn failure_summary(
        &self,
        customer_id: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<FailureCount>, HistoryError> {
        match self {
            HistoryStore::Sqlite(s) => {
                let customer = customer_id.to_string();
                blocking(s, move |s| s.failure_summary(&customer, from, to)).await
            }
            HistoryStore::Cql(c) => c.failure_summary(customer_id, from, to).await,
        }
    }
}
