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
    /// An ad in the quiet hours: rejected or held until they end.
    pub night_ads: NightAds,
    /// An SMS over 90 EUC-KR bytes goes as LMS instead of being rejected.
    pub auto_lms_upgrade: bool,
    /// Price per message per channel name, in integer minor units.
    pub prices: BTreeMap<String, i64>,
    /// How long a client_message_id stays taken (hours).
    pub dedup_window_hours: i32,
    /// Days the history keeps this customer's messages; none: the history's global default.
    #[serde(default)]
    pub history_retention_days: Option<i32>,
}

/// What a customer wants done with an ad submitted in the quiet hours (21:00–08:00 KST).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NightAds {
    /// Refuse it (`night_ad`).
    #[default]
    Reject,
    /// Put it on `messages.held` until the quiet hours end.
    Hold,
}

impl NightAds {
    /// The name used in config files.
    pub fn as_str(self) -> &'static str {
        match self {
            NightAds::Reject => "reject",
            NightAds::Hold => "hold",
        }
    }
}

/// A customer's bill code; the record of `config.bill_codes` (key `<customer>/<code>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillCode {
    pub customer_id: String,
    pub code: String,
    /// Messages billed to this code are ads: the ad rules apply whatever their priority.
    pub ad_check: bool,
    pub description: String,
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
    /// When every group of the number's carrier failed, fail over to the rule's other carriers.
    #[serde(default)]
    pub other_carriers: bool,
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

impl ContentPolicy {
    /// The id of the policy every customer gets (a customer's own policy adds to it).
    pub const GLOBAL: &'static str = "*";

    /// A policy with the schema's defaults: no keywords, "(광고)", "무료수신거부", quiet
    /// 21:00–08:00 KST.
    pub fn new(policy_id: impl Into<String>) -> Self {
        ContentPolicy {
            policy_id: policy_id.into(),
            blocked_keywords: Vec::new(),
            ad_prefix: "(광고)".into(),
            ad_opt_out_marker: "무료수신거부".into(),
            ad_quiet_start_hour: 21,
            ad_quiet_end_hour: 8,
        }
    }
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
