//! What the history keeps of each record: one event per record, and the message summary it
//! updates. One function per record type turns it into an event.

use serde::Serialize;
use switchyard_runtime::Origin;
use switchyard_schemas::{
    CallbackResult, DeliveryReport, DispatchOutcome, DispatchStatus, FinalReport, Rejection,
    ReportAck, RoutingDecision, Submission, ValidatedMessage, derived_message_id,
};

/// Where a message is in its life; a later stage never moves it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Accepted = 1,
    Validated = 2,
    Routed = 3,
    Submitted = 4,
    Reported = 5,
    Final = 9,
}

/// Where a report's webhook stands; a later state never goes back to an earlier one (an ack
/// outranks everything, a delivery outranks any failure).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CallbackState {
    Retrying = 1,
    Exhausted = 2,
    Delivered = 3,
    Acked = 4,
}

impl CallbackState {
    pub fn as_str(self) -> &'static str {
        match self {
            CallbackState::Retrying => "retrying",
            CallbackState::Exhausted => "exhausted",
            CallbackState::Delivered => "delivered",
            CallbackState::Acked => "acked",
        }
    }

    /// Its order: the stored state only moves to a higher rank.
    pub fn rank(self) -> i64 {
        self as i64
    }
}

/// Fields of the message summary an event sets (None = leave as is).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub customer_id: Option<String>,
    pub client_id: Option<String>,
    pub client_message_id: Option<String>,
    pub channel: Option<String>,
    pub to: Option<String>,
    pub status: Option<String>,
    pub result_code: Option<String>,
    pub result_text: Option<String>,
    pub carrier: Option<String>,
    pub sender: Option<String>,
    pub accepted_at: Option<i64>,
    pub done_at: Option<i64>,
    pub callback: Option<CallbackState>,
}

/// One event of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Unique per source record (`topic/partition/offset`): replays do not duplicate events.
    pub event_key: String,
    pub message_id: String,
    pub kind: &'static str,
    pub at: i64,
    pub stage: Stage,
    pub summary: Summary,
    pub detail: serde_json::Value,
}

