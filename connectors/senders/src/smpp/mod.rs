//! Kind `smpp`: an SMPP 3.4 bind through `switchyard-smpp`. The endpoint is
//! `smpp://host:port`; settings are the crate's `SmppSettings` (unknown fields refused) but
//! `host`/`port`, plus `password_env`: the name of an environment variable of the dispatch
//! process holding the password, so it is not stored on the config topic.

pub mod carrier;
pub mod index;
pub mod sink;

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::future::BoxFuture;
use switchyard_runtime::Table;
use switchyard_runtime::names::RECEIPT_INDEX;
use switchyard_schemas::SenderConfig;
use switchyard_smpp::{Password, SettingsError, SmppSender, SmppSettings};

use crate::registry::{Carrier, SenderKind, StartContext};
use crate::settings::{KindError, read};

pub use carrier::{SmppCarrier, classify};
pub use index::TopicIndex;
pub use sink::{KafkaSink, report_of};

/// The setting naming the password's environment variable.
pub const PASSWORD_ENV: &str = "password_env";

/// An `smpp` sender's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct SmppKindSettings {
    pub smpp: SmppSettings,
    /// The environment variable holding the password, when the settings name one.
    pub password_env: Option<String>,
}

/// `host` and `port` of `smpp://host:port`.
pub fn parse_endpoint(endpoint: &str) -> Result<(String, u16), KindError> {
    let wrong = || {
        KindError::Endpoint(format!(
            "is {endpoint:?}, not smpp://host:port (e.g. smpp://smsc.example.com:2775)"
        ))
    };
    let rest = endpoint.strip_prefix("smpp://").ok_or_else(wrong)?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let (host, port) = rest.rsplit_once(':').ok_or_else(wrong)?;
    let port: u16 = port.parse().map_err(|_| wrong())?;
    if host.is_empty() || host.contains('/') || port == 0 {
        return Err(wrong());
    }
    Ok((host.to_string(), port))
}

impl SmppKindSettings {
    /// Read and check the settings of an `smpp` sender with `endpoint`.
    pub fn parse(endpoint: &str, map: &BTreeMap<String, String>) -> Result<Self, KindError> {
        let (host, port) = parse_endpoint(endpoint)?;
        let mut map = map.clone();
        for field in ["host", "port"] {
            if map.contains_key(field) {
                return Err(KindError::setting(
                    field,
                    "is taken from the endpoint (smpp://host:port); remove it",
                ));
            }
        }
        let password_env = map.remove(PASSWORD_ENV);
        if let Some(name) = &password_env {
            if map.contains_key("password") {
                return Err(KindError::setting(
                    PASSWORD_ENV,
                    "give password or password_env, not both",
                ));
            }
            if name.trim().is_empty() {
                return Err(KindError::setting(PASSWORD_ENV, "must not be empty"));
            }
            // Checked for form now; read by the dispatch process at start.
            map.insert("password".into(), String::new());
        }
        map.insert("host".into(), host);
        map.insert("port".into(), port.to_string());
        let smpp: SmppSettings = read(&map)?;
        smpp.validate().map_err(settings_error)?;
        Ok(SmppKindSettings { smpp, password_env })
    }

    /// Take the password from the environment variable named by `password_env`, if any.
    pub fn resolve_password(
        &mut self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<(), KindError> {
        if let Some(name) = &self.password_env {
            let password = env(name).ok_or_else(|| KindError::Start {
                reason: format!("environment variable {name} (password_env) is not set"),
                retriable: false,
            })?;
            self.smpp.password = Password::new(password);
            self.smpp.validate().map_err(settings_error)?;
        }
        Ok(())
    }
}

fn settings_error(e: SettingsError) -> KindError {
    match e {
        SettingsError::Invalid { field, reason } => KindError::setting(field, reason),
        SettingsError::Unreadable(reason) => KindError::Settings(reason),
    }
}

/// The `smpp` kind.
#[derive(Debug, Clone, Copy)]
pub struct SmppKind;

impl SenderKind for SmppKind {
    fn name(&self) -> &'static str {
        "smpp"
    }

