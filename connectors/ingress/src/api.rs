//! The ingress routes: `POST /v1/messages`, `GET /v1/messages/{id}`, the searches, `/healthz`,
//! `/openapi.json`.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use switchyard_config::hash_api_key;
use switchyard_history::{HistoryRecord, HistoryStore};
use switchyard_runtime::{ConfigTables, Origin, Output, Runtime, Written};
use switchyard_schemas::{ApiClientConfig, new_message_id, now_millis};

use crate::problem::{FieldError, Problem};
use crate::rate_limit::{RateLimits, Verdict};
use crate::request::parse;

pub use switchyard_runtime::names::ACCEPTED;

/// What the handlers share.
#[derive(Debug, Clone)]
pub struct Ingress {
    pub runtime: Runtime,
    pub tables: ConfigTables,
    pub history: HistoryStore,
    /// Clients' `rate_limit_per_second` buckets.
    pub limits: std::sync::Arc<RateLimits>,
}

/// The largest request body the ingress reads: room for a batch of 1,000 LMS messages of 2,000
/// bytes of Korean text (about 3 MB in UTF-8, 6 MB with every character `\uXXXX`-escaped as
/// many JSON encoders do) plus the JSON around them.
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// Every route of the ingress (`/metrics` is not one: it is served on the metrics address).
pub fn router(ingress: Ingress) -> Router {
    Router::new()
        .route("/v1/messages", post(submit).get(crate::search::list))
        .route("/v1/messages/{message_id}", get(status))
        .route("/v1/reports", get(crate::reports::list))
        .route("/v1/reports/ack", post(crate::reports::ack))
        .route("/v1/reports/summary", get(crate::reports::summary))
        .route("/v1/stats/senders", get(crate::search::senders))
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route(
            "/openapi.json",
            get(|| async { ([(header::CONTENT_TYPE, "application/json")], crate::OPENAPI) }),
        )
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(ingress)
}

pub(crate) fn authenticate(
    ingress: &Ingress,
    headers: &HeaderMap,
) -> Result<ApiClientConfig, Problem> {
    let key = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token)
        .filter(|k| !k.is_empty())
        .ok_or_else(|| Problem::unauthorized("send Authorization: Bearer <api key>"))?;
    ingress
        .tables
        .client_by_key_hash(&hash_api_key(key))
        .ok_or_else(|| Problem::unauthorized("this API key is not known or is disabled"))
}

/// The credentials of `Bearer <token>`; the scheme name is case-insensitive (RFC 7235).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim_start().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

async fn submit(
    State(ingress): State<Ingress>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(rejection) => return Problem::of_body(&rejection).into_response(),
    };
    match accept(&ingress, &headers, &body).await {
        Ok((answer, limit_headers)) => {
            let mut response = (StatusCode::ACCEPTED, Json(answer)).into_response();
            for (name, value) in limit_headers {
                if let Ok(value) = header::HeaderValue::from_str(&value) {
                    response.headers_mut().insert(name, value);
                }
            }
            response
        }
        Err(problem) => problem.into_response(),
    }
}

/// The client's rate limit for a request of `count` messages: the `RateLimit-*` headers of an
/// accepted request, or the problem of a refused one (429 with `Retry-After`).
fn rate_limit(
    ingress: &Ingress,
    client: &ApiClientConfig,
    count: usize,
) -> Result<Vec<(header::HeaderName, String)>, Problem> {
    let Some(limit) = client.rate_limit_per_second.filter(|l| *l > 0) else {
        return Ok(Vec::new());
    };
    let limit = limit as u32;
    let cost = u32::try_from(count).unwrap_or(u32::MAX);
    let name = |n: &'static str| header::HeaderName::from_static(n);
    match ingress
        .limits
        .charge(&client.client_id, limit, cost, now_millis())
    {
        Verdict::Allowed { remaining } => Ok(vec![
            (name("ratelimit-limit"), limit.to_string()),
            (name("ratelimit-remaining"), remaining.to_string()),
            (name("ratelimit-reset"), "1".to_string()),
        ]),
        Verdict::Limited { retry_after_ms } => {
            let seconds = ((retry_after_ms + 999) / 1000).max(1);
            Err(Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate-limited",
                "Too many messages",
                format!(
                    "this client may send {limit} messages per second; retry in {retry_after_ms} ms"
                ),
            )
            .with_headers(vec![
                (header::RETRY_AFTER, seconds.to_string()),
                (name("ratelimit-limit"), limit.to_string()),
                (name("ratelimit-remaining"), "0".to_string()),
                (name("ratelimit-reset"), seconds.to_string()),
            ]))
        }
        Verdict::TooMany => Err(Problem::invalid(
            format!("{count} messages; this client may send at most {limit} per second"),
            vec![FieldError {
                index: 0,
                field: "messages".into(),
                message: format!("has more than the client's {limit} per second"),
            }],
        )),
    }
}

