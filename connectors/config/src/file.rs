//! The config file format (TOML) and its translation to config records.

use std::collections::BTreeMap;

use serde::Deserialize;
use sha2::{Digest, Sha256};
use switchyard_runtime::{bill_code_key, numbering_key, route_key};
use switchyard_schemas::{
    ApiClientConfig, BillCode, CarrierRoute, Channel, ContentPolicy, CustomerConfig, GroupShare,
    NightAds, NumberingEntry, NumberingKind, RouteRule, SenderConfig,
};

use crate::ConfigError;

/// Hex SHA-256 of an API key: what `config.clients` stores and the ingress compares.
pub fn hash_api_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    #[serde(default)]
    pub customers: Vec<CustomerEntry>,
    #[serde(default)]
    pub clients: Vec<ClientEntry>,
    #[serde(default)]
    pub senders: Vec<SenderEntry>,
    #[serde(default)]
    pub routes: Vec<RouteEntry>,
    #[serde(default)]
    pub numbering: Vec<NumberingFileEntry>,
    /// Bill codes with their ad flag (`config.bill_codes`).
    #[serde(default)]
    pub bill_codes: Vec<BillCodeEntry>,
    /// The global content policy (id `*`); same as a `[[policies]]` entry with `id = "*"`.
    pub policy: Option<PolicyEntry>,
    /// Content policies: `*` for every customer, or a customer id (added to the global one).
    #[serde(default)]
    pub policies: Vec<PolicyEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomerEntry {
    pub id: String,
    pub name: Option<String>,
    #[serde(default = "yes")]
    pub enabled: bool,
    pub channels: Vec<Channel>,
    #[serde(default)]
    pub bill_codes: Vec<String>,
    #[serde(default)]
    pub tps_limits: BTreeMap<String, i32>,
    #[serde(default)]
    pub prepaid: bool,
    /// "reject" (default) or "hold": what happens to an ad in the quiet hours.
    pub night_ads: Option<String>,
    /// Send an SMS over 90 EUC-KR bytes as LMS instead of rejecting it (needs lms enabled).
    #[serde(default)]
    pub auto_lms_upgrade: bool,
    /// Price per message per channel, in integer minor units (e.g. KRW).
    #[serde(default)]
    pub prices: BTreeMap<String, i64>,
    /// How long a client_message_id stays taken, in hours (a second message with it is
    /// rejected as duplicate); 24 by default.
    #[serde(default = "day")]
    pub dedup_window_hours: i32,
    /// Days the history keeps this customer's messages (1-3650); absent: the history's global
    /// `--history-retention-days`.
    pub history_retention_days: Option<i32>,
}

