//! Searching messages and per-sender statistics on CQL: candidates from a lookup table (by
//! client message id, or by day of acceptance in time order), each checked against its
//! summary row, which holds the current status.

use futures::{StreamExt, TryStreamExt};

use super::read::MAX_SUMMARY_DAYS;
use super::{CqlHistory, errors};
use crate::HistoryError;
use crate::cursor::start_after;
use crate::retention::DAY_MS;
use crate::search::{
    MessagePage, MessageQuery, MessageSummary, SenderStats, message_page, sender_stats,
};

/// Summary rows read at once while checking candidates.
const CONCURRENCY: usize = 32;

impl CqlHistory {
    /// The summary of a candidate, if the query lists it.
    async fn listed(
        &self,
        query: &MessageQuery,
        id: String,
    ) -> Result<Option<MessageSummary>, HistoryError> {
        let Some(row) = self.summary_of(&id).await? else {
            return Ok(None);
        };
        let summary = MessageSummary {
            message_id: id,
            client_id: row.client_id,
            client_message_id: row.client_message_id,
            channel: row.channel,
            to: row.recipient,
            status: row.status.unwrap_or_else(|| "accepted".into()),
            result_code: row.result_code,
            accepted_at: row.accepted_at,
            done_at: row.done_at,
        };
        Ok(query
            .matches(&summary, row.customer_id.as_deref())
            .then_some(summary))
    }

    /// Messages the query lists, after `cursor`, at most `limit`.
    pub async fn search(
        &self,
        query: &MessageQuery,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<MessagePage, HistoryError> {
        let after = start_after(cursor)?;
        let (session, st) = (&self.inner.session, &self.inner.statements);
        if let Some(client_message_id) = &query.client_message_id {
            let ids: Vec<String> = session
                .execute_iter(
                    st.select_by_client_message_id.clone(),
                    (&query.customer_id, client_message_id),
                )
                .await
                .map_err(errors::paging)?
                .rows_stream::<(String,)>()
                .map_err(errors::shape)?
                .map_ok(|(id,)| id)
                .try_collect()
                .await
                .map_err(errors::paging)?;
            let checks: Vec<_> = ids.into_iter().map(|id| self.listed(query, id)).collect();
            let found: Vec<Option<MessageSummary>> = futures::stream::iter(checks)
                .buffered(CONCURRENCY)
                .try_collect()
                .await?;
            let mut found: Vec<MessageSummary> = found
                .into_iter()
                .flatten()
                .filter(|m| (m.accepted_at.unwrap_or(0), m.message_id.clone()) > after)
                .collect();
            found.sort_by(|a, b| {
                (a.accepted_at.unwrap_or(0), &a.message_id)
                    .cmp(&(b.accepted_at.unwrap_or(0), &b.message_id))
            });
            found.truncate(limit + 1);
            return Ok(message_page(found, limit));
        }
        if query.to <= query.from {
            return Ok(message_page(Vec::new(), limit));
        }
        let (first, last) = (
            query.from.div_euclid(DAY_MS),
            (query.to - 1).div_euclid(DAY_MS),
        );
        if last - first >= MAX_SUMMARY_DAYS {
            return Err(HistoryError::BadQuery(format!(
                "a search covers at most {MAX_SUMMARY_DAYS} days"
            )));
        }
        let start = after.clone().max((query.from, String::new()));
        let mut found = Vec::new();
        for day in start.0.div_euclid(DAY_MS).max(first)..=last {
            let mut select = st.select_by_day.clone();
            select.set_page_size(i32::try_from(limit + 1).unwrap_or(i32::MAX).min(1000));
            let mut candidates = session
                .execute_iter(select, (&query.customer_id, day, start.0, &start.1))
                .await
                .map_err(errors::paging)?
                .rows_stream::<(i64, String)>()
                .map_err(errors::shape)?;
            let mut done = false;
            while found.len() <= limit && !done {
                // A chunk of candidates in order, checked concurrently.
                let mut chunk = Vec::new();
                while chunk.len() < CONCURRENCY {
                    match candidates.try_next().await.map_err(errors::paging)? {
                        Some((at, _)) if at >= query.to => {
                            done = true;
                            break;
                        }
                        Some((_, id)) => chunk.push(id),
                        None => {
                            done = true;
                            break;
                        }
                    }
                }
                let checks: Vec<_> = chunk.into_iter().map(|id| self.listed(query, id)).collect();
                let checked: Vec<Option<MessageSummary>> = futures::stream::iter(checks)
                    .buffered(CONCURRENCY)
                    .try_collect()
                    .await?;
                found.extend(checked.into_iter().flatten());
            }
            if found.len() > limit {
                break;
            }
        }
        found.truncate(limit + 1);
        Ok(message_page(found, limit))
    }

    /// Final outcomes of `customer_id` finished in [`from`, `to`) ms, per sender.
    pub async fn sender_stats(
        &self,
        customer_id: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<SenderStats>, HistoryError> {
        if to <= from {
            return Ok(Vec::new());
        }
        let (first, last) = (from.div_euclid(DAY_MS), (to - 1).div_euclid(DAY_MS));
        if last - first >= MAX_SUMMARY_DAYS {
            return Err(HistoryError::BadQuery(format!(
                "statistics cover at most {MAX_SUMMARY_DAYS} days"
            )));
        }
        let (session, st) = (&self.inner.session, &self.inner.statements);
        let mut outcomes = Vec::new();
        for day in first..=last {
            let mut rows = session
                .execute_iter(st.select_finals.clone(), (customer_id, day, from, to))
                .await
                .map_err(errors::paging)?
                .rows_stream::<(Option<String>, Option<String>, Option<String>)>()
                .map_err(errors::shape)?;
            while let Some((status, code, sender)) =
                rows.try_next().await.map_err(errors::paging)?
            {
                if let (Some(sender), Some(status)) = (sender, status) {
                    outcomes.push((sender, code.unwrap_or_default(), status, 1));
                }
            }
        }
        Ok(sender_stats(outcomes))
    }
}
