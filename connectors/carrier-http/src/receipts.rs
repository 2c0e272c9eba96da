//! `POST /receipts`: carriers' delivery receipts become `messages.reports` records. The
//! carrier gets 200 only once the report is on the broker, so a receipt is never lost; a
//! receipt that is not ours gets 400.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use rdkafka::producer::FutureRecord;
use switchyard_runtime::Runtime;
use switchyard_schemas::now_millis;

use crate::protocol::Receipt;
use crate::reference::Reference;

/// Topic receipts are written to.
pub const REPORTS: &str = "messages.reports";

/// The receipts route.
pub fn router(runtime: Runtime) -> Router {
    Router::new()
        .route("/receipts", post(receive))
        .with_state(runtime)
}

async fn receive(
    State(runtime): State<Runtime>,
    Json(receipt): Json<Receipt>,
) -> (StatusCode, String) {
    let reference = match Reference::decode(&receipt.reference) {
        Ok(reference) => reference,
        Err(reason) => {
            tracing::warn!(carrier_message_id = %receipt.carrier_message_id, %reason, "receipt refused");
            return (StatusCode::BAD_REQUEST, reason);
        }
    };
    let report = reference.report(&receipt, now_millis());
    let payload = match runtime.codec.encode(REPORTS, &report).await {
        Ok(payload) => payload,
        Err(e) => return (StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    };
    let sent = match runtime.producer() {
        Ok(producer) => producer
            .send(
                FutureRecord::to(REPORTS)
                    .key(&report.message_id)
                    .payload(&payload),
                Duration::from_secs(30),
            )
            .await
            .map_err(|(e, _)| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    match sent {
        Ok(_) => {
            tracing::debug!(message_id = %report.message_id, status = report.status.as_str(), "receipt");
            (StatusCode::OK, String::new())
        }
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e),
    }
}
