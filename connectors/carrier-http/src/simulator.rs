//! `switchyard sim carrier`: a carrier that speaks the generic JSON API. It accepts every
//! well-formed submit with a carrier message id, then after `receipt_delay` POSTs a receipt to
//! the given URL — DELIVRD for a `success_rate` share of messages, UNDELIV for the rest,
//! decided by a hash of the reference so a rerun gives the same outcomes. Receipts that fail
//! are retried like a real carrier would (5 times, backing off).

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
    client: reqwest::Client,
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
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap_or_default();
    Router::new()
        .route("/submit", post(submit))
        .with_state(Arc::new(Simulator { settings, client }))
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
    let carrier_message_id = uuid::Uuid::new_v4().to_string();
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
    Ok(
        switchyard_runtime::serve_http(addr, router(settings), shutdown, "carrier simulator")
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
}
