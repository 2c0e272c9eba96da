//! Searching a customer's messages (by client message id, or by acceptance time filtered by
//! status, channel and recipient, page by page) and per-sender delivery statistics: the types,
//! the shared rules, and the SQLite queries. The CQL queries are in `cql/search.rs`.

use std::collections::BTreeMap;

use rusqlite::params;
use serde::Serialize;

use crate::cursor::{encode, start_after};
use crate::{HistoryError, SqliteHistory};

/// What to list: a client's messages (its own and its customer's that name no client) accepted
/// in [`from`, `to`) ms, or all with `client_message_id`, narrowed by the filters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageQuery {
    pub customer_id: String,
    pub client_id: String,
    pub from: i64,
    pub to: i64,
    pub client_message_id: Option<String>,
    pub status: Option<String>,
    pub channel: Option<String>,
    pub recipient: Option<String>,
}

impl MessageQuery {
    /// Whether a message with these fields is one the query lists.
    pub(crate) fn matches(&self, m: &MessageSummary, customer_id: Option<&str>) -> bool {
        let at = m.accepted_at.unwrap_or(0);
        customer_id == Some(self.customer_id.as_str())
            && m.client_id.as_deref().is_none_or(|c| c == self.client_id)
            && (self.from..self.to).contains(&at)
            && same(&self.client_message_id, &m.client_message_id)
            && self.status.as_deref().is_none_or(|s| s == m.status)
            && same(&self.channel, &m.channel)
            && same(&self.recipient, &m.to)
    }
}

fn same(wanted: &Option<String>, has: &Option<String>) -> bool {
    wanted.is_none() || wanted == has
}

/// A message in a search result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MessageSummary {
    pub message_id: String,
    pub client_id: Option<String>,
    pub client_message_id: Option<String>,
    pub channel: Option<String>,
    pub to: Option<String>,
    pub status: String,
    pub result_code: Option<String>,
    pub accepted_at: Option<i64>,
    pub done_at: Option<i64>,
}

/// A page of messages, oldest accepted first, and the cursor of the next (none: the last).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MessagePage {
    pub messages: Vec<MessageSummary>,
    pub next_cursor: Option<String>,
}

/// A page of at most `limit` out of `limit + 1` found.
pub(crate) fn message_page(mut messages: Vec<MessageSummary>, limit: usize) -> MessagePage {
    let next_cursor = if messages.len() > limit {
        messages.truncate(limit);
        messages
            .last()
            .map(|m| encode(m.accepted_at.unwrap_or(0), &m.message_id))
    } else {
        None
    };
    MessagePage {
        messages,
        next_cursor,
    }
}

/// One sender's final outcomes in a period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SenderStats {
    pub sender: String,
    pub total: i64,
    pub delivered: i64,
    /// delivered / total, 0 to 1.
    pub delivery_rate: f64,
    /// Messages per result code, most first.
    pub by_result_code: Vec<ResultCount>,
}

/// Messages with one result code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResultCount {
    pub result_code: String,
    pub count: i64,
}

/// Per-sender statistics of final outcomes `(sender, result code, status, count)`.
pub(crate) fn sender_stats(
    outcomes: impl IntoIterator<Item = (String, String, String, i64)>,
) -> Vec<SenderStats> {
    let mut by_sender: BTreeMap<String, (i64, BTreeMap<String, i64>)> = BTreeMap::new();
    for (sender, code, status, count) in outcomes {
        let entry = by_sender.entry(sender).or_default();
        if status == "delivered" {
            entry.0 += count;
        }
        *entry.1.entry(code).or_default() += count;
    }
    by_sender
        .into_iter()
        .map(|(sender, (delivered, codes))| {
            let total: i64 = codes.values().sum();
            let mut by_result_code: Vec<ResultCount> = codes
                .into_iter()
                .map(|(result_code, count)| ResultCount { result_code, count })
                .collect();
            by_result_code.sort_by(|a, b| {
                b.count
                    .cmp(&a.count)
                    .then_with(|| a.result_code.cmp(&b.result_code))
            });
            SenderStats {
                sender,
                total,
                delivered,
                delivery_rate: if total == 0 {
                    0.0
                } else {
                    delivered as f64 / total as f64
                },
                by_result_code,
            }
        })
        .collect()
}

impl SqliteHistory {
    /// Messages the query lists, after `cursor`, at most `limit`.
    pub fn search(
        &self,
        query: &MessageQuery,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<MessagePage, HistoryError> {
        let (after_at, after_id) = start_after(cursor)?;
        let connection = self.lock();
        // Written so SQLite can use an index: with a client message id, its equality (on
        // `messages_by_client_message_id`); else the acceptance-time range in index order (on
        // `messages_by_customer`; for a range starting after 0 a message without a time, taken
        // as 0, cannot match either way). `?7 IS NULL OR …` or `coalesce(…)` scan every one
        // of the customer's messages.
        let (by_client_message_id, at) = match (&query.client_message_id, query.from > 0) {
            (Some(_), _) => ("client_message_id = ?7", "coalesce(accepted_at, 0)"),
            (None, true) => ("?7 IS NULL", "accepted_at"),
            (None, false) => ("?7 IS NULL", "coalesce(accepted_at, 0)"),
        };
        let mut statement = connection.prepare_cached(&format!(
            "SELECT message_id, client_id, client_message_id, channel, recipient, status,
                    result_code, accepted_at, done_at
             FROM messages
             WHERE customer_id = ?1 AND (client_id = ?2 OR client_id IS NULL)
               AND {at} >= ?3 AND {at} < ?4
               AND ({at} > ?5 OR ({at} = ?5 AND message_id > ?6))
               AND {by_client_message_id}
               AND (?8 IS NULL OR status = ?8)
               AND (?9 IS NULL OR channel = ?9)
               AND (?10 IS NULL OR recipient = ?10)
             ORDER BY {at}, message_id
             LIMIT ?11"
        ))?;
        let rows = statement.query_map(
            params![
                query.customer_id,
                query.client_id,
                query.from,
                query.to,
                after_at,
                after_id,
                query.client_message_id,
                query.status,
                query.channel,
                query.recipient,
                (limit + 1) as i64
            ],
            |row| {
                Ok(MessageSummary {
                    message_id: row.get(0)?,
                    client_id: row.get(1)?,
                    client_message_id: row.get(2)?,
                    channel: row.get(3)?,
                    to: row.get(4)?,
                    status: row.get(5)?,
                    result_code: row.get(6)?,
                    accepted_at: row.get(7)?,
                    done_at: row.get(8)?,
                })
            },
        )?;
        Ok(message_page(rows.collect::<Result<_, _>>()?, limit))
    }

    /// Final outcomes of `customer_id` finished in [`from`, `to`) ms, per sender.
    pub fn sender_stats(
        &self,
        customer_id: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<SenderStats>, HistoryError> {
        let connection = self.lock();
        let mut statement = connection.prepare_cached(
            "SELECT sender, coalesce(result_code, ''), status, count(*) FROM messages
             WHERE customer_id = ?1 AND stage = 9 AND sender IS NOT NULL
               AND done_at >= ?2 AND done_at < ?3
             GROUP BY 1, 2, 3",
        )?;
        let rows = statement.query_map(params![customer_id, from, to], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })?;
        Ok(sender_stats(rows.collect::<Result<Vec<_>, _>>()?))
    }
}
