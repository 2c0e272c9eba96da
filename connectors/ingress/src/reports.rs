//! The pull side of reports: `GET /v1/reports?status=undelivered&cursor=…` lists the client's
//! final reports whose webhook has not succeeded, `POST /v1/reports/ack` marks reports received
//! (an event on `callbacks.acks`), and `GET /v1/reports/summary?date=YYYY-MM-DD` counts a KST
//! day's failed messages by result code.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::json;
use switchyard_runtime::Output;
use switchyard_runtime::names::REPORT_ACKS;
use switchyard_schemas::{ReportAck, now_millis};

use crate::api::{Ingress, authenticate, remember};
use crate::problem::{FieldError, Problem};

/// Most reports in one page, and the default.
pub const MAX_PAGE: usize = 1000;
const DEFAULT_PAGE: usize = 100;
/// Korea Standard Time, UTC+9, in milliseconds.
const KST_OFFSET_MS: i64 = 9 * 3_600_000;
const DAY_MS: i64 = 86_400_000;

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    status: Option<String>,
    cursor: Option<String>,
    limit: Option<usize>,
}

pub(crate) fn field_problem(field: &str, message: &str) -> Problem {
    Problem::invalid(
        format!("{field} {message}"),
        vec![FieldError {
            index: 0,
            field: field.into(),
            message: message.into(),
        }],
    )
}

/// `GET /v1/reports`.
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
    if query.status.as_deref().is_some_and(|s| s != "undelivered") {
        return field_problem("status", "must be undelivered").into_response();
    }
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return field_problem("limit", "must be 1 to 1000").into_response();
    }
    let found = ingress
        .history
        .undelivered(
            &client.customer_id,
            &client.client_id,
            query.cursor.as_deref(),
            limit,
        )
        .await;
    match found {
        Ok(page) => Json(page).into_response(),
        Err(switchyard_history::HistoryError::BadQuery(_)) => {
            field_problem("cursor", "is not a next_cursor of an earlier page").into_response()
        }
        Err(e) => Problem::unavailable(e.to_string()).into_response(),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AckBody {
    message_ids: Vec<String>,
}

/// `POST /v1/reports/ack`: each final report the client's pull list can show is acknowledged;
/// other ids (another client's, not final yet, unknown) are listed as not found.
pub async fn ack(
    State(ingress): State<Ingress>,
    headers: HeaderMap,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(rejection) => return Problem::of_body(&rejection).into_response(),
    };
    let client = match authenticate(&ingress, &headers) {
        Ok(client) => client,
        Err(problem) => return problem.into_response(),
    };
    let body: AckBody = match serde_json::from_slice(&body) {
        Ok(body) => body,
        Err(e) => return field_problem("message_ids", &e.to_string()).into_response(),
    };
    if body.message_ids.is_empty() || body.message_ids.len() > MAX_PAGE {
        return field_problem("message_ids", "must hold 1 to 1000 ids").into_response();
    }
    let (customer, client_id) = (&client.customer_id, &client.client_id);
    let lookups: Vec<_> = body
        .message_ids
        .iter()
        .map(|id| ingress.history.ackable(customer, client_id, id))
        .collect();
    let found: Vec<_> = futures::stream::iter(lookups).buffered(32).collect().await;
    let owned = body.message_ids.into_iter().zip(found);
    let now = now_millis();
    let (mut acks, mut not_found) = (Vec::new(), Vec::new());
    for (id, mine) in owned {
        match mine {
            Ok(true) => acks.push(ReportAck {
                message_id: id,
                customer_id: client.customer_id.clone(),
                client_id: client.client_id.clone(),
                acked_at: now,
            }),
            Ok(false) => not_found.push(id),
            Err(e) => return Problem::unavailable(e.to_string()).into_response(),
        }
    }
    let outputs: Vec<Output> = acks
        .iter()
        .map(|a| Output::new(REPORT_ACKS, a.message_id.clone(), a.clone()))
        .collect();
    let written = match ingress.runtime.publish("ingress", &outputs).await {
        Ok(written) => written,
        Err(e) => return Problem::of_publish(&e).into_response(),
    };
    // Read your writes: the next list no longer shows them.
    remember(&ingress.history, &acks, &written).await;
    let acked: Vec<&str> = acks.iter().map(|a| a.message_id.as_str()).collect();
    Json(json!({"acked": acked, "not_found": not_found})).into_response()
}

#[derive(Debug, Deserialize)]
pub struct SummaryQuery {
    date: Option<String>,
}

/// `GET /v1/reports/summary?date=YYYY-MM-DD` (a KST day; today by default).
pub async fn summary(
    State(ingress): State<Ingress>,
    headers: HeaderMap,
    query: Result<Query<SummaryQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let client = match authenticate(&ingress, &headers) {
        Ok(client) => client,
        Err(problem) => return problem.into_response(),
    };
    let Ok(Query(query)) = query else {
        return field_problem("query", "has a malformed parameter").into_response();
    };
    let start = match query.date.as_deref() {
        Some(date) => match kst_day_start(date) {
            Some(start) => start,
            None => return field_problem("date", "must be YYYY-MM-DD").into_response(),
        },
        None => (now_millis() + KST_OFFSET_MS).div_euclid(DAY_MS) * DAY_MS - KST_OFFSET_MS,
    };
    let counted = ingress
        .history
        .failure_summary(&client.customer_id, start, start + DAY_MS)
        .await;
    match counted {
        Ok(counts) => {
            let total: i64 = counts.iter().map(|c| c.count).sum();
            let date = civil_date((start + KST_OFFSET_MS).div_euclid(DAY_MS));
            Json(json!({"date": date, "failed": total, "by_result_code": counts})).into_response()
        }
        Err(e) => Problem::unavailable(e.to_string()).into_response(),
    }
}

/// The first millisecond of a KST day `YYYY-MM-DD`.
pub fn kst_day_start(date: &str) -> Option<i64> {
    let mut parts = date.splitn(3, '-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    let (y, m, d): (i64, u32, u32) = (y.parse().ok()?, m.parse().ok()?, d.parse().ok()?);
    let days = days_from_civil(y, m, d)?;
    Some(days * DAY_MS - KST_OFFSET_MS)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> Option<i64> {
    let month_days = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let max = if m == 2 && leap {
        29
    } else {
        *month_days.get(m.checked_sub(1)? as usize)?
    };
    if d == 0 || d > max {
        return None;
    }
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

/// `YYYY-MM-DD` of a day number (inverse of `days_from_civil`).
fn civil_date(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kst_days_start_at_fifteen_utc_the_day_before() {
        // 2026-11-23 00:00 KST = 2026-11-22 15:00 UTC = 1_795_359_600_000 ms.
        assert_eq!(kst_day_start("2026-11-23"), Some(1_795_359_600_000));
        assert_eq!(kst_day_start("1970-01-01"), Some(-KST_OFFSET_MS));
        assert_eq!(kst_day_start("2024-02-29").map(|_| ()), Some(()));
        for bad in [
            "2023-02-29",
            "2026-13-01",
            "2026-1-01",
            "26-01-01",
            "2026-01-00",
            "x",
        ] {
            assert_eq!(kst_day_start(bad), None, "{bad}");
        }
    }

    #[test]
    fn dates_round_trip() {
        for date in ["1970-01-01", "2000-02-29", "2026-11-23", "2099-12-31"] {
            let start = kst_day_start(date).expect("valid");
            assert_eq!(civil_date((start + KST_OFFSET_MS) / DAY_MS), date);
        }
    }
}
