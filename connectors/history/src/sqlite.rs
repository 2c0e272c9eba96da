//! The embedded history store: one SQLite file (WAL). Events are inserted once per source
//! record; the message summary is upserted and only moves forward in the message's life.

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::event::Event;
use crate::group_commit::GroupWriter;
use crate::{HistoryError, Retention};

const SCHEMA: &str = "
PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
PRAGMA busy_timeout = 5000;
CREATE TABLE IF NOT EXISTS messages (
    message_id        TEXT PRIMARY KEY,
    customer_id       TEXT,
    client_id         TEXT,
    client_message_id TEXT,
    channel           TEXT,
    recipient         TEXT,
    status            TEXT NOT NULL,
    stage             INTEGER NOT NULL,
    result_code       TEXT,
    result_text       TEXT,
    carrier           TEXT,
    sender            TEXT,
    accepted_at       INTEGER,
    done_at           INTEGER,
    updated_at        INTEGER NOT NULL,
    callback_state    TEXT,
    callback_rank     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS messages_by_customer ON messages (customer_id, accepted_at);
CREATE INDEX IF NOT EXISTS messages_by_client_message_id ON messages (customer_id, client_message_id);
CREATE INDEX IF NOT EXISTS messages_by_done ON messages (customer_id, done_at);
CREATE TABLE IF NOT EXISTS events (
    event_key  TEXT PRIMARY KEY,
    message_id TEXT NOT NULL,
    kind       TEXT NOT NULL,
    at         INTEGER NOT NULL,
    detail     TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_message ON events (message_id, at);
";

/// Columns added after the first release, with their definitions: added to older files.
const ADDED_COLUMNS: &[(&str, &str)] = &[
    ("callback_state", "TEXT"),
    ("callback_rank", "INTEGER NOT NULL DEFAULT 0"),
];

/// Indexes over added columns (created once they exist).
const ADDED_INDEXES: &str = "
CREATE INDEX IF NOT EXISTS messages_pullable ON messages (customer_id, callback_rank, done_at, message_id);
";

/// A message as the history knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MessageView {
    pub message_id: String,
    pub customer_id: Option<String>,
    pub client_id: Option<String>,
    pub client_message_id: Option<String>,
    pub channel: Option<String>,
    pub to: Option<String>,
    pub status: String,
    pub result_code: Option<String>,
    pub result_text: Option<String>,
    pub carrier: Option<String>,
    pub sender: Option<String>,
    pub accepted_at: Option<i64>,
    pub done_at: Option<i64>,
    /// Where the report's webhook stands: retrying, exhausted, delivered or acked (none yet
    /// when no attempt was made).
    pub callback_state: Option<String>,
    pub events: Vec<EventView>,
}

/// One event of a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventView {
    pub kind: String,
    pub at: i64,
    pub detail: serde_json::Value,
}

/// The SQLite history store. Cheap to clone; one connection behind a mutex, and one writer
/// thread that commits concurrent writes together (`group_commit.rs`).
#[derive(Debug, Clone)]
pub struct SqliteHistory {
    connection: Arc<Mutex<Connection>>,
    retention: Retention,
    /// `None` in the writer thread's own copy (so the thread ends with the last store).
    writer: Option<GroupWriter>,
}

