//! State records kept in compacted `state.*` topics.

use serde::{Deserialize, Serialize};

use super::Millis;

/// One entry of a stage's state store (its changelog's record); the key's kind says what the
/// fields mean.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StateEntry {
    pub text: Option<String>,
    pub amount: i64,
    pub expires_at: Option<Millis>,
}

/// What moves a prepaid balance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BalanceKind {
    Debit,
    Credit,
    Refund,
}

impl BalanceKind {
    /// The name used in the ledger and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            BalanceKind::Debit => "debit",
            BalanceKind::Credit => "credit",
            BalanceKind::Refund => "refund",
        }
    }

    /// +1 for what adds to a balance, -1 for what takes from it.
    pub fn sign(self) -> i64 {
        match self {
            BalanceKind::Debit => -1,
            BalanceKind::Credit | BalanceKind::Refund => 1,
        }
    }
}

/// One movement of a prepaid balance; the record of `ledger.balances`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BalanceEvent {
    pub event_id: String,
    pub customer_id: String,
    pub kind: BalanceKind,
    pub amount: i64,
    pub balance_after: i64,
    pub message_id: Option<String>,
    pub request_id: Option<String>,
    pub reason: Option<String>,
    pub at: Millis,
}

/// A request to move a prepaid balance (a credit or a refund); the record of
/// `balance.commands`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BalanceCommand {
    pub request_id: String,
    pub customer_id: String,
    pub kind: BalanceKind,
    pub amount: i64,
    pub message_id: Option<String>,
    pub reason: String,
    pub requested_at: Millis,
}

/// A heartbeat older than this (ms) is stale: route calls its sender silent, and a dispatcher
/// stops counting its instance when sharing the sender's rate.
pub const HEARTBEAT_STALE_AFTER_MS: Millis = 5_000;

/// One dispatcher instance's heartbeat for one sender; the record of `state.sender-health`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SenderHealth {
    pub sender: String,
    pub healthy: bool,
    pub able: bool,
    pub reason: Option<String>,
    pub in_flight: i32,
    pub heartbeat_at: Millis,
    #[serde(default)]
    pub instance: String,
    #[serde(default)]
    pub bound: bool,
    #[serde(default)]
    pub window: i32,
    #[serde(default)]
    pub error_rate: f64,
    #[serde(default)]
    pub throughput: f64,
    #[serde(default)]
    pub last_success_at: Option<Millis>,
}

/// An operator's drain of one sender; the record of `state.sender-drains` (key = sender, a
/// tombstone ends it). While it stands, route sends the sender nothing new and its
/// dispatchers hand every queued message back to route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SenderDrain {
    pub sender: String,
    /// The group the queue goes to first; None = by the rule, as a failover would.
    #[serde(default)]
    pub to_group: Option<String>,
    pub requested_at: Millis,
    #[serde(default)]
    pub reason: String,
}
