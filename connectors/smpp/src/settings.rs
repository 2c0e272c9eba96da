//! Typed settings of one SMPP sender (`SmppSettings`), read with serde (unknown fields refused)
//! and validated with errors that name the field. The password is never printed.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::encoding::{DataCoding, LongText};
use crate::receipts::IdForm;

/// A secret that `Debug` does not show.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Password(String);

impl Password {
    pub fn new(password: impl Into<String>) -> Self {
        Password(password.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// How the sender binds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BindMode {
    /// One bind_transceiver connection for submits and receipts.
    #[default]
    Transceiver,
    /// A bind_transmitter connection for submits and a bind_receiver connection for receipts.
    TransmitterReceiver,
}

/// One SMPP sender's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmppSettings {
    pub host: String,
    pub port: u16,
    pub system_id: String,
    pub password: Password,
    #[serde(default)]
    pub system_type: String,
    #[serde(default)]
    pub bind_mode: BindMode,
    /// At most this many unanswered submit_sm.
    #[serde(default = "defaults::window")]
    pub window: usize,
    /// A submit_sm (or bind, enquire_link) unanswered this long is ambiguous.
    #[serde(default = "defaults::submit_timeout_ms")]
    pub submit_timeout_ms: u64,
    #[serde(default = "defaults::enquire_link_interval_ms")]
    pub enquire_link_interval_ms: u64,
    #[serde(default)]
    pub data_coding: DataCoding,
    #[serde(default)]
    pub long_text: LongText,
    /// The source address when a message has none of its own.
    #[serde(default)]
    pub source_addr: String,
    #[serde(default = "defaults::source_ton")]
    pub source_addr_ton: u8,
    #[serde(default = "defaults::source_npi")]
    pub source_addr_npi: u8,
    #[serde(default = "defaults::dest_ton")]
    pub dest_addr_ton: u8,
    #[serde(default = "defaults::dest_npi")]
    pub dest_addr_npi: u8,
    /// Ask for delivery receipts (registered_delivery = 1).
    #[serde(default = "defaults::yes")]
    pub registered_delivery: bool,
    /// First and longest wait between reconnects (doubled each failure, with jitter).
    #[serde(default = "defaults::reconnect_min_ms")]
    pub reconnect_min_ms: u64,
    #[serde(default = "defaults::reconnect_max_ms")]
    pub reconnect_max_ms: u64,
    /// How long a throttled bind sends nothing.
    #[serde(default = "defaults::throttle_pause_ms")]
    pub throttle_pause_ms: u64,
    /// Throttling answers for one message before it is handed back as `Throttled`.
    #[serde(default = "defaults::max_throttle_retries")]
    pub max_throttle_retries: u32,
    /// How long a submit waits for a bind before it fails with `TryAnotherSender`.
    #[serde(default = "defaults::bind_wait_ms")]
    pub bind_wait_ms: u64,
    /// How long an ambiguous submit waits for a receipt before it fails as unknown.
    #[serde(default = "defaults::ambiguous_deadline_ms")]
    pub ambiguous_deadline_ms: u64,
    /// How long a receipt that came before its submit_sm_resp is held, and how many at most.
    #[serde(default = "defaults::early_receipt_ttl_ms")]
    pub early_receipt_ttl_ms: u64,
    #[serde(default = "defaults::early_receipt_capacity")]
    pub early_receipt_capacity: usize,
    /// How a receipt's message id relates to the submit_sm_resp's (see `receipts`).
    #[serde(default)]
    pub receipt_id_form: IdForm,
}

mod defaults {
    pub fn window() -> usize {
        10
    }
    pub fn submit_timeout_ms() -> u64 {
        30_000
    }
    pub fn enquire_link_interval_ms() -> u64 {
        30_000
    }
    pub fn source_ton() -> u8 {
        0
    }
    pub fn source_npi() -> u8 {
        0
    }
    pub fn dest_ton() -> u8 {
        1
    }
    pub fn dest_npi() -> u8 {
        1
    }
    pub fn yes() -> bool {
        true
    }
    pub fn reconnect_min_ms() -> u64 {
        500
    }
    pub fn reconnect_max_ms() -> u64 {
        60_000
    }
    pub fn throttle_pause_ms() -> u64 {
        1_000
    }
    pub fn max_throttle_retries() -> u32 {
        20
    }
    pub fn bind_wait_ms() -> u64 {
        10_000
    }
    pub fn ambiguous_deadline_ms() -> u64 {
        72 * 3_600_000
    }
    pub fn early_receipt_ttl_ms() -> u64 {
        60_000
    }
    pub fn early_receipt_capacity() -> usize {
        10_000
    }
}

/// Settings that cannot work; a retry will not help until they are fixed.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SettingsError {
    #[error("smpp setting {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("smpp settings: {0}")]
    Unreadable(String),
}

