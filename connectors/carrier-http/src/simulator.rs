//! `switchyard sim carrier`: a carrier that speaks the generic JSON API. It accepts every
//! well-formed submit with a carrier message id, then after `receipt_delay` POSTs a receipt to
//! the given URL — DELIVRD for a `success_rate` share of messages, UNDELIV for the rest,
//! decided by a hash of the reference so a rerun gives the same outcomes. Receipts that fail
//! are retried like a real carrier would (5 times, backing off).
//!
//! Scriptable like the SMSC simulator (`tests/smsc/smsc.js`), for the sender contract suite:
//! `status_for` answers destinations by prefix with a status (400 refuses, 503 is an outage),
//! `throttle_every` answers every Nth submit 429, `answer_delay` answers late (the message is
//! taken all the same: its receipt still comes). `GET /log` lists every submit received.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use switchyard_runtime::CancellationToken;
use switchyard_schemas::now_millis;

use crate::protocol::{Receipt, SubmitRequest, SubmitResponse};

/// How the simulated carrier behaves.
#[derive(Debug, Clone)]
pub struct SimulatorSettings {
    /// Share of messages delivered (0.0–1.0).
    pub success_rate: f64,
    /// Time between accepting a message and sending its receipt.
    pub receipt_delay: Duration,
}

/// What the simulator answers besides taking messages (all off by default).
#[derive(Debug, Clone, Default)]
pub struct Script {
    /// Destinations starting with the prefix are answered with the status (and not taken).
    pub status_for: Vec<(String, u16)>,
    /// Every Nth submit is answered 429 (not taken); 0 never.
    pub throttle_every: u64,
    /// How long every answer waits (the message is taken before).
    pub answer_delay: Duration,
}

impl Default for SimulatorSettings {
    fn default() -> Self {
        SimulatorSettings {
            success_rate: 1.0,
            receipt_delay: Duration::from_millis(50),
        }
    }
}

struct Simulator {
    settings: SimulatorSettings,
    script: Script,
    client: reqwest::Client,
    /// Submits received so far.
    submits: std::sync::atomic::AtomicU64,
    log: std::sync::Mutex<Vec<LoggedSubmit>>,
}

/// One submit as `GET /log` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LoggedSubmit {
    pub to: String,
    pub text: String,
    /// The status answered.
    pub status: u16,
    pub carrier_message_id: Option<String>,
}

/// What the script says to answer submit number `n` (1-based) to `to`: `None` takes it.
pub fn scripted_status(settings: &Script, n: u64, to: &str) -> Option<u16> {
    if settings.throttle_every > 0 && n.is_multiple_of(settings.throttle_every) {
        return Some(429);
    }
    settings
        .status_for
        .iter()
        .find(|(prefix, _)| to.starts_with(prefix.as_str()))
        .map(|(_, status)| *status)
}

/// FNV-1a: a stable hash, so outcomes do not change between runs.
fn stable_hash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Whether the simulator delivers the message with this reference.
pub fn delivers(reference: &str, success_rate: f64) -> bool {
    (stable_hash(reference) % 10_000) < (success_rate.clamp(0.0, 1.0) * 10_000.0) as u64
}

/// The simulator's routes.
pub fn router(settings: SimulatorSettings) -> Router {
    scripted_router(settings, Script::default())
}

/// The simulator's routes, answering as `script` says.
pub fn scripted_router(settings: SimulatorSettings, script: Script) -> Router {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap_or_default();
    Router::new()
        .route("/submit", post(submit))
        .route("/log", axum::routing::get(log))
        .with_state(Arc::new(Simulator {
            settings,
            script,
            client,
            submits: Default::default(),
            log: Default::default(),
        }))
}

async fn log(State(sim): State<Arc<Simulator>>) -> Json<Vec<LoggedSubmit>> {
    Json(sim.log.lock().map(|l| l.clone()).unwrap_or_default())
}

