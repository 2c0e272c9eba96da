//! The config file format (TOML) and its translation to config records.

use std::collections::BTreeMap;

use serde::Deserialize;
use sha2::{Digest, Sha256};
use switchyard_runtime::{numbering_key, route_key};
use switchyard_schemas::{
    ApiClientConfig, CarrierRoute, Channel, CustomerConfig, GroupShare, NumberingEntry,
    NumberingKind, RouteRule, SenderConfig,
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
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteEntry {
    /// A customer id, or `*` for every customer without its own rule.
    pub customer: String,
    pub channel: Channel,
    pub carriers: Vec<CarrierEntry>,
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
            let record = SenderConfig {
                name: s.name.clone(),
                group: s.group.clone(),
                channel: s.channel,
                carriers: s.carriers.clone(),
                kind: s.kind.clone(),
                endpoint: s.endpoint.clone(),
                tps: s.tps,
                enabled: s.enabled,
                settings: s.settings.clone(),
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
