//! What a client pulls instead of (or besides) webhooks: its final reports whose webhook has not
//! succeeded and that it has not acknowledged, page by page with a cursor, and a day's count of
//! failed messages by result code.

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use crate::event::CallbackState;
use crate::cursor::{page_of, start_after};
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Event, Stage, Summary};

    fn final_event(id: &str, done_at: i64, status: &str) -> Event {
        Event {
            event_key: format!("final/{id}"),
            message_id: id.into(),
            kind: "final",
            at: done_at,
            stage: Stage::Final,
            summary: Summary {
                customer_id: Some("acme".into()),
                client_id: Some("acme-web".into()),
                status: Some(status.into()),
                result_code: Some(if status == "failed" { "3001" } else { "0000" }.into()),
                done_at: Some(done_at),
                ..Summary::default()
            },
            detail: serde_json::Value::Null,
        }
    }

    fn callback_event(id: &str, n: i64, state: CallbackState) -> Event {
        Event {
            event_key: format!("cb/{id}/{n}"),
            message_id: id.into(),
            kind: "callback",
            at: n,
            stage: Stage::Accepted,
            summary: Summary {
                callback: Some(state),
                ..Summary::default()
            },
            detail: serde_json::Value::Null,
        }
    }

    #[test]
    fn undelivered_pages_skip_delivered_and_acked_reports() {
        let dir = tempfile::tempdir().expect("dir");
        let store = SqliteHistory::open(&dir.path().join("h.db")).expect("opens");
        for (i, id) in ["a", "b", "c", "d", "e"].iter().enumerate() {
            store
                .record(&final_event(id, 100 + i as i64, "delivered"))
                .expect("ok");
        }
        store
            .record(&callback_event("b", 1, CallbackState::Delivered))
            .expect("ok");
        store
            .record(&callback_event("c", 1, CallbackState::Exhausted))
            .expect("ok");
        store
            .record(&callback_event("d", 1, CallbackState::Acked))
            .expect("ok");
        // A late failure does not undo the ack.
        store
            .record(&callback_event("d", 2, CallbackState::Retrying))
            .expect("ok");

        let first = store.undelivered("acme", "acme-web", None, 2).expect("ok");
        let ids: Vec<&str> = first
            .reports
            .iter()
            .map(|r| r.message_id.as_str())
            .collect();
        assert_eq!(ids, vec!["a", "c"]);
        assert_eq!(
            first.reports[1].callback_state.as_deref(),
            Some("exhausted")
        );
        let cursor = first.next_cursor.expect("more");
        let second = store
            .undelivered("acme", "acme-web", Some(&cursor), 2)
            .expect("ok");
        let ids: Vec<&str> = second
            .reports
            .iter()
            .map(|r| r.message_id.as_str())
            .collect();
        assert_eq!(ids, vec!["e"]);
        assert_eq!(second.next_cursor, None);
        // Another customer's client sees none of them; a bad cursor is an error.
        assert!(
            store
                .undelivered("beta", "beta-web", None, 10)
                .expect("ok")
                .reports
                .is_empty()
        );
        assert!(store.undelivered("acme", "acme-web", Some("x"), 1).is_err());
        assert!(store.ackable("acme", "acme-web", "a").expect("ok"));
        assert!(
            !store.ackable("acme", "acme-batch", "a").expect("ok"),
            "another client's"
        );
        assert!(
            !store.ackable("beta", "beta-web", "a").expect("ok"),
            "another customer's"
        );
        assert!(
            !store.ackable("acme", "acme-web", "zz").expect("ok"),
            "unknown"
        );
        assert!(
            store
                .undelivered("acme", "acme-web", Some("1.abc"), 1)
                .is_err()
        );
    }

    #[test]
    fn the_failure_summary_counts_by_result_code_within_the_day() {
        let dir = tempfile::tempdir().expect("dir");
        let store = SqliteHistory::open(&dir.path().join("h.db")).expect("opens");
        store.record(&final_event("a", 10, "failed")).expect("ok");
        store.record(&final_event("b", 20, "failed")).expect("ok");
        store
            .record(&final_event("c", 30, "delivered"))
            .expect("ok");
        store.record(&final_event("d", 99, "failed")).expect("ok");
        let summary = store.failure_summary("acme", 0, 50).expect("ok");
        assert_eq!(
            summary,
            vec![FailureCount {
                result_code: "3001".into(),
                count: 2
            }]
        );
    }
}
