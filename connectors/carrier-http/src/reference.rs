//! The client reference handed to the carrier and echoed in its receipt: the message's
//! context, so a receipt becomes a complete DeliveryReport without a lookup.

use serde::{Deserialize, Serialize};
use switchyard_schemas::{Channel, DeliveryReport, DispatchRequest, RouteHop, event_id};

use crate::codes::unify;
use crate::protocol::Receipt;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reference {
    #[serde(rename = "m")]
    pub message_id: String,
    #[serde(rename = "c")]
    pub customer_id: String,
    #[serde(rename = "k", skip_serializing_if = "Option::is_none", default)]
    pub client_id: Option<String>,
    #[serde(rename = "r", skip_serializing_if = "Option::is_none", default)]
    pub client_message_id: Option<String>,
    #[serde(rename = "h")]
    pub channel: Channel,
    #[serde(rename = "t")]
    pub to: String,
    #[serde(rename = "s")]
    pub sender: String,
    #[serde(rename = "w")]
    pub carrier: String,
    #[serde(rename = "a")]
    pub attempt: i32,
    #[serde(rename = "at")]
    pub submitted_at: i64,
    /// The senders tried before this attempt (failover); empty on a first attempt, so the
    /// reference stays short for almost every message.
    #[serde(rename = "p", skip_serializing_if = "Vec::is_empty", default)]
    pub trail: Vec<RouteHop>,
}

/// The hops of `request`'s trail before its current attempt (route appends the current one
/// last): what a report about this attempt lists as tried before.
pub fn earlier_hops(request: &DispatchRequest) -> Vec<RouteHop> {
    let mut trail = request.trail.clone();
    if trail.last().is_some_and(|h| h.attempt == request.attempt) {
        trail.pop();
    }
    trail
}

impl Reference {
    pub fn of(request: &DispatchRequest, submitted_at: i64) -> Self {
        let s = &request.message.submission;
        Reference {
            message_id: request.message_id.clone(),
            customer_id: request.customer_id.clone(),
            client_id: s.client_id.clone(),
            client_message_id: s.client_message_id.clone(),
            channel: s.channel,
            to: s.to.clone(),
            sender: request.sender.clone(),
            carrier: request.carrier.clone(),
            attempt: request.attempt,
            submitted_at,
            trail: earlier_hops(request),
        }
    }

    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn decode(text: &str) -> Result<Self, String> {
        serde_json::from_str(text).map_err(|e| format!("reference is not ours: {e}"))
    }

    /// The DeliveryReport for a receipt about this message.
    pub fn report(&self, receipt: &Receipt, now: i64) -> DeliveryReport {
        let (status, code, text) = unify(&receipt.status);
        DeliveryReport {
            event_id: event_id(&[
                &self.message_id,
                &receipt.carrier_message_id,
                &receipt.status,
            ]),
            message_id: self.message_id.clone(),
            customer_id: self.customer_id.clone(),
            client_id: self.client_id.clone(),
            client_message_id: self.client_message_id.clone(),
            channel: self.channel,
            to: self.to.clone(),
            carrier: self.carrier.clone(),
            sender: self.sender.clone(),
            carrier_message_id: Some(receipt.carrier_message_id.clone()),
            status,
            carrier_code: receipt.status.clone(),
            result_code: code.to_string(),
            result_text: text.to_string(),
            attempt: self.attempt,
            submitted_at: Some(self.submitted_at),
            reported_at: now,
            trail: self.trail.clone(),
        }
    }
}