fn day() -> i32 {
    24
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BillCodeEntry {
    pub customer: String,
    pub code: String,
    /// Messages billed to this code are ads: the ad rules apply whatever their priority.
    #[serde(default)]
    pub ad_check: bool,
    #[serde(default)]
    pub description: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyEntry {
    /// `*` (every customer) or a customer id; `[policy]` may leave it out.
    pub id: Option<String>,
    #[serde(default)]
    pub blocked_keywords: Vec<String>,
    pub ad_prefix: Option<String>,
    pub ad_opt_out_marker: Option<String>,
    /// KST hour (0-23) from which ads are refused or held; default 21.
    pub quiet_start_hour: Option<i32>,
    /// KST hour (0-23) at which the quiet hours end; default 8.
    pub quiet_end_hour: Option<i32>,
}

impl ConfigFile {
    /// Every policy entry with its id: `[policy]` first (as `*`), then `[[policies]]`, each
    /// with the name of its place in the file.
    pub(crate) fn all_policies(&self) -> Vec<(String, String, &PolicyEntry)> {
        let mut all = Vec::new();
        if let Some(p) = &self.policy {
            let id =
                p.id.clone()
                    .unwrap_or_else(|| ContentPolicy::GLOBAL.to_string());
            all.push(("policy".to_string(), id, p));
        }
        for (i, p) in self.policies.iter().enumerate() {
            all.push((
                format!("policies[{i}]"),
                p.id.clone().unwrap_or_default(),
                p,
            ));
        }
        all
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientEntry {
    pub id: String,
    pub customer: String,
    /// The key in clear; only its hash is written.
    pub api_key: Option<String>,
    /// Or the hash directly (hex SHA-256), to keep keys out of the file.
    pub api_key_sha256: Option<String>,
    pub report_url: Option<String>,
    pub signing_secret: Option<String>,
    /// During a rotation: the old secret, still signing alongside the new one.
    pub signing_secret_previous: Option<String>,
    #[serde(default = "yes")]
    pub enabled: bool,
    pub rate_limit_per_second: Option<i32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SenderEntry {
    pub name: String,
    pub group: String,
    pub channel: Channel,
    pub carriers: Vec<String>,
    #[serde(default = "http")]
    pub kind: String,
    pub endpoint: String,
    pub tps: Option<i32>,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Typed by the sender's kind (`switchyard_senders`): strings, numbers or booleans.
    #[serde(default)]
    pub settings: BTreeMap<String, toml::Value>,
}

impl SenderEntry {
    /// The settings as the sender record stores them (every value as text), or the name of
    /// the first one that is not a string, number or boolean.
    pub fn record_settings(&self) -> Result<BTreeMap<String, String>, String> {
        self.settings
            .iter()
            .map(|(name, value)| {
                let text = match value {
                    toml::Value::String(s) => s.clone(),
                    toml::Value::Integer(i) => i.to_string(),
                    toml::Value::Float(f) => f.to_string(),
                    toml::Value::Boolean(b) => b.to_string(),
                    _ => return Err(name.clone()),
                };
                Ok((name.clone(), text))
            })
            .collect()
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteEntry {
    /// A customer id, or `*` for every customer without its own rule.
    pub customer: String,
    pub channel: Channel,
    pub carriers: Vec<CarrierEntry>,
    /// When every group of the number's carrier failed, fail over to the other carriers.
    #[serde(default)]
    pub other_carriers: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CarrierEntry {
    pub carrier: String,
    pub groups: Vec<GroupEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupEntry {
    pub group: String,
    pub ratio: i32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NumberingFileEntry {
    pub prefix: Option<String>,
    pub ported: Option<String>,
    pub carrier: String,
}

fn yes() -> bool {
    true
}

fn http() -> String {
    "http".to_string()
}

/// Every record the file declares, per topic, keyed as on the topic.
#[derive(Debug, Default)]
pub struct Desired {
    pub customers: BTreeMap<String, CustomerConfig>,
    pub clients: BTreeMap<String, ApiClientConfig>,
    pub senders: BTreeMap<String, SenderConfig>,
    pub routes: BTreeMap<String, RouteRule>,
    pub numbering: BTreeMap<String, NumberingEntry>,
    pub bill_codes: BTreeMap<String, BillCode>,
    pub policies: BTreeMap<String, ContentPolicy>,
}

impl ConfigFile {
    /// Parse a config file's text.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::File(e.to_string()))
    }

    /// The records this file declares; checks references between them.
    pub fn desired(&self) -> Result<Desired, ConfigError> {
        crate::check::check(self)?;
        let mut desired = Desired::default();
        for c in &self.customers {
            let record = CustomerConfig {
                customer_id: c.id.clone(),
                name: c.name.clone().unwrap_or_else(|| c.id.clone()),
                enabled: c.enabled,
                channels: c.channels.clone(),
                bill_codes: c.bill_codes.clone(),
                tps_limits: c.tps_limits.clone(),
                prepaid: c.prepaid,
                night_ads: match c.night_ads.as_deref() {
                    Some("hold") => NightAds::Hold,
                    // check() refused anything else.
                    _ => NightAds::Reject,
                },
                auto_lms_upgrade: c.auto_lms_upgrade,
                prices: c.prices.clone(),
                dedup_window_hours: c.dedup_window_hours,
                history_retention_days: c.history_retention_days,
            };
            unique(
                desired.customers.insert(c.id.clone(), record),
                "customer",
                &c.id,
            )?;
        }
        for c in &self.clients {
            if !desired.customers.contains_key(&c.customer) {
                return Err(ConfigError::File(format!(
                    "client {} names unknown customer {}",
                    c.id, c.customer
                )));
            }
            let key_hash = match (&c.api_key, &c.api_key_sha256) {
                (Some(key), None) => hash_api_key(key),
                (None, Some(hash))
                    if hash.len() == 64 && hash.chars().all(|h| h.is_ascii_hexdigit()) =>
                {
                    hash.to_lowercase()
                }
                _ => {
                    return Err(ConfigError::File(format!(
                        "client {} needs exactly one of api_key or api_key_sha256 (64 hex digits)",
                        c.id
                    )));
                }
            };
            let record = ApiClientConfig {
                client_id: c.id.clone(),
                customer_id: c.customer.clone(),
                key_hash,
                report_url: c.report_url.clone(),
                signing_secret: c.signing_secret.clone(),
                signing_secret_previous: c.signing_secret_previous.clone(),
                enabled: c.enabled,
                rate_limit_per_second: c.rate_limit_per_second,
            };
            unique(
                desired.clients.insert(c.id.clone(), record),
                "client",
                &c.id,
            )?;
        }
        crate::check::distinct_keys(&desired.clients)?;
        for s in &self.senders {
            if s.name.is_empty()
                || !s
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(ConfigError::File(format!(
                    "sender name {:?} must be letters, digits, - or _ (it names a topic)",
                    s.name
                )));
            }
            if let Some(tps) = s.tps
                && tps < 1
            {
                return Err(ConfigError::File(format!(
                    "senders.{}.tps is {tps}: a sender's rate is at least 1 message a second (leave it out for no limit)",
                    s.name
                )));
            }
            let record = SenderConfig {
                name: s.name.clone(),
                group: s.group.clone(),
                channel: s.channel,
                carriers: s.carriers.clone(),
                kind: s.kind.clone(),
                endpoint: s.endpoint.clone(),
                tps: s.tps,
                enabled: s.enabled,
                // check() refused settings that are not scalars.
                settings: s.record_settings().unwrap_or_default(),
            };
            unique(
                desired.senders.insert(s.name.clone(), record),
                "sender",
                &s.name,
            )?;
        }
        for r in &self.routes {
            if r.customer != "*" && !desired.customers.contains_key(&r.customer) {
                return Err(ConfigError::File(format!(
                    "route names unknown customer {}",
                    r.customer
                )));
            }
            let record = RouteRule {
                customer_id: r.customer.clone(),
                channel: r.channel,
                carriers: r
                    .carriers
                    .iter()
                    .map(|c| CarrierRoute {
                        carrier: c.carrier.clone(),
                        groups: c
                            .groups
                            .iter()
                            .map(|g| GroupShare {
                                group: g.group.clone(),
                                ratio: g.ratio,
                            })
                            .collect(),
                    })
                    .collect(),
                other_carriers: r.other_carriers,
            };
            let key = route_key(&r.customer, r.channel);
            unique(desired.routes.insert(key.clone(), record), "route", &key)?;
        }
        for n in &self.numbering {
            let (kind, number) = match (&n.prefix, &n.ported) {
                (Some(prefix), None) => (NumberingKind::Prefix, prefix.clone()),
                (None, Some(number)) => (NumberingKind::Ported, number.clone()),
                _ => {
                    return Err(ConfigError::File(
                        "a numbering entry needs exactly one of prefix or ported".into(),
                    ));
                }
            };
            let key = numbering_key(kind, &number);
            let record = NumberingEntry {
                kind,
                number,
                carrier: n.carrier.clone(),
            };
            unique(
                desired.numbering.insert(key.clone(), record),
                "numbering entry",
                &key,
            )?;
        }
        for b in &self.bill_codes {
            if !desired.customers.contains_key(&b.customer) {
                return Err(ConfigError::File(format!(
                    "bill code {} names unknown customer {}",
                    b.code, b.customer
                )));
            }
            let key = bill_code_key(&b.customer, &b.code);
            let record = BillCode {
                customer_id: b.customer.clone(),
                code: b.code.clone(),
                ad_check: b.ad_check,
                description: b.description.clone(),
            };
            unique(
                desired.bill_codes.insert(key.clone(), record),
                "bill code",
                &key,
            )?;
        }
        for (at, id, p) in self.all_policies() {
            if id != ContentPolicy::GLOBAL && !desired.customers.contains_key(&id) {
                return Err(ConfigError::File(format!(
                    "{at}.id names unknown customer {id:?} (a policy is \"*\" or a customer id)"
                )));
            }
            let defaults = ContentPolicy::new(id.clone());
            let record = ContentPolicy {
                policy_id: id.clone(),
                blocked_keywords: p.blocked_keywords.clone(),
                ad_prefix: p.ad_prefix.clone().unwrap_or(defaults.ad_prefix),
                ad_opt_out_marker: p
                    .ad_opt_out_marker
                    .clone()
                    .unwrap_or(defaults.ad_opt_out_marker),
                ad_quiet_start_hour: p.quiet_start_hour.unwrap_or(defaults.ad_quiet_start_hour),
                ad_quiet_end_hour: p.quiet_end_hour.unwrap_or(defaults.ad_quiet_end_hour),
            };
            unique(desired.policies.insert(id.clone(), record), "policy", &id)?;
        }
        Ok(desired)
    }
}

fn unique<T>(previous: Option<T>, what: &str, key: &str) -> Result<(), ConfigError> {
    match previous {
        Some(_) => Err(ConfigError::File(format!("{what} {key} is declared twice"))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEMO: &str = include_str!("../../../infra/demo-config.toml");

    #[test]
    fn the_demo_config_is_valid() {
        let desired = ConfigFile::parse(DEMO)
            .expect("parses")
            .desired()
            .expect("consistent");
        assert!(!desired.customers.is_empty());
        assert!(desired.clients.values().all(|c| c.key_hash.len() == 64));
        assert!(desired.routes.contains_key("demo/sms"));
    }

    #[test]
    fn keys_are_stored_hashed() {
        assert_eq!(
            hash_api_key("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn dangling_references_are_refused() {
        let text = r#"
            [[clients]]
            id = "c"
            customer = "ghost"
            api_key = "k"
        "#;
        let err = ConfigFile::parse(text)
            .expect("parses")
            .desired()
            .expect_err("ghost");
        assert!(err.to_string().contains("unknown customer ghost"));
    }
}
