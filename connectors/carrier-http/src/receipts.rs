//! `POST /receipts`: carriers' delivery receipts become `messages.reports` records. The
//! carrier gets 200 only once the report is on the broker, so a receipt is never lost; a
//! receipt that is not ours gets 400.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use switchyard_runtime::names::REPORTS;
use switchyard_runtime::{Output, Runtime};
use switchyard_schemas::now_millis;

use crate::protocol::Receipt;
use crate::reference::Reference;

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
    let (message_id, status) = (report.message_id.clone(), report.status.as_str());
    let output = Output::new(REPORTS, message_id.clone(), report);
    match runtime.publish("receipts", &[output]).await {
        Ok(_) => {
            tracing::debug!(%message_id, status, "receipt");
            (StatusCode::OK, String::new())
        }
        // The carrier sends the receipt again later; nothing is lost.
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}
