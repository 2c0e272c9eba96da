//! The carrier bench's webhook receiver: checks each webhook's signature as a client would and
//! stamps when the first webhook of each client message id arrived (a hash map, so it costs the
//! same at the 20,000th webhook as at the first).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use switchyard_callback::signature::verify;
use switchyard_callback::{SIGNATURE_HEADER, WebhookBody};
use switchyard_runtime::CancellationToken;
use switchyard_schemas::now_millis;

/// What arrived so far. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Arrivals {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug, Default)]
struct Inner {
    /// First arrival (ms since the epoch) by client message id.
    first: HashMap<String, i64>,
    /// Every webhook, repeats included.
    total: usize,
    /// Webhooks whose signature did not verify (answered 401).
    bad_signatures: usize,
    /// Webhooks whose report was not `delivered`.
    not_delivered: usize,
}

impl Arrivals {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Distinct client message ids that got a webhook.
    pub fn distinct(&self) -> usize {
        self.lock().first.len()
    }

    /// (every webhook, bad signatures, not delivered).
    pub fn counts(&self) -> (usize, usize, usize) {
        let inner = self.lock();
        (inner.total, inner.bad_signatures, inner.not_delivered)
    }

    /// When the first webhook for `client_message_id` arrived.
    pub fn arrived(&self, client_message_id: &str) -> Option<i64> {
        self.lock().first.get(client_message_id).copied()
    }

    /// The latest first arrival of all.
    pub fn last(&self) -> Option<i64> {
        self.lock().first.values().copied().max()
    }
}

struct Receiver {
    secret: String,
    arrivals: Arrivals,
}

async fn receive(
    State(receiver): State<Arc<Receiver>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let at = now_millis();
    let signature = headers
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let valid = verify(signature, &receiver.secret, &body, at / 1000, 300);
    let parsed: Option<WebhookBody> = serde_json::from_slice(&body).ok();
    let mut inner = receiver.arrivals.lock();
    inner.total += 1;
    if !valid {
        inner.bad_signatures += 1;
        return StatusCode::UNAUTHORIZED;
    }
    if let Some(body) = parsed {
        if body.status != "delivered" {
            inner.not_delivered += 1;
        }
        if let Some(id) = body.client_message_id {
            inner.first.entry(id).or_insert(at);
        }
    }
    StatusCode::NO_CONTENT
}

/// Serve the receiver on a free loopback port at `/webhooks/switchyard`; its URL and arrivals.
pub async fn serve(
    secret: &str,
    shutdown: CancellationToken,
) -> anyhow::Result<(String, Arrivals)> {
    let arrivals = Arrivals::default();
    let state = Arc::new(Receiver {
        secret: secret.to_string(),
        arrivals: arrivals.clone(),
    });
    let app = Router::new()
        .route("/webhooks/switchyard", post(receive))
        .with_state(state);
    let addr = SocketAddr::from(([127, 0, 0, 1], 0));
    let (bound, _) =
        switchyard_runtime::serve_http(addr, app, shutdown, "bench webhook receiver").await?;
    Ok((format!("http://{bound}/webhooks/switchyard"), arrivals))
}
