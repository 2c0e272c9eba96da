//! A webhook receiver that checks signatures and keeps what it got: the demo's inbox for
//! `make up` (it logs each report) and the receiving end in tests.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use switchyard_runtime::CancellationToken;
use switchyard_schemas::now_millis;

use crate::signature::verify;
use crate::{EVENT_ID_HEADER, SIGNATURE_HEADER, WebhookBody};

/// One webhook as received.
#[derive(Debug, Clone)]
pub struct Received {
    /// When it arrived (ms since the epoch).
    pub at: i64,
    /// What the receiver answered.
    pub status: u16,
    pub event_id: String,
    pub signature_valid: bool,
    pub body: Option<WebhookBody>,
}

/// What the receiver got so far. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Inbox {
    received: Arc<Mutex<Vec<Received>>>,
}

impl Inbox {
    /// Everything received, in arrival order.
    pub fn all(&self) -> Vec<Received> {
        self.received
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// How many webhooks arrived.
    pub fn len(&self) -> usize {
        self.received
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    /// True when none arrived.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

struct Receiver {
    secret: String,
    inbox: Inbox,
    log: bool,
    /// Answer 503 to the first this-many deliveries of each event id (`u32::MAX`: always).
    fail_first: u32,
}

async fn receive(
    State(receiver): State<Arc<Receiver>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let signature_valid = verify(
        &header(SIGNATURE_HEADER),
        &receiver.secret,
        &body,
        now_millis() / 1000,
        300,
    );
    let parsed: Option<WebhookBody> = serde_json::from_slice(&body).ok();
    if receiver.log {
        match &parsed {
            Some(b) => {
                tracing::info!(message_id = %b.message_id, status = %b.status, result = %b.result_code, signature_valid, "webhook received")
            }
            None => tracing::warn!("webhook with an unreadable body"),
        }
    }
    let event_id = header(EVENT_ID_HEADER);
    let mut received = receiver
        .inbox
        .received
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let earlier = received.iter().filter(|r| r.event_id == event_id).count();
    let status = if (earlier as u64) < u64::from(receiver.fail_first) {
        StatusCode::SERVICE_UNAVAILABLE
    } else if signature_valid {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::UNAUTHORIZED
    };
    received.push(Received {
        at: now_millis(),
        status: status.as_u16(),
        event_id,
        signature_valid,
        body: parsed,
    });
    status
}

/// Serve a receiver at `POST /webhooks/switchyard` (and `/`) checking signatures with `secret`.
pub async fn serve(
    addr: SocketAddr,
    secret: &str,
    log: bool,
    shutdown: CancellationToken,
) -> std::io::Result<(SocketAddr, Inbox)> {
    serve_failing(addr, secret, log, 0, shutdown).await
}

/// The same receiver, answering 503 to the first `fail_first` deliveries of each event id
/// (`u32::MAX`: a receiver that is down for good).
pub async fn serve_failing(
    addr: SocketAddr,
    secret: &str,
    log: bool,
    fail_first: u32,
    shutdown: CancellationToken,
) -> std::io::Result<(SocketAddr, Inbox)> {
    let inbox = Inbox::default();
    let state = Arc::new(Receiver {
        secret: secret.to_string(),
        inbox: inbox.clone(),
        log,
        fail_first,
    });
    let app = Router::new()
        .route("/webhooks/switchyard", post(receive))
        .route("/", post(receive))
        .with_state(state);
    let (bound, _) =
        switchyard_runtime::serve_http(addr, app, shutdown, "webhook receiver").await?;
    Ok((bound, inbox))
}
