//! Report records: receipts, final results and callback retries.

use serde::{Deserialize, Serialize};

use super::{Channel, Millis, RouteHop};

impl ResultStatus {
    /// Whether this status ends a message's life (anything but `Unknown`).
    pub fn is_final(self) -> bool {
        !matches!(self, ResultStatus::Unknown)
    }

    /// Lowercase name, as in the webhook and the HTTP API.
    pub fn as_str(self) -> &'static str {
        match self {
            ResultStatus::Delivered => "delivered",
            ResultStatus::Failed => "failed",
            ResultStatus::Rejected => "rejected",
            ResultStatus::Expired => "expired",
            ResultStatus::Unknown => "unknown",
        }
    }
}

/// The unified outcome of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResultStatus {
    Delivered,
    Failed,
    Rejected,
    Expired,
    Unknown,
}

/// A carrier's or provider's receipt, unified; the record of `messages.reports`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryReport {
    pub event_id: String,
    pub message_id: String,
    pub customer_id: String,
    pub client_id: Option<String>,
    pub client_message_id: Option<String>,
    pub channel: Channel,
    pub to: String,
    pub carrier: String,
    pub sender: String,
    pub carrier_message_id: Option<String>,
    pub status: ResultStatus,
    pub carrier_code: String,
    pub result_code: String,
    pub result_text: String,
    pub attempt: i32,
    pub submitted_at: Option<Millis>,
    pub reported_at: Millis,
    /// Every sender tried before this one (failover).
    #[serde(default)]
    pub trail: Vec<RouteHop>,
}

/// Exactly one per message: its final result; the record of `reports.final`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinalReport {
    pub event_id: String,
    pub message_id: String,
    pub customer_id: String,
    pub client_id: Option<String>,
    pub client_message_id: Option<String>,
    pub channel: Channel,
    pub to: String,
    pub status: ResultStatus,
    pub result_code: String,
    pub result_text: String,
    pub carrier: Option<String>,
    pub sender: Option<String>,
    pub attempt: i32,
    pub submitted_at: Option<Millis>,
    pub done_at: Millis,
    /// Every sender tried before the last one (failover), with outcome and reason.
    #[serde(default)]
    pub trail: Vec<RouteHop>,
}

/// A report callback that failed and waits in a retry tier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallbackAttempt {
    pub report: FinalReport,
    pub report_url: String,
    pub retry: i32,
    pub due_at: Millis,
    pub last_failure: String,
    pub first_failed_at: Millis,
    pub failed_at: Millis,
}

/// One webhook attempt of a final report and how it ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallbackResult {
    pub event_id: String,
    pub message_id: String,
    pub customer_id: String,
    pub client_id: Option<String>,
    /// 1 for the first delivery, n + 1 for retry n.
    pub attempt: i32,
    pub at: Millis,
    pub delivered: bool,
    pub http_status: Option<i32>,
    pub failure: Option<String>,
    pub next_due_at: Option<Millis>,
    pub exhausted: bool,
}

/// A client confirmed it has a report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportAck {
    pub message_id: String,
    pub customer_id: String,
    pub client_id: String,
    pub acked_at: Millis,
}
