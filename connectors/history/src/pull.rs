//! What a client pulls instead of (or besides) webhooks: its final reports whose webhook has not
//! succeeded and that it has not acknowledged, page by page with a cursor, and a day's count of
//! failed messages by result code. These are the SQLite queries; the scenarios in
//! `tests/src/history_scenarios.rs` check them on every engine.

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use crate::cursor::{page_of, start_after};
use crate::event::CallbackState;
use crate::{HistoryError, SqliteHistory};

/// One pullable report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PullableReport {
    pub message_id: String,
    pub client_message_id: Option<String>,
    pub channel: Option<String>,
    pub to: Option<String>,
    pub status: String,
    pub result_code: Option<String>,
    pub result_text: Option<String>,
    pub done_at: Option<i64>,
    /// retrying, exhausted, or none when no webhook was attempted (no report URL, or the first
    /// attempt is still on its way).
    pub callback_state: Option<String>,
}

/// A page of reports and the cursor of the next page (none when this is the last).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReportPage {
    pub reports: Vec<PullableReport>,
    pub next_cursor: Option<String>,
}

/// A day's failed messages with one result code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailureCount {
    pub result_code: String,
    pub count: i64,
}

impl SqliteHistory {
    /// Final reports of `customer_id` (sent by `client_id` or by no client) whose webhook has
    /// not succeeded and that were not acknowledged, oldest first, after `cursor`.
    pub fn undelivered(
        &self,
        customer_id: &str,
        client_id: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<ReportPage, HistoryError> {
        let (after_done, after_id) = start_after(cursor)?;
        let connection = self.lock();
        let mut statement = connection.prepare_cached(
            "SELECT message_id, client_message_id, channel, recipient, status, result_code,
                    result_text, done_at, callback_state
             FROM messages
             WHERE customer_id = ?1 AND (client_id = ?2 OR client_id IS NULL)
               AND stage = 9 AND callback_rank < ?3
               AND (coalesce(done_at, 0) > ?4 OR (coalesce(done_at, 0) = ?4 AND message_id > ?5))
             ORDER BY coalesce(done_at, 0), message_id
             LIMIT ?6",
        )?;
        let rows = statement.query_map(
            params![
                customer_id,
                client_id,
                CallbackState::Delivered.rank(),
                after_done,
                after_id,
                (limit + 1) as i64
            ],
            |row| {
                Ok(PullableReport {
                    message_id: row.get(0)?,
                    client_message_id: row.get(1)?,
                    channel: row.get(2)?,
                    to: row.get(3)?,
                    status: row.get(4)?,
                    result_code: row.get(5)?,
                    result_text: row.get(6)?,
                    done_at: row.get(7)?,
                    callback_state: row.get(8)?,
                })
            },
        )?;
        let reports: Vec<PullableReport> = rows.collect::<Result<_, _>>()?;
        Ok(page_of(reports, limit))
    }

    /// Whether `client_id` of `customer_id` may acknowledge `message_id`: a final report of
    /// its own (or of its customer, naming no client), as the pull list shows them.
    pub fn ackable(
        &self,
        customer_id: &str,
        client_id: &str,
        message_id: &str,
    ) -> Result<bool, HistoryError> {
        let connection = self.lock();
        let found: Option<i64> = connection
            .query_row(
                "SELECT 1 FROM messages WHERE message_id = ?1 AND customer_id = ?2
                   AND (client_id = ?3 OR client_id IS NULL) AND stage = 9",
                params![message_id, customer_id, client_id],
                |row| row.get(0),
            )
            .optional()?;
        Ok(found.is_some())
    }

    /// Failed messages of `customer_id` finished in [`from`, `to`) (ms), counted by result code.
    pub fn failure_summary(
        &self,
        customer_id: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<FailureCount>, HistoryError> {
        let connection = self.lock();
        let mut statement = connection.prepare_cached(
            "SELECT coalesce(result_code, ''), count(*) FROM messages
             WHERE customer_id = ?1 AND status IN ('failed', 'expired', 'rejected')
               AND done_at >= ?2 AND done_at < ?3
             GROUP BY 1 ORDER BY 2 DESC, 1",
        )?;
        let rows = statement.query_map(params![customer_id, from, to], |row| {
            Ok(FailureCount {
                result_code: row.get(0)?,
                count: row.get(1)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
