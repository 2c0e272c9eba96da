//! The CQL history store (ScyllaDB in production, Apache Cassandra locally): the same events
//! and queries as the SQLite store, on tables shaped by the queries. Every statement is
//! prepared; reads page through the driver.

mod errors;
mod read;
mod schema;
mod search;
mod write;

use std::sync::Arc;
use std::time::Duration;

use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::statement::batch::{Batch, BatchType};
use scylla::statement::prepared::PreparedStatement;

use crate::{HistoryError, Retention};

/// How long to try reaching a node at start.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The CQL history store. Cheap to clone.
#[derive(Clone)]
pub struct CqlHistory {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for CqlHistory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CqlHistory")
            .field("keyspace", &self.inner.keyspace)
            .finish_non_exhaustive()
    }
}

struct Inner {
    session: Session,
    keyspace: String,
    retention: Retention,
    statements: Statements,
}

/// Every statement, prepared once at start.
struct Statements {
    /// The event with the summary batches: identity only, + status, + callback, + both.
    summary: [Batch; 4],
    insert_final: PreparedStatement,
    insert_pending: PreparedStatement,
    pending_state: PreparedStatement,
    delete_pending: PreparedStatement,
    select_message: PreparedStatement,
    select_events: PreparedStatement,
    select_pending: PreparedStatement,
    select_finals: PreparedStatement,
    insert_by_day: PreparedStatement,
    insert_by_client_message_id: PreparedStatement,
    select_by_day: PreparedStatement,
    select_by_client_message_id: PreparedStatement,
}

async fn prepare(session: &Session, cql: String) -> Result<PreparedStatement, HistoryError> {
    let mut statement = session.prepare(cql).await.map_err(errors::prepare)?;
    // Writes are idempotent (fixed keys, fixed timestamps): the driver may retry them.
    statement.set_is_idempotent(true);
    Ok(statement)
}