impl SqliteHistory {
    /// Open (and create) the store at `path`.
    pub fn open(path: &Path) -> Result<Self, HistoryError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| HistoryError::Unavailable(e.to_string()))?;
        }
        let connection = Connection::open(path)?;
        connection.execute_batch(SCHEMA)?;
        migrate(&connection)?;
        let store = SqliteHistory {
            connection: Arc::new(Mutex::new(connection)),
            retention: Retention::default(),
            writer: None,
        };
        let writer = GroupWriter::start(store.clone())?;
        Ok(SqliteHistory {
            writer: Some(writer),
            ..store
        })
    }

    /// The same store, expiring messages as `retention` says (see `purge_expired`).
    pub fn with_retention(mut self, retention: Retention) -> Self {
        self.retention = retention;
        self
    }

    /// The retention this store applies.
    pub fn retention(&self) -> &Retention {
        &self.retention
    }

    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.connection
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The writer thread that commits concurrent writes together.
    pub(crate) fn group_writer(&self) -> Option<&GroupWriter> {
        self.writer.as_ref()
    }

    /// Keep one event (idempotent by event key).
    pub fn record(&self, event: &Event) -> Result<(), HistoryError> {
        self.record_all(std::slice::from_ref(event))
    }

    /// Keep events in one transaction (each idempotent by its event key).
    pub fn record_all(&self, events: &[Event]) -> Result<(), HistoryError> {
        self.record_refs(&events.iter().collect::<Vec<_>>())
    }

    /// Keep events (gathered from several callers) in one transaction.
    pub fn record_refs(&self, events: &[&Event]) -> Result<(), HistoryError> {
        if events.is_empty() {
            return Ok(());
        }
        let mut connection = self.lock();
        let tx = connection.transaction()?;
        for event in events {
            record_in(&tx, event)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// A message and its events, oldest first (events of the same millisecond in event key
    /// order, as on every engine).
    pub fn message(&self, message_id: &str) -> Result<Option<MessageView>, HistoryError> {
        let connection = self.lock();
        let view = connection
            .query_row(
                "SELECT message_id, customer_id, client_id, client_message_id, channel, recipient, status,
                        result_code, result_text, carrier, sender, accepted_at, done_at, callback_state
                 FROM messages WHERE message_id = ?1",
                params![message_id],
                |row| {
                    Ok(MessageView {
                        message_id: row.get(0)?,
                        customer_id: row.get(1)?,
                        client_id: row.get(2)?,
                        client_message_id: row.get(3)?,
                        channel: row.get(4)?,
                        to: row.get(5)?,
                        status: row.get(6)?,
                        result_code: row.get(7)?,
                        result_text: row.get(8)?,
                        carrier: row.get(9)?,
                        sender: row.get(10)?,
                        accepted_at: row.get(11)?,
                        done_at: row.get(12)?,
                        callback_state: row.get(13)?,
                        events: Vec::new(),
                    })
                },
            )
            .optional()?;
        let Some(mut view) = view else {
            return Ok(None);
        };
        let mut statement = connection.prepare(
            "SELECT kind, at, detail FROM events WHERE message_id = ?1 ORDER BY at, event_key",
        )?;
        let events = statement.query_map(params![message_id], |row| {
            let detail: String = row.get(2)?;
            Ok(EventView {
                kind: row.get(0)?,
                at: row.get(1)?,
                detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::Null),
            })
        })?;
        view.events = events.collect::<Result<_, _>>()?;
        Ok(Some(view))
    }
}

impl SqliteHistory {
    /// Delete the messages (and their events) whose last event is older than their customer's
    /// retention at `now` (ms); the number of messages deleted.
    pub fn purge_expired(&self, now: i64) -> Result<u64, HistoryError> {
        let mut connection = self.lock();
        let tx = connection.transaction()?;
        let customers: Vec<Option<String>> = tx
            .prepare("SELECT DISTINCT customer_id FROM messages")?
            .query_map([], |row| row.get(0))?
            .collect::<Result<_, _>>()?;
        let mut deleted = 0;
        for customer in customers {
            let Some(cutoff) = self.retention.cutoff(customer.as_deref(), now) else {
                continue;
            };
            tx.prepare_cached(
                "DELETE FROM events WHERE message_id IN (SELECT message_id FROM messages
                   WHERE customer_id IS ?1 AND updated_at < ?2)",
            )?
            .execute(params![customer, cutoff])?;
            deleted += tx
                .prepare_cached("DELETE FROM messages WHERE customer_id IS ?1 AND updated_at < ?2")?
                .execute(params![customer, cutoff])? as u64;
        }
        tx.commit()?;
        Ok(deleted)
    }
}

/// Insert an event once and move the message summary forward.
fn record_in(tx: &rusqlite::Transaction<'_>, event: &Event) -> Result<(), HistoryError> {
    let inserted = tx
        .prepare_cached("INSERT OR IGNORE INTO events (event_key, message_id, kind, at, detail) VALUES (?1, ?2, ?3, ?4, ?5)")?
        .execute(params![event.event_key, event.message_id, event.kind, event.at, event.detail.to_string()])?;
    if inserted == 0 {
        return Ok(());
    }
    let s = &event.summary;
    tx.prepare_cached(UPSERT_MESSAGE)?.execute(params![
        event.message_id,
        s.customer_id,
        s.client_id,
        s.client_message_id,
        s.channel,
        s.to,
        s.status,
        event.stage as i64,
        s.result_code,
        s.result_text,
        s.carrier,
        s.sender,
        s.accepted_at,
        s.done_at,
        event.at,
        s.callback.map(|c| c.as_str()),
        s.callback.map_or(0, |c| c.rank()),
    ])?;
    Ok(())
}

