//! The queries, each on the table shaped for it; multi-row reads page through the driver.

use futures::TryStreamExt;
use scylla::DeserializeRow;

use super::{CqlHistory, errors};
use crate::cursor::{page_of, start_after};
use crate::event::Stage;
use crate::pull::{FailureCount, PullableReport, ReportPage};
use crate::retention::DAY_MS;
use crate::{EventView, HistoryError, MessageView};

/// Most UTC days one failure summary reads (one partition each).
pub(super) const MAX_SUMMARY_DAYS: i64 = 366;
/// Rows per page the driver fetches for the pull list.
const PULL_PAGE: i32 = 500;

/// A `messages` row.
#[derive(Debug, DeserializeRow)]
pub(super) struct MessageRow {
    pub customer_id: Option<String>,
    pub client_id: Option<String>,
    pub client_message_id: Option<String>,
    pub channel: Option<String>,
    pub recipient: Option<String>,
    pub status: Option<String>,
    pub stage: Option<i32>,
    pub result_code: Option<String>,
    pub result_text: Option<String>,
    pub carrier: Option<String>,
    pub sender: Option<String>,
    pub accepted_at: Option<i64>,
    pub done_at: Option<i64>,
    pub callback_state: Option<String>,
    pub callback_rank: Option<i32>,
}

#[derive(Debug, DeserializeRow)]
struct EventRow {
    kind: String,
    at: i64,
    detail: Option<String>,
}

#[derive(Debug, DeserializeRow)]
struct PendingRow {
    done_at: i64,
    message_id: String,
    client_id: Option<String>,
    client_message_id: Option<String>,
    channel: Option<String>,
    recipient: Option<String>,
    status: Option<String>,
    result_code: Option<String>,
    result_text: Option<String>,
    callback_state: Option<String>,
}

impl CqlHistory {
    /// The summary row of a message, if any event of it was kept.
    pub(super) async fn summary_of(&self, id: &str) -> Result<Option<MessageRow>, HistoryError> {
        if id.is_empty() {
            // No message has an empty id (CQL refuses an empty partition key): asking for one
            // (an ack of "") finds nothing rather than failing.
            return Ok(None);
        }
        let (session, st) = (&self.inner.session, &self.inner.statements);
        session
            .execute_unpaged(&st.select_message, (id,))
            .await
            .map_err(errors::execution)?
            .into_rows_result()
            .map_err(errors::shape)?
            .maybe_first_row::<MessageRow>()
            .map_err(errors::shape)
    }

    /// A message and its events, oldest first (same-millisecond events in event key order).
    pub async fn message(&self, id: &str) -> Result<Option<MessageView>, HistoryError> {
        let (session, st) = (&self.inner.session, &self.inner.statements);
        let Some(row) = self.summary_of(id).await? else {
            return Ok(None);
        };
        let events: Vec<EventView> = session
            .execute_iter(st.select_events.clone(), (id,))
            .await
            .map_err(errors::paging)?
            .rows_stream::<EventRow>()
            .map_err(errors::shape)?
            .map_ok(|e| EventView {
                kind: e.kind,
                at: e.at,
                detail: e
                    .detail
                    .and_then(|d| serde_json::from_str(&d).ok())
                    .unwrap_or(serde_json::Value::Null),
            })
            .try_collect()
            .await
            .map_err(errors::paging)?;
        Ok(Some(MessageView {
            message_id: id.to_string(),
            customer_id: row.customer_id,
            client_id: row.client_id,
            client_message_id: row.client_message_id,
            channel: row.channel,
            to: row.recipient,
            status: row.status.unwrap_or_else(|| "accepted".into()),
            result_code: row.result_code,
            result_text: row.result_text,
            carrier: row.carrier,
            sender: row.sender,
            accepted_at: row.accepted_at,
            done_at: row.done_at,
            callback_state: row.callback_state,
            events,
        }))
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
        let (after_done, after_id) = start_after(cursor)?;
        let (session, st) = (&self.inner.session, &self.inner.statements);
        let mut select = st.select_pending.clone();
        select.set_page_size(PULL_PAGE);
        let mut rows = session
            .execute_iter(select, (customer_id, after_done, after_id))
            .await
            .map_err(errors::paging)?
            .rows_stream::<PendingRow>()
            .map_err(errors::shape)?;
        let mut reports = Vec::new();
        while reports.len() <= limit {
            let Some(row) = rows.try_next().await.map_err(errors::paging)? else {
                break;
            };
            let mine = row.client_id.as_deref().is_none_or(|c| c == client_id);
            // A row with no status holds only a webhook state written before its final report
            // row: not a report yet.
            let Some(status) = row.status else { continue };
            if mine {
                reports.push(PullableReport {
                    message_id: row.message_id,
                    client_message_id: row.client_message_id,
                    channel: row.channel,
                    to: row.recipient,
                    status,
                    result_code: row.result_code,
                    result_text: row.result_text,
                    done_at: Some(row.done_at),
                    callback_state: row.callback_state,
                });
            }
        }
        Ok(page_of(reports, limit))
    }

    /// Whether `client_id` of `customer_id` may acknowledge `message_id`: a final report of
    /// its own (or of its customer, naming no client).
    pub async fn ackable(
        &self,
        customer_id: &str,
        client_id: &str,
        message_id: &str,
    ) -> Result<bool, HistoryError> {
        Ok(self.summary_of(message_id).await?.is_some_and(|row| {
            row.customer_id.as_deref() == Some(customer_id)
                && row.client_id.as_deref().is_none_or(|c| c == client_id)
                && row.stage == Some(Stage::Final as i32)
        }))
    }

    /// Failed messages of `customer_id` finished in [`from`, `to`) (ms), counted by result
    /// code, most first; at most `MAX_SUMMARY_DAYS` days.
    pub async fn failure_summary(
        &self,
        customer_id: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<FailureCount>, HistoryError> {
        if to <= from {
            return Ok(Vec::new());
        }
        let (first, last) = (from.div_euclid(DAY_MS), (to - 1).div_euclid(DAY_MS));
        if last - first >= MAX_SUMMARY_DAYS {
            return Err(HistoryError::BadQuery(format!(
                "a summary covers at most {MAX_SUMMARY_DAYS} days"
            )));
        }
        let (session, st) = (&self.inner.session, &self.inner.statements);
        let mut counts = std::collections::BTreeMap::<String, i64>::new();
        for day in first..=last {
            let mut rows = session
                .execute_iter(st.select_finals.clone(), (customer_id, day, from, to))
                .await
                .map_err(errors::paging)?
                .rows_stream::<(Option<String>, Option<String>, Option<String>)>()
                .map_err(errors::shape)?;
            while let Some((status, code, _)) = rows.try_next().await.map_err(errors::paging)? {
                if matches!(status.as_deref(), Some("failed" | "expired" | "rejected")) {
                    *counts.entry(code.unwrap_or_default()).or_default() += 1;
                }
            }
        }
        let mut summary: Vec<FailureCount> = counts
            .into_iter()
            .map(|(result_code, count)| FailureCount { result_code, count })
            .collect();
        summary.sort_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then_with(|| a.result_code.cmp(&b.result_code))
        });
        Ok(summary)
    }
}
