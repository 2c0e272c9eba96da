//! The generic JSON carrier API spoken by the dispatcher and served by the simulator.
//!
//! Submit: `POST {endpoint}` with [`SubmitRequest`]; 2xx answers [`SubmitResponse`], 4xx means
//! the carrier refuses this message for good, 5xx or no answer means try again.
//! Receipt: the carrier later `POST`s a [`Receipt`] to the `receipt_url` it was given, echoing
//! the `reference` it was handed (a client reference, as HTTP providers offer).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmitRequest {
    pub reference: String,
    pub channel: String,
    pub to: String,
    pub from: Option<String>,
    pub text: String,
    pub subject: Option<String>,
    pub receipt_url: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmitResponse {
    pub carrier_message_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    pub carrier_message_id: String,
    pub reference: String,
    /// Carrier status code: DELIVRD, UNDELIV, EXPIRED, REJECTD, ...
    pub status: String,
    pub done_at: i64,
}