/// Add the columns and indexes a file from an older release lacks.
fn migrate(connection: &Connection) -> Result<(), HistoryError> {
    let mut statement = connection.prepare("SELECT name FROM pragma_table_info('messages')")?;
    let existing: Vec<String> = statement
        .query_map([], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    let mut added = false;
    for (column, definition) in ADDED_COLUMNS {
        if !existing.iter().any(|c| c == column) {
            let alter = format!("ALTER TABLE messages ADD COLUMN {column} {definition}");
            match connection.execute_batch(&alter) {
                Ok(()) => added = true,
                // Another process (ingress and history share the file) added it first.
                Err(e) if e.to_string().contains("duplicate column name") => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    if added {
        // Reports finished before webhooks were tracked: their webhook state is unknown, and
        // they must not all show up as undelivered in the pull API.
        connection.execute_batch(
            "UPDATE messages SET callback_state = 'untracked', callback_rank = 3
             WHERE stage = 9 AND callback_rank = 0",
        )?;
    }
    connection.execute_batch(ADDED_INDEXES)?;
    Ok(())
}

/// The message summary upsert: identity fields are set once; status and result only move
/// forward in the message's life (an event without a status, such as a carrier report or a
/// webhook attempt, creates the row at stage 0 so that any later status still applies).
const UPSERT_MESSAGE: &str = "
INSERT INTO messages (message_id, customer_id, client_id, client_message_id, channel, recipient,
    status, stage, result_code, result_text, carrier, sender, accepted_at, done_at, updated_at,
    callback_state, callback_rank)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, coalesce(?7, 'accepted'), CASE WHEN ?7 IS NULL THEN 0 ELSE ?8 END, ?9, ?10, ?11, ?12, ?13, ?14, ?15,
    ?16, ?17)
ON CONFLICT (message_id) DO UPDATE SET
    customer_id = coalesce(customer_id, excluded.customer_id),
    client_id = coalesce(client_id, excluded.client_id),
    client_message_id = coalesce(client_message_id, excluded.client_message_id),
    channel = coalesce(channel, excluded.channel),
    recipient = coalesce(recipient, excluded.recipient),
    accepted_at = coalesce(accepted_at, excluded.accepted_at),
    status = CASE WHEN ?7 IS NOT NULL AND excluded.stage >= stage THEN ?7 ELSE status END,
    result_code = CASE WHEN excluded.stage >= stage THEN coalesce(?9, result_code) ELSE result_code END,
    result_text = CASE WHEN excluded.stage >= stage THEN coalesce(?10, result_text) ELSE result_text END,
    carrier = CASE WHEN excluded.stage >= stage THEN coalesce(?11, carrier) ELSE carrier END,
    sender = CASE WHEN excluded.stage >= stage THEN coalesce(?12, sender) ELSE sender END,
    done_at = coalesce(done_at, excluded.done_at),
    stage = max(stage, CASE WHEN ?7 IS NOT NULL THEN excluded.stage ELSE stage END),
    callback_state = CASE WHEN ?17 > callback_rank THEN ?16 ELSE callback_state END,
    callback_rank = max(callback_rank, ?17),
    updated_at = max(updated_at, excluded.updated_at)";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_from_before_webhook_tracking_is_migrated_without_listing_old_reports() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("old.db");
        {
            let old = Connection::open(&path).expect("opens");
            old.execute_batch(
                "CREATE TABLE messages (message_id TEXT PRIMARY KEY, customer_id TEXT,
                    client_id TEXT, client_message_id TEXT, channel TEXT, recipient TEXT,
                    status TEXT NOT NULL, stage INTEGER NOT NULL, result_code TEXT,
                    result_text TEXT, carrier TEXT, sender TEXT, accepted_at INTEGER,
                    done_at INTEGER, updated_at INTEGER NOT NULL);
                 INSERT INTO messages VALUES ('old-final', 'acme', NULL, NULL, 'sms', '010',
                    'delivered', 9, '0000', 'ok', NULL, NULL, 1, 2, 2);
                 INSERT INTO messages VALUES ('old-open', 'acme', NULL, NULL, 'sms', '010',
                    'routed', 3, NULL, NULL, NULL, NULL, 1, NULL, 2);",
            )
            .expect("old schema");
        }
        let store = SqliteHistory::open(&path).expect("migrates");
        let old = store.message("old-final").expect("ok").expect("kept");
        assert_eq!(old.callback_state.as_deref(), Some("untracked"));
        assert!(
            store
                .undelivered("acme", "acme-web", None, 10)
                .expect("ok")
                .reports
                .is_empty()
        );
        // Opening again (another process) changes nothing and does not fail.
        let again = SqliteHistory::open(&path).expect("opens again");
        assert_eq!(
            again
                .message("old-open")
                .expect("ok")
                .expect("kept")
                .callback_state,
            None
        );
    }
}
