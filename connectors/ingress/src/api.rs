//! The ingress routes: `POST /v1/messages`, `GET /v1/messages/{id}`, the searches, `/healthz`,
//! `/openapi.json`.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
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
use crate::request::{parse, stamp};

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

/// Every route of the ingress (`/metrics` is not one: it is served on the metrics address). Any
/// other path is a 404 and a method a path does not take a 405, both problem+json; a body
/// declared (`Content-Length`) larger than [`MAX_BODY_BYTES`] is a 413 before it is read.
pub fn router(ingress: Ingress) -> Router {
    Router::new()
        .route("/v1/messages", post(submit).get(crate::search::list))
        .route("/v1/messages/{message_id}", get(status))
        .route("/v1/reports", get(crate::reports::list))
        .route("/v1/reports/ack", post(crate::reports::ack))
        .route("/v1/reports/summary", get(crate::reports::summary))
        .route("/v1/stats/senders", get(crate::search::senders))
        .route("/healthz", get(healthz))
        .route(
            "/openapi.json",
            get(|| async { ([(header::CONTENT_TYPE, "application/json")], crate::OPENAPI) }),
        )
        .fallback(|| async { Problem::not_found("no such path; the API is /openapi.json") })
        .method_not_allowed_fallback(|| async {
            Problem::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "Method not allowed",
                "this path does not take this method; see the Allow header",
            )
        })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn(refuse_declared_oversize))
        .with_state(ingress)
}

/// `GET /healthz`: the health of this process's roles — 200, or 503 once a role failed or a
/// stage is stuck (a poison record, a broker refusing a topic), with the reason.
async fn healthz(State(ingress): State<Ingress>) -> Response {
    let report = ingress.runtime.health.report();
    let status = if report.status == "ok" {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(report)).into_response()
}

/// A request whose `Content-Length` is over [`MAX_BODY_BYTES`] is answered 413 at once, without
/// waiting for a body that would be refused anyway (the body limit catches chunked bodies as
/// they arrive).
async fn refuse_declared_oversize(request: Request, next: Next) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|length| length > MAX_BODY_BYTES as u64) {
        return Problem::body_too_large().into_response();
    }
    next.run(request).await
}

pub(crate) fn authenticate(
    ingress: &Ingress,
    headers: &HeaderMap,
) -> Result<ApiClientConfig, Problem> {
    let mut given = headers.get_all(header::AUTHORIZATION).iter();
    let first = given.next();
    if given.next().is_some() {
        return Err(Problem::ambiguous(
            "two Authorization headers: send one Authorization header",
        ));
    }
    let key = first
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token)
        .filter(|k| !k.is_empty())
        .ok_or_else(|| Problem::unauthorized("send Authorization: Bearer <api key>"))?;
    ingress
        .tables
        .client_by_key_hash(&hash_api_key(key))
        .ok_or_else(|| Problem::unauthorized("this API key is not known or is disabled"))
}

/// Whether `client` may see a message of `customer_id` sent by `client_id`: messages are per
/// API client, its own and its customer's that name no client (produced to the intake topic
/// directly), as in the searches and the report pull.
pub(crate) fn visible_to(
    client: &ApiClientConfig,
    customer_id: Option<&str>,
    client_id: Option<&str>,
) -> bool {
    customer_id == Some(client.customer_id.as_str())
        && client_id.is_none_or(|c| c == client.client_id)
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
        let submission = stamp(
            message,
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
        Ok(Some(view))
            if visible_to(
                &client,
                view.customer_id.as_deref(),
                view.client_id.as_deref(),
            ) =>
        {
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
    use super::{bearer_token, visible_to};
    use switchyard_schemas::ApiClientConfig;

    fn client(customer: &str, id: &str) -> ApiClientConfig {
        ApiClientConfig {
            client_id: id.into(),
            customer_id: customer.into(),
            key_hash: String::new(),
            report_url: None,
            signing_secret: None,
            signing_secret_previous: None,
            enabled: true,
            rate_limit_per_second: None,
        }
    }

    #[test]
    fn a_message_is_its_clients_and_one_naming_no_client_is_its_customers() {
        let web = client("acme", "acme-web");
        assert!(visible_to(&web, Some("acme"), Some("acme-web")));
        assert!(!visible_to(&web, Some("acme"), Some("acme-batch")));
        assert!(visible_to(&web, Some("acme"), None));
        assert!(!visible_to(&web, Some("beta"), Some("acme-web")));
        assert!(!visible_to(&web, Some("beta"), None));
        assert!(!visible_to(&web, None, None));
    }

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
