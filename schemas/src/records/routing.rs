//! Routing and dispatch records: where a message goes and what the sender did.

use serde::{Deserialize, Serialize};

use super::{Channel, Millis, Priority, ValidatedMessage};

/// One attempt in a message's routing trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteHop {
    pub attempt: i32,
    pub carrier: String,
    pub sender_group: String,
    pub sender: String,
    pub outcome: Option<String>,
    pub at: Millis,
    /// Why this hop did not deliver.
    #[serde(default)]
    pub reason: Option<String>,
}

/// Where route sent a message on one attempt; the record of `messages.routed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutingDecision {
    pub message_id: String,
    pub customer_id: String,
    pub channel: Channel,
    pub to: String,
    pub carrier: String,
    pub sender_group: String,
    pub sender: String,
    pub attempt: i32,
    pub priority: Priority,
    pub trail: Vec<RouteHop>,
    pub routed_at: Millis,
}

/// A message handed to one sender; the record of `sender.<name>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DispatchRequest {
    pub message_id: String,
    pub customer_id: String,
    pub carrier: String,
    pub sender_group: String,
    pub sender: String,
    pub attempt: i32,
    pub message: ValidatedMessage,
    pub trail: Vec<RouteHop>,
    pub routed_at: Millis,
    /// On `messages.failover`: the group route tries first (an operator's drain `--to`).
    #[serde(default)]
    pub prefer_group: Option<String>,
}

/// Whether the sender took the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DispatchStatus {
    Submitted,
    Failed,
}

/// Why a dispatch failed, which decides the failover.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureClass {
    /// Another sender may succeed.
    Temporary,
    /// No sender can deliver this message.
    Permanent,
    /// This sender is unusable right now.
    SenderDown,
}

/// What a sender did with a dispatch request; the record of `messages.dispatched`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DispatchOutcome {
    pub message_id: String,
    pub attempt: i32,
    pub carrier: String,
    pub sender_group: String,
    pub sender: String,
    pub status: DispatchStatus,
    pub failure_class: Option<FailureClass>,
    pub carrier_message_id: Option<String>,
    pub detail: Option<String>,
    pub request: DispatchRequest,
    pub dispatched_at: Millis,
}