impl SettingsError {
    /// Never: the settings must change first.
    pub fn is_retriable(&self) -> bool {
        false
    }
}

fn invalid(field: &'static str, reason: impl Into<String>) -> SettingsError {
    SettingsError::Invalid {
        field,
        reason: reason.into(),
    }
}

impl SmppSettings {
    /// Settings for `host:port` with every default.
    pub fn new(host: &str, port: u16, system_id: &str, password: &str) -> Self {
        SmppSettings {
            host: host.into(),
            port,
            system_id: system_id.into(),
            password: Password::new(password),
            system_type: String::new(),
            bind_mode: BindMode::default(),
            window: defaults::window(),
            submit_timeout_ms: defaults::submit_timeout_ms(),
            enquire_link_interval_ms: defaults::enquire_link_interval_ms(),
            data_coding: DataCoding::default(),
            long_text: LongText::default(),
            source_addr: String::new(),
            source_addr_ton: defaults::source_ton(),
            source_addr_npi: defaults::source_npi(),
            dest_addr_ton: defaults::dest_ton(),
            dest_addr_npi: defaults::dest_npi(),
            registered_delivery: true,
            reconnect_min_ms: defaults::reconnect_min_ms(),
            reconnect_max_ms: defaults::reconnect_max_ms(),
            throttle_pause_ms: defaults::throttle_pause_ms(),
            max_throttle_retries: defaults::max_throttle_retries(),
            bind_wait_ms: defaults::bind_wait_ms(),
            ambiguous_deadline_ms: defaults::ambiguous_deadline_ms(),
            early_receipt_ttl_ms: defaults::early_receipt_ttl_ms(),
            early_receipt_capacity: defaults::early_receipt_capacity(),
            receipt_id_form: IdForm::default(),
        }
    }

    /// Read and validate settings from JSON (e.g. a sender record's settings object).
    pub fn from_json(value: serde_json::Value) -> Result<Self, SettingsError> {
        let settings: SmppSettings =
            serde_json::from_value(value).map_err(|e| SettingsError::Unreadable(e.to_string()))?;
        settings.validate()?;
        Ok(settings)
    }

    /// Check every field; the first wrong one is named.
    pub fn validate(&self) -> Result<(), SettingsError> {
        if self.host.trim().is_empty() {
            return Err(invalid("host", "must not be empty"));
        }
        if self.port == 0 {
            return Err(invalid("port", "must be 1..=65535"));
        }
        // C-octet string limits of bind (SMPP 3.4 §4.1), NUL excluded.
        check_cstr("system_id", &self.system_id, 15, true)?;
        check_cstr("password", self.password.expose(), 8, false)?;
        check_cstr("system_type", &self.system_type, 12, false)?;
        check_cstr("source_addr", &self.source_addr, 20, false)?;
        if !(1..=1000).contains(&self.window) {
            return Err(invalid("window", "must be 1..=1000"));
        }
        for (field, value) in [
            ("submit_timeout_ms", self.submit_timeout_ms),
            ("enquire_link_interval_ms", self.enquire_link_interval_ms),
            ("reconnect_min_ms", self.reconnect_min_ms),
            ("throttle_pause_ms", self.throttle_pause_ms),
            ("bind_wait_ms", self.bind_wait_ms),
            ("ambiguous_deadline_ms", self.ambiguous_deadline_ms),
            ("early_receipt_ttl_ms", self.early_receipt_ttl_ms),
        ] {
            if value == 0 {
                return Err(invalid(field, "must be more than 0"));
            }
        }
        if self.reconnect_max_ms < self.reconnect_min_ms {
            return Err(invalid(
                "reconnect_max_ms",
                "must be at least reconnect_min_ms",
            ));
        }
        if self.early_receipt_capacity == 0 {
            return Err(invalid("early_receipt_capacity", "must be more than 0"));
        }
        for (field, value) in [
            ("source_addr_ton", self.source_addr_ton),
            ("dest_addr_ton", self.dest_addr_ton),
        ] {
            if value > 6 {
                return Err(invalid(field, "must be 0..=6"));
            }
        }
        for (field, value) in [
            ("source_addr_npi", self.source_addr_npi),
            ("dest_addr_npi", self.dest_addr_npi),
        ] {
            if ![0, 1, 3, 4, 6, 8, 9, 10, 14, 18].contains(&value) {
                return Err(invalid(field, "is not an SMPP NPI value"));
            }
        }
        Ok(())
    }