    fn check(&self, endpoint: &str, settings: &BTreeMap<String, String>) -> Result<(), KindError> {
        SmppKindSettings::parse(endpoint, settings).map(|_| ())
    }

    fn start<'a>(
        &'a self,
        sender: &'a SenderConfig,
        context: &'a StartContext,
    ) -> BoxFuture<'a, Result<Arc<dyn Carrier>, KindError>> {
        Box::pin(async move {
            let mut settings = SmppKindSettings::parse(&sender.endpoint, &sender.settings)?;
            settings.resolve_password(|name| std::env::var(name).ok())?;
            let table = context
                .receipts
                .get_or_try_init(|| {
                    Table::start_ready(&context.runtime, RECEIPT_INDEX, context.shutdown.clone())
                })
                .await
                .map_err(|e| KindError::Start {
                    reason: format!("receipt index {RECEIPT_INDEX}: {e}"),
                    retriable: true,
                })?
                .clone();
            let index = Arc::new(TopicIndex::new(
                context.runtime.clone(),
                table,
                &sender.name,
            ));
            let sink = Arc::new(
                KafkaSink::new(context.runtime.clone(), &sender.name).tombstoning(index.clone()),
            );
            let window = settings.smpp.window;
            let bind = SmppSender::start(settings.smpp, index, sink).map_err(settings_error)?;
            Ok(Arc::new(SmppCarrier::new(&sender.name, bind, window)) as Arc<dyn Carrier>)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(entries: &[(&str, &str)]) -> BTreeMap<String, String> {
        entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn endpoint_gives_host_and_port() {
        assert_eq!(
            parse_endpoint("smpp://smsc.example:2775").expect("ok"),
            ("smsc.example".to_string(), 2775)
        );
        for wrong in [
            "http://h:1",
            "smpp://h",
            "smpp://:1",
            "smpp://h:0",
            "smpp://h:x",
        ] {
            assert!(parse_endpoint(wrong).is_err(), "{wrong}");
        }
    }

    #[test]
    fn typed_settings_with_field_errors() {
        let s = SmppKindSettings::parse(
            "smpp://127.0.0.1:2775",
            &map(&[
                ("system_id", "sw"),
                ("password", "pw"),
                ("window", "20"),
                ("bind_mode", "transmitter_receiver"),
            ]),
        )
        .expect("valid");
        assert_eq!(s.smpp.window, 20);
        assert_eq!(s.smpp.port, 2775);
        let err = |entries: &[(&str, &str)]| {
            SmppKindSettings::parse("smpp://h:1", &map(entries))
                .expect_err("invalid")
                .to_string()
        };
        assert!(
            err(&[("system_id", "s"), ("password", "p"), ("window", "x")])
                .starts_with("settings.window: invalid type: `x`")
        );
        assert!(
            err(&[("system_id", "s"), ("password", "p"), ("windw", "1")])
                .starts_with("settings.windw: unknown field")
        );
        assert!(
            err(&[("system_id", "s"), ("password", "p"), ("host", "h")])
                .starts_with("settings.host:")
        );
        assert!(err(&[("password", "p")]).contains("system_id"));
        assert!(
            err(&[
                ("system_id", "s"),
                ("password", "p"),
                ("data_coding", "latin9")
            ])
            .starts_with("settings.data_coding:")
        );
    }

    #[test]
    fn the_password_may_come_from_the_environment() {
        let mut s = SmppKindSettings::parse(
            "smpp://h:1",
            &map(&[("system_id", "s"), ("password_env", "SKT_PW")]),
        )
        .expect("valid");
        assert!(s.resolve_password(|_| None).is_err());
        s.resolve_password(|n| (n == "SKT_PW").then(|| "secret".to_string()))
            .expect("set");
        assert_eq!(s.smpp.password.expose(), "secret");
        let both = SmppKindSettings::parse(
            "smpp://h:1",
            &map(&[("system_id", "s"), ("password", "p"), ("password_env", "X")]),
        );
        assert!(both.is_err());
    }
}