fn record(sim: &Simulator, request: &SubmitRequest, status: u16, id: Option<&str>) {
    if let Ok(mut log) = sim.log.lock() {
        log.push(LoggedSubmit {
            to: request.to.clone(),
            text: request.text.clone(),
            status,
            carrier_message_id: id.map(str::to_string),
        });
    }
}

async fn submit(
    State(sim): State<Arc<Simulator>>,
    Json(request): Json<SubmitRequest>,
) -> Result<Json<SubmitResponse>, (StatusCode, String)> {
    if request.to.is_empty() || request.receipt_url.is_empty() {
        return Err((
            StatusCode::BAD_REQUEST,
            "to and receipt_url are required".into(),
        ));
    }
    let n = sim
        .submits
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        + 1;
    if let Some(status) = scripted_status(&sim.script, n, &request.to) {
        record(&sim, &request, status, None);
        tokio::time::sleep(sim.script.answer_delay).await;
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return Err((status, "scripted answer".into()));
    }
    let carrier_message_id = uuid::Uuid::new_v4().to_string();
    record(&sim, &request, 200, Some(&carrier_message_id));
    let status = if delivers(&request.reference, sim.settings.success_rate) {
        "DELIVRD"
    } else {
        "UNDELIV"
    };
    let receipt = Receipt {
        carrier_message_id: carrier_message_id.clone(),
        reference: request.reference,
        status: status.into(),
        done_at: 0,
    };
    let (sim2, url) = (sim.clone(), request.receipt_url);
    tokio::spawn(async move { send_receipt(&sim2, &url, receipt).await });
    tokio::time::sleep(sim.script.answer_delay).await;
    Ok(Json(SubmitResponse { carrier_message_id }))
}

async fn send_receipt(sim: &Simulator, url: &str, mut receipt: Receipt) {
    tokio::time::sleep(sim.settings.receipt_delay).await;
    receipt.done_at = now_millis();
    for attempt in 0..6u32 {
        match sim.client.post(url).json(&receipt).send().await {
            Ok(response) if response.status().is_success() => return,
            Ok(response) if response.status().is_client_error() => {
                tracing::warn!(status = %response.status(), "receipt refused by the receiver");
                return;
            }
            _ => tokio::time::sleep(Duration::from_millis(200 * 2u64.pow(attempt))).await,
        }
    }
    tracing::error!(carrier_message_id = %receipt.carrier_message_id, "receipt could not be delivered");
}

/// Serve the simulator on `addr` until `shutdown`; returns the bound address.
pub async fn serve(
    addr: SocketAddr,
    settings: SimulatorSettings,
    shutdown: CancellationToken,
) -> std::io::Result<SocketAddr> {
    serve_scripted(addr, settings, Script::default(), shutdown).await
}

/// Serve the simulator answering as `script` says; returns the bound address.
pub async fn serve_scripted(
    addr: SocketAddr,
    settings: SimulatorSettings,
    script: Script,
    shutdown: CancellationToken,
) -> std::io::Result<SocketAddr> {
    let app = scripted_router(settings, script);
    Ok(
        switchyard_runtime::serve_http(addr, app, shutdown, "carrier simulator")
            .await?
            .0,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_rate_is_honoured_and_stable() {
        let delivered = (0..10_000)
            .filter(|i| delivers(&format!("ref-{i}"), 0.9))
            .count();
        assert!((8_800..=9_200).contains(&delivered), "{delivered}");
        assert!(delivers("x", 1.0));
        assert!(!delivers("x", 0.0));
        assert_eq!(delivers("abc", 0.5), delivers("abc", 0.5));
    }

    #[test]
    fn the_script_answers_by_number_and_prefix() {
        let settings = Script {
            status_for: vec![("0109".into(), 400)],
            throttle_every: 3,
            ..Script::default()
        };
        assert_eq!(scripted_status(&settings, 1, "01012345678"), None);
        assert_eq!(scripted_status(&settings, 2, "01090000000"), Some(400));
        assert_eq!(scripted_status(&settings, 3, "01012345678"), Some(429));
    }
}