impl Statements {
    async fn prepare(session: &Session, ks: &str) -> Result<Self, HistoryError> {
        let identity = prepare(
            session,
            format!(
                "UPDATE {ks}.messages USING TTL ? SET customer_id = ?, client_id = ?, \
                 client_message_id = ?, channel = ?, recipient = ?, accepted_at = ?, \
                 done_at = ?, updated_at = ? WHERE message_id = ?"
            ),
        )
        .await?;
        let status = prepare(
            session,
            format!(
                "UPDATE {ks}.messages USING TTL ? AND TIMESTAMP ? SET status = ?, stage = ?, \
                 result_code = ?, result_text = ?, carrier = ?, sender = ? WHERE message_id = ?"
            ),
        )
        .await?;
        let callback = prepare(
            session,
            format!(
                "UPDATE {ks}.messages USING TTL ? AND TIMESTAMP ? SET callback_state = ?, \
                 callback_rank = ? WHERE message_id = ?"
            ),
        )
        .await?;
        let insert_event = prepare(
            session,
            format!(
                "INSERT INTO {ks}.events (message_id, at, event_key, kind, detail) \
                 VALUES (?, ?, ?, ?, ?) USING TTL ?"
            ),
        )
        .await?;
        // The event and the summary share the partition key (the message id): one mutation.
        let batch = |statements: Vec<&PreparedStatement>| {
            let mut batch = Batch::new(BatchType::Unlogged);
            for s in statements {
                batch.append_statement(s.clone());
            }
            batch.set_is_idempotent(true);
            batch
        };
        let summary = [
            batch(vec![&insert_event, &identity]),
            batch(vec![&insert_event, &identity, &status]),
            batch(vec![&insert_event, &identity, &callback]),
            batch(vec![&insert_event, &identity, &status, &callback]),
        ];
        Ok(Statements {
            summary,
            insert_final: prepare(
                session,
                format!(
                    "INSERT INTO {ks}.finals_by_day (customer_id, day, done_at, message_id, \
                     status, result_code, sender, channel) VALUES (?, ?, ?, ?, ?, ?, ?, ?) \
                     USING TTL ?"
                ),
            )
            .await?,
            insert_pending: prepare(
                session,
                format!(
                    "INSERT INTO {ks}.pending_reports (customer_id, done_at, message_id, \
                     client_id, client_message_id, channel, recipient, status, result_code, \
                     result_text) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
                     USING TTL ? AND TIMESTAMP 0"
                ),
            )
            .await?,
            pending_state: prepare(
                session,
                format!(
                    "UPDATE {ks}.pending_reports USING TTL ? AND TIMESTAMP ? \
                     SET callback_state = ? WHERE customer_id = ? AND done_at = ? \
                     AND message_id = ?"
                ),
            )
            .await?,
            delete_pending: prepare(
                session,
                format!(
                    "DELETE FROM {ks}.pending_reports USING TIMESTAMP ? \
                     WHERE customer_id = ? AND done_at = ? AND message_id = ?"
                ),
            )
            .await?,
            select_message: prepare(
                session,
                format!(
                    "SELECT customer_id, client_id, client_message_id, channel, recipient, \
                     status, stage, result_code, result_text, carrier, sender, accepted_at, \
                     done_at, callback_state, callback_rank FROM {ks}.messages \
                     WHERE message_id = ?"
                ),
            )
            .await?,
            select_events: prepare(
                session,
                format!("SELECT kind, at, detail FROM {ks}.events WHERE message_id = ?"),
            )
            .await?,
            select_pending: prepare(
                session,
                format!(
                    "SELECT done_at, message_id, client_id, client_message_id, channel, \
                     recipient, status, result_code, result_text, callback_state \
                     FROM {ks}.pending_reports \
                     WHERE customer_id = ? AND (done_at, message_id) > (?, ?)"
                ),
            )
            .await?,
            select_finals: prepare(
                session,
                format!(
                    "SELECT status, result_code, sender FROM {ks}.finals_by_day \
                     WHERE customer_id = ? AND day = ? AND done_at >= ? AND done_at < ?"
                ),
            )
            .await?,
            insert_by_day: prepare(
                session,
                format!(
                    "INSERT INTO {ks}.messages_by_day (customer_id, day, accepted_at, \
                     message_id) VALUES (?, ?, ?, ?) USING TTL ?"
                ),
            )
            .await?,
            insert_by_client_message_id: prepare(
                session,
                format!(
                    "INSERT INTO {ks}.messages_by_client_message_id (customer_id, \
                     client_message_id, message_id) VALUES (?, ?, ?) USING TTL ?"
                ),
            )
            .await?,
            select_by_day: prepare(
                session,
                format!(
                    "SELECT accepted_at, message_id FROM {ks}.messages_by_day \
                     WHERE customer_id = ? AND day = ? AND (accepted_at, message_id) > (?, ?)"
                ),
            )
            .await?,
            select_by_client_message_id: prepare(
                session,
                format!(
                    "SELECT message_id FROM {ks}.messages_by_client_message_id \
                     WHERE customer_id = ? AND client_message_id = ?"
                ),
            )
            .await?,
        })
    }
}

impl CqlHistory {
    /// Connect to `nodes`, create or migrate the schema in `keyspace`, prepare the statements.
    /// A cluster that cannot be reached is `Unavailable` (retriable).
    pub async fn connect(
        nodes: &[String],
        keyspace: &str,
        retention: Retention,
    ) -> Result<Self, HistoryError> {
        let session = tokio::time::timeout(
            CONNECT_TIMEOUT * 2,
            SessionBuilder::new()
                .known_nodes(nodes)
                .connection_timeout(CONNECT_TIMEOUT)
                .build(),
        )
        .await
        .map_err(|_| {
            HistoryError::Unavailable(format!(
                "no CQL node of {nodes:?} answered within {:?}",
                CONNECT_TIMEOUT * 2
            ))
        })?
        .map_err(|e| HistoryError::Unavailable(format!("cannot reach CQL nodes {nodes:?}: {e}")))?;
        schema::migrate(&session, keyspace).await?;
        let statements = Statements::prepare(&session, keyspace).await?;
        tracing::info!(?nodes, keyspace, "CQL history store ready");
        Ok(CqlHistory {
            inner: Arc::new(Inner {
                session,
                keyspace: keyspace.to_string(),
                retention,
                statements,
            }),
        })
    }

    /// The retention this store applies (as write TTLs).
    pub fn retention(&self) -> &Retention {
        &self.inner.retention
    }

    /// Drop the keyspace and everything in it (tests, and a rebuild's target being replaced).
    pub async fn drop_keyspace(&self) -> Result<(), HistoryError> {
        self.inner
            .session
            .query_unpaged(
                format!("DROP KEYSPACE IF EXISTS {}", self.inner.keyspace),
                &[],
            )
            .await
            .map_err(errors::execution)?;
        Ok(())
    }
}
