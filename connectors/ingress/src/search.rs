//! Searching the history over HTTP: `GET /v1/messages` lists a client's messages (its own and
//! its customer's that name no client) by acceptance time or by its own message id, filtered
//! by status, channel and recipient, page by page; `GET /v1/stats/senders` gives per-sender
//! delivery rates by result code. Every schema-valid request is answered 200: a period longer
//! than `MAX_PERIOD_MS` is cut to it (the answer says where it ended).

use axum::Json;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use switchyard_history::{HistoryError, MessageQuery};
use switchyard_schemas::now_millis;

use crate::api::{Ingress, authenticate};
use crate::problem::Problem;
use crate::reports::{MAX_PAGE, field_problem};

/// The longest period one search or statistics request covers: 31 days.
pub const MAX_PERIOD_MS: i64 = 31 * 86_400_000;
const DEFAULT_PAGE: usize = 100;
const DAY_MS: i64 = 86_400_000;

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    from: Option<i64>,
    to: Option<i64>,
    client_message_id: Option<String>,
    status: Option<String>,
    channel: Option<String>,
    recipient: Option<String>,
    cursor: Option<String>,
    limit: Option<usize>,
}

/// The period asked for: [`from`, `to`) with `to` by default now and `from` by default a day
/// before `to`, cut to `MAX_PERIOD_MS`.
pub fn period(from: Option<i64>, to: Option<i64>, now: i64) -> (i64, i64) {
    let to = to.unwrap_or(now);
    let from = from.unwrap_or_else(|| to.saturating_sub(DAY_MS));
    (from, to.min(from.saturating_add(MAX_PERIOD_MS)))
}

fn answer_error(e: HistoryError) -> Response {
    match e {
        HistoryError::BadQuery(_) => {
            field_problem("cursor", "is not a next_cursor of an earlier page").into_response()
        }
        e => Problem::unavailable(e.to_string()).into_response(),
    }
}

/// `GET /v1/messages`.
pub async fn list(
    State(ingress): State<Ingress>,
    headers: HeaderMap,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let client = match authenticate(&ingress, &headers) {
        Ok(client) => client,
        Err(problem) => return problem.into_response(),
    };
    let Ok(Query(query)) = query else {
        return field_problem("query", "has a malformed parameter").into_response();
    };
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return field_problem("limit", "must be 1 to 1000").into_response();
    }
    // By the client's own id the period is open unless given.
    let (from, to) = match (&query.client_message_id, query.from, query.to) {
        (Some(_), None, None) => (i64::MIN, i64::MAX),
        (Some(_), from, to) => (from.unwrap_or(i64::MIN), to.unwrap_or(i64::MAX)),
        (None, from, to) => period(from, to, now_millis()),
    };
    let search = MessageQuery {
        customer_id: client.customer_id.clone(),
        client_id: client.client_id.clone(),
        from,
        to,
        client_message_id: query.client_message_id,
        status: query.status,
        channel: query.channel,
        recipient: query.recipient,
    };
    match ingress
        .history
        .search(&search, query.cursor.as_deref(), limit)
        .await
    {
        Ok(page) => Json(json!({
            "from": (from != i64::MIN).then_some(from),
            "to": (to != i64::MAX).then_some(to),
            "messages": page.messages,
            "next_cursor": page.next_cursor,
        }))
        .into_response(),
        Err(e) => answer_error(e),
    }
}

#[derive(Debug, Deserialize)]
pub struct StatsQuery {
    from: Option<i64>,
    to: Option<i64>,
}

/// `GET /v1/stats/senders`: the customer's final outcomes in the period, per sender.
pub async fn senders(
    State(ingress): State<Ingress>,
    headers: HeaderMap,
    query: Result<Query<StatsQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let client = match authenticate(&ingress, &headers) {
        Ok(client) => client,
        Err(problem) => return problem.into_response(),
    };
    let Ok(Query(query)) = query else {
        return field_problem("query", "has a malformed parameter").into_response();
    };
    let (from, to) = period(query.from, query.to, now_millis());
    match ingress
        .history
        .sender_stats(&client.customer_id, from, to)
        .await
    {
        Ok(senders) => Json(json!({"from": from, "to": to, "senders": senders})).into_response(),
        Err(e) => answer_error(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_default_to_the_last_day_and_are_cut_to_31_days() {
        assert_eq!(period(None, None, 10 * DAY_MS), (9 * DAY_MS, 10 * DAY_MS));
        assert_eq!(period(Some(5), None, 100), (5, 100));
        assert_eq!(period(Some(0), Some(i64::MAX), 1), (0, MAX_PERIOD_MS));
        assert_eq!(period(None, Some(i64::MIN), 1), (i64::MIN, i64::MIN));
        assert_eq!(period(Some(7), Some(3), 1), (7, 3), "empty, not an error");
    }
}
