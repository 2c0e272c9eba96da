//! Config records kept in compacted `config.*` topics and read by every stage as tables.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Channel;

/// A customer; the record of `config.customers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerConfig {
    pub customer_id: String,
    pub name: String,
    pub enabled: bool,
    pub channels: Vec<Channel>,
    pub bill_codes: Vec<String>,
    pub tps_limits: BTreeMap<String, i32>,
    pub prepaid: bool,
}

/// An HTTP API client of a customer; the record of `config.clients`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiClientConfig {
    pub client_id: String,
    pub customer_id: String,
    pub key_hash: String,
    pub report_url: Option<String>,
    pub signing_secret: Option<String>,
    /// During a rotation, the secret being retired (both sign each webhook).
    #[serde(default)]
    pub signing_secret_previous: Option<String>,
    pub enabled: bool,
    pub rate_limit_per_second: Option<i32>,
}

/// A sender (one connection to a carrier or provider); the record of `config.senders`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SenderConfig {
    pub name: String,
    pub group: String,
    pub channel: Channel,
    pub carriers: Vec<String>,
    pub kind: String,
    pub endpoint: String,
    pub tps: Option<i32>,
    pub enabled: bool,
    pub settings: BTreeMap<String, String>,
}

/// A sender group and its ratio within a carrier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupShare {
    pub group: String,
    pub ratio: i32,
}

/// The sender groups serving one carrier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CarrierRoute {
    pub carrier: String,
    pub groups: Vec<GroupShare>,
}

/// How a customer's messages on a channel are split; the record of `config.routes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteRule {
    pub customer_id: String,
    pub channel: Channel,
    pub carriers: Vec<CarrierRoute>,
}

/// Content rules; the record of `config.policy`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContentPolicy {
    pub policy_id: String,
    pub blocked_keywords: Vec<String>,
    pub ad_prefix: String,
    pub ad_opt_out_marker: String,
    pub ad_quiet_start_hour: i32,
    pub ad_quiet_end_hour: i32,
}

/// Whether a numbering entry is a prefix rule or a ported number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NumberingKind {
    Prefix,
    Ported,
}

/// Which carrier serves a number prefix or a ported number; the record of `config.numbering`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NumberingEntry {
    pub kind: NumberingKind,
    pub number: String,
    pub carrier: String,
}