    pub fn submit_timeout(&self) -> Duration {
        Duration::from_millis(self.submit_timeout_ms)
    }

    pub fn enquire_link_interval(&self) -> Duration {
        Duration::from_millis(self.enquire_link_interval_ms)
    }

    pub fn throttle_pause(&self) -> Duration {
        Duration::from_millis(self.throttle_pause_ms)
    }

    pub fn bind_wait(&self) -> Duration {
        Duration::from_millis(self.bind_wait_ms)
    }

    pub fn ambiguous_deadline(&self) -> Duration {
        Duration::from_millis(self.ambiguous_deadline_ms)
    }

    pub fn early_receipt_ttl(&self) -> Duration {
        Duration::from_millis(self.early_receipt_ttl_ms)
    }
}

fn check_cstr(
    field: &'static str,
    value: &str,
    max: usize,
    required: bool,
) -> Result<(), SettingsError> {
    if required && value.is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    if !value.is_ascii() || value.contains('\0') {
        return Err(invalid(field, "must be ASCII without NUL"));
    }
    if value.len() > max {
        return Err(invalid(field, format!("at most {max} characters")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_and_a_full_record() {
        let s = SmppSettings::from_json(json!({
            "host": "smsc.example", "port": 2775, "system_id": "switchyard", "password": "pw",
            "bind_mode": "transmitter_receiver", "window": 20, "data_coding": "ksc5601",
            "long_text": "payload", "source_addr": "1588", "receipt_id_form": "receipt_hex"
        }))
        .expect("valid");
        assert_eq!(s.window, 20);
        assert_eq!(s.bind_mode, BindMode::TransmitterReceiver);
        assert_eq!(s.data_coding, DataCoding::Ksc5601);
        assert_eq!(s.submit_timeout(), Duration::from_secs(30));
        assert_eq!(s.enquire_link_interval(), Duration::from_secs(30));
        assert_eq!(s.receipt_id_form, IdForm::ReceiptHex);
        assert_eq!(
            SmppSettings::new("smsc.example", 2775, "switchyard", "pw").validate(),
            Ok(())
        );
    }

    #[test]
    fn errors_name_the_field() {
        let base = json!({"host": "h", "port": 2775, "system_id": "s", "password": "p"});
        let with = |k: &str, v: serde_json::Value| {
            let mut o = base.clone();
            o[k] = v;
            SmppSettings::from_json(o)
        };
        let field = |r: Result<SmppSettings, SettingsError>| match r {
            Err(SettingsError::Invalid { field, .. }) => field,
            other => panic!("expected an invalid field, got {other:?}"),
        };
        assert_eq!(field(with("window", json!(0))), "window");
        assert_eq!(
            field(with("password", json!("waytoolongpassword"))),
            "password"
        );
        assert_eq!(field(with("system_id", json!(""))), "system_id");
        assert_eq!(field(with("host", json!(" "))), "host");
        assert_eq!(
            field(with("submit_timeout_ms", json!(0))),
            "submit_timeout_ms"
        );
        assert_eq!(field(with("dest_addr_npi", json!(2))), "dest_addr_npi");
        assert_eq!(
            field(with("reconnect_max_ms", json!(1))),
            "reconnect_max_ms"
        );
        let unknown = with("windw", json!(3));
        assert!(
            matches!(&unknown, Err(SettingsError::Unreadable(e)) if e.contains("windw")),
            "{unknown:?}"
        );
        let bad_enum = with("data_coding", json!("latin9"));
        assert!(matches!(bad_enum, Err(SettingsError::Unreadable(_))));
    }

    #[test]
    fn the_password_is_never_printed() {
        let s = SmppSettings::new("h", 1, "s", "hunter2");
        assert!(!format!("{s:?}").contains("hunter2"));
        assert_eq!(s.password.expose(), "hunter2");
    }
}