/// A record the history can keep.
pub trait HistoryRecord: switchyard_schemas::Record {
    fn event(&self, origin: Origin<'_>) -> Event;
}

fn key(origin: Origin<'_>) -> String {
    format!("{}/{}/{}", origin.topic, origin.partition, origin.offset)
}

fn detail<T: Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

fn submission_summary(s: &Submission) -> Summary {
    Summary {
        customer_id: Some(s.customer_id.clone()),
        client_id: s.client_id.clone(),
        client_message_id: s.client_message_id.clone(),
        channel: Some(s.channel.to_string()),
        to: Some(s.to.clone()),
        accepted_at: Some(s.accepted_at),
        ..Summary::default()
    }
}

impl HistoryRecord for Submission {
    fn event(&self, origin: Origin<'_>) -> Event {
        let message_id = self
            .message_id
            .clone()
            .filter(|id| !id.is_empty())
            .unwrap_or_else(|| derived_message_id(origin.topic, origin.partition, origin.offset));
        let mut summary = submission_summary(self);
        summary.status = Some("accepted".into());
        Event {
            event_key: key(origin),
            message_id,
            kind: "accepted",
            at: self.accepted_at,
            stage: Stage::Accepted,
            summary,
            detail: serde_json::json!({"priority": self.priority, "bill_code": self.bill_code}),
        }
    }
}

impl HistoryRecord for ValidatedMessage {
    fn event(&self, origin: Origin<'_>) -> Event {
        let mut summary = submission_summary(&self.submission);
        summary.status = Some("validated".into());
        Event {
            event_key: key(origin),
            message_id: self.message_id.clone(),
            kind: "validated",
            at: self.validated_at,
            stage: Stage::Validated,
            summary,
            detail: serde_json::json!({"encoding": self.encoding, "segments": self.segments}),
        }
    }
}

impl HistoryRecord for Rejection {
    fn event(&self, origin: Origin<'_>) -> Event {
        let mut summary = submission_summary(&self.submission);
        summary.status = Some("rejected".into());
        summary.result_code = Some(self.code.clone());
        summary.result_text = Some(self.detail.clone());
        Event {
            event_key: key(origin),
            message_id: self.message_id.clone(),
            kind: "rejected",
            at: self.rejected_at,
            stage: Stage::Validated,
            summary,
            detail: serde_json::json!({"code": self.code, "detail": self.detail}),
        }
    }
}

impl HistoryRecord for RoutingDecision {
    fn event(&self, origin: Origin<'_>) -> Event {
        Event {
            event_key: key(origin),
            message_id: self.message_id.clone(),
            kind: "routed",
            at: self.routed_at,
            stage: Stage::Routed,
            summary: Summary {
                status: Some("routed".into()),
                carrier: Some(self.carrier.clone()),
                sender: Some(self.sender.clone()),
                ..Summary::default()
            },
            detail: serde_json::json!({
                "carrier": self.carrier, "sender_group": self.sender_group, "sender": self.sender, "attempt": self.attempt
            }),
        }
    }
}

impl HistoryRecord for DispatchOutcome {
    fn event(&self, origin: Origin<'_>) -> Event {
        let submitted = self.status == DispatchStatus::Submitted;
        Event {
            event_key: key(origin),
            message_id: self.message_id.clone(),
            kind: if submitted {
                "submitted"
            } else {
                "dispatch_failed"
            },
            at: self.dispatched_at,
            stage: Stage::Submitted,
            summary: Summary {
                status: Some(
                    if submitted {
                        "submitted"
                    } else {
                        "dispatch_failed"
                    }
                    .into(),
                ),
                carrier: Some(self.carrier.clone()),
                sender: Some(self.sender.clone()),
                ..Summary::default()
            },
            detail: serde_json::json!({
                "sender": self.sender, "attempt": self.attempt, "carrier_message_id": self.carrier_message_id,
                "failure_class": self.failure_class, "detail": self.detail
            }),
        }
    }
}

impl HistoryRecord for DeliveryReport {
    fn event(&self, origin: Origin<'_>) -> Event {
        Event {
            event_key: key(origin),
            message_id: self.message_id.clone(),
            kind: "report",
            at: self.reported_at,
            stage: Stage::Reported,
            summary: Summary::default(),
            detail: serde_json::json!({
                "status": self.status, "carrier_code": self.carrier_code, "result_code": self.result_code,
                "carrier": self.carrier, "sender": self.sender, "carrier_message_id": self.carrier_message_id
            }),
        }
    }
}

impl HistoryRecord for FinalReport {
    fn event(&self, origin: Origin<'_>) -> Event {
        Event {
            event_key: key(origin),
            message_id: self.message_id.clone(),
            kind: "final",
            at: self.done_at,
            stage: Stage::Final,
            summary: Summary {
                customer_id: Some(self.customer_id.clone()),
                client_id: self.client_id.clone(),
                client_message_id: self.client_message_id.clone(),
                channel: Some(self.channel.to_string()),
                to: Some(self.to.clone()),
                status: Some(self.status.as_str().into()),
                result_code: Some(self.result_code.clone()),
                result_text: Some(self.result_text.clone()),
                carrier: self.carrier.clone(),
                sender: self.sender.clone(),
                done_at: Some(self.done_at),
                accepted_at: None,
                callback: None,
            },
            detail: detail(&serde_json::json!({
                "event_id": self.event_id, "attempt": self.attempt, "trail": self.trail
            })),
        }
    }
}

impl HistoryRecord for CallbackResult {
    fn event(&self, origin: Origin<'_>) -> Event {
        let state = if self.delivered {
            CallbackState::Delivered
        } else if self.exhausted {
            CallbackState::Exhausted
        } else {
            CallbackState::Retrying
        };
        Event {
            event_key: key(origin),
            message_id: self.message_id.clone(),
            kind: "callback",
            at: self.at,
            stage: Stage::Accepted,
            summary: Summary {
                callback: Some(state),
                ..Summary::default()
            },
            detail: serde_json::json!({
                "attempt": self.attempt, "delivered": self.delivered, "http_status": self.http_status,
                "failure": self.failure, "next_due_at": self.next_due_at, "exhausted": self.exhausted
            }),
        }
    }
}

impl HistoryRecord for ReportAck {
    fn event(&self, origin: Origin<'_>) -> Event {
        Event {
            event_key: key(origin),
            message_id: self.message_id.clone(),
            kind: "acked",
            at: self.acked_at,
            stage: Stage::Accepted,
            summary: Summary {
                callback: Some(CallbackState::Acked),
                ..Summary::default()
            },
            detail: serde_json::json!({"client_id": self.client_id}),
        }
    }
}