/// Produce every message to the intake topic; answer only once the broker acknowledged all.
async fn accept(
    ingress: &Ingress,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(serde_json::Value, Vec<(header::HeaderName, String)>), Problem> {
    let client = authenticate(ingress, headers)?;
    let parsed = parse(body)?;
    let limit_headers = rate_limit(ingress, &client, parsed.messages.len())?;
    let now = now_millis();
    let mut accepted = Vec::with_capacity(parsed.messages.len());
    let mut outputs = Vec::with_capacity(parsed.messages.len());
    let mut submissions = Vec::with_capacity(parsed.messages.len());
    for message in parsed.messages {
        let message_id = new_message_id();
        let submission = message.into_submission(
            message_id.clone(),
            &client.customer_id,
            &client.client_id,
            now,
        );
        accepted.push(
            json!({"message_id": message_id, "client_message_id": submission.client_message_id}),
        );
        outputs.push(Output::new(
            ACCEPTED,
            client.customer_id.clone(),
            submission.clone(),
        ));
        submissions.push(submission);
    }
    let written = ingress
        .runtime
        .publish_atomic("ingress", &outputs)
        .await
        .map_err(|e| Problem::of_publish(&e))?;
    remember(&ingress.history, &submissions, &written).await;
    tracing::debug!(client = %client.client_id, count = accepted.len(), "accepted");
    let answer = if parsed.batch {
        json!({"messages": accepted})
    } else {
        accepted.remove(0)
    };
    Ok((answer, limit_headers))
}

/// Read your writes: put the events of records just published (`written`, in the same order)
/// in the history at once, as the history stage will derive them from the same records (same
/// keys, so each is kept once), so the next GET sees them. A failure here loses nothing: the
/// history stage writes them.
pub(crate) async fn remember<T: HistoryRecord>(
    history: &HistoryStore,
    records: &[T],
    written: &[Written],
) {
    let events: Vec<_> = records
        .iter()
        .zip(written)
        .map(|(record, at)| {
            record.event(Origin {
                topic: &at.topic,
                partition: at.partition,
                offset: at.offset,
                timestamp: None,
                key: None,
            })
        })
        .collect();
    if let Err(e) = history.record_all(&events).await {
        tracing::warn!(error = %e, "published records not yet in the history");
    }
}

async fn status(
    State(ingress): State<Ingress>,
    headers: HeaderMap,
    Path(message_id): Path<String>,
) -> Response {
    let client = match authenticate(&ingress, &headers) {
        Ok(client) => client,
        Err(problem) => return problem.into_response(),
    };
    match ingress.history.message(&message_id).await {
        Ok(Some(view)) if view.customer_id.as_deref() == Some(client.customer_id.as_str()) => {
            Json(view).into_response()
        }
        Ok(_) => {
            Problem::not_found(format!("no message {message_id} for this client")).into_response()
        }
        Err(e) => Problem::unavailable(e.to_string()).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::bearer_token;

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        for header in ["Bearer k1", "bearer k1", "BEARER k1", "bEaReR   k1 "] {
            assert_eq!(bearer_token(header), Some("k1"), "{header:?}");
        }
    }

    #[test]
    fn other_schemes_and_no_token_are_refused() {
        for header in ["Basic k1", "Bearerk1", "k1", ""] {
            assert_eq!(bearer_token(header), None, "{header:?}");
        }
        assert_eq!(bearer_token("Bearer "), Some(""));
    }
}
