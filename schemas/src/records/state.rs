//! State records kept in compacted `state.*` topics.

use serde::{Deserialize, Serialize};

use super::Millis;

/// A dispatcher's heartbeat; the record of `state.sender-health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SenderHealth {
    pub sender: String,
    pub healthy: bool,
    pub able: bool,
    pub reason: Option<String>,
    pub in_flight: i32,
    pub heartbeat_at: Millis,
}
