//! The CQL schema, created (and migrated) at start. Tables are shaped by the queries (one table
//! per access path, written alongside: no secondary indexes), in CQL both ScyllaDB and
//! Cassandra accept.

use scylla::client::session::Session;

use super::errors;
use crate::HistoryError;

/// Statements that create the keyspace (SimpleStrategy, RF 1, when it does not exist: a
/// cluster creates it beforehand with its own replication) and the tables; each is idempotent.
/// A later version appends `ALTER TABLE … ADD` statements here (an "already exists" answer to
/// them is success).
pub(super) fn statements(keyspace: &str) -> Vec<String> {
    vec![
        format!(
            "CREATE KEYSPACE IF NOT EXISTS {keyspace} WITH replication = \
             {{'class': 'SimpleStrategy', 'replication_factor': 1}}"
        ),
        // Every event of a message, in time then event-key order; the event key dedups.
        format!(
            "CREATE TABLE IF NOT EXISTS {keyspace}.events (
                message_id text, at bigint, event_key text, kind text, detail text,
                PRIMARY KEY ((message_id), at, event_key))"
        ),
        // The message summary. Status columns are written with a timestamp growing with the
        // stage (and time), callback columns with one growing with the webhook state's rank:
        // last-write-wins then means "only moves forward", whatever order events arrive in.
        format!(
            "CREATE TABLE IF NOT EXISTS {keyspace}.messages (
                message_id text PRIMARY KEY, customer_id text, client_id text,
                client_message_id text, channel text, recipient text, status text, stage int,
                result_code text, result_text text, carrier text, sender text,
                accepted_at bigint, done_at bigint, updated_at bigint,
                callback_state text, callback_rank int)"
        ),
        // Final reports whose webhook has not succeeded nor been acknowledged: the pull list,
        // in (done_at, message_id) order per customer. Written at timestamp 0 by the final
        // event; a delivery or an ack deletes the row at a timestamp above every write, so the
        // outcome does not depend on which event came first.
        format!(
            "CREATE TABLE IF NOT EXISTS {keyspace}.pending_reports (
                customer_id text, done_at bigint, message_id text, client_id text,
                client_message_id text, channel text, recipient text, status text,
                result_code text, result_text text, callback_state text,
                PRIMARY KEY ((customer_id), done_at, message_id))"
        ),
        // Final outcomes per customer and UTC day: the failure summary (and per-sender stats).
        format!(
            "CREATE TABLE IF NOT EXISTS {keyspace}.finals_by_day (
                customer_id text, day bigint, done_at bigint, message_id text, status text,
                result_code text, sender text, channel text,
                PRIMARY KEY ((customer_id, day), done_at, message_id))"
        ),
        // Messages per customer and UTC day of acceptance: the search by time.
        format!(
            "CREATE TABLE IF NOT EXISTS {keyspace}.messages_by_day (
                customer_id text, day bigint, accepted_at bigint, message_id text,
                PRIMARY KEY ((customer_id, day), accepted_at, message_id))"
        ),
        // Messages per customer and client message id: the search by the client's own id.
        format!(
            "CREATE TABLE IF NOT EXISTS {keyspace}.messages_by_client_message_id (
                customer_id text, client_message_id text, message_id text,
                PRIMARY KEY ((customer_id, client_message_id), message_id))"
        ),
    ]
}

/// Create or migrate the schema.
pub(super) async fn migrate(session: &Session, keyspace: &str) -> Result<(), HistoryError> {
    for statement in statements(keyspace) {
        match session.query_unpaged(statement, &[]).await {
            Ok(_) => {}
            Err(e) if e.to_string().contains("already exist") => {}
            Err(e) => return Err(errors::execution(e)),
        }
    }
    session
        .await_schema_agreement()
        .await
        .map_err(|e| HistoryError::Unavailable(format!("schema agreement: {e}")))?;
    Ok(())
}
