//! Kind `http`: the generic JSON carrier API (`switchyard_carrier_http::protocol`). The
//! endpoint is the submit URL; settings are [`HttpSettings`].

pub mod carrier;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde::Deserialize;
use switchyard_schemas::SenderConfig;

use crate::registry::{Carrier, SenderKind, StartContext};
use crate::settings::{KindError, read};

pub use carrier::{HttpCarrier, classify_answer, classify_error};

/// Settings of an `http` sender.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    /// Submits in flight at once (1..=1000).
    #[serde(default = "default_window")]
    pub window: usize,
    /// A submit unanswered this long is ambiguous (never resent).
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Sent as `Authorization: Bearer …` when set.
    #[serde(default)]
    pub api_token: Option<String>,
    /// HTTP basic authentication when a password is set and no `api_token` (the user name may
    /// be empty).
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    /// A submitted message with no final report this long after its submit ends unknown
    /// (3006) — decision 0020.
    #[serde(default = "default_receipt_deadline_seconds")]
    pub receipt_deadline_seconds: u64,
}

impl std::fmt::Debug for HttpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpSettings")
            .field("window", &self.window)
            .field("timeout_ms", &self.timeout_ms)
            .field("api_token", &self.api_token.as_ref().map(|_| "<redacted>"))
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("receipt_deadline_seconds", &self.receipt_deadline_seconds)
            .finish()
    }
}

fn default_window() -> usize {
    64
}

fn default_timeout_ms() -> u64 {
    10_000
}

fn default_receipt_deadline_seconds() -> u64 {
    crate::deadline::DEFAULT_SECONDS
}

impl HttpSettings {
    /// Read and check the settings of an `http` sender with `endpoint`.
    pub fn parse(endpoint: &str, map: &BTreeMap<String, String>) -> Result<Self, KindError> {
        match url::Url::parse(endpoint) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {}
            _ => {
                return Err(KindError::Endpoint(format!(
                    "is {endpoint:?}, not an absolute http(s) URL"
                )));
            }
        }
        let settings: HttpSettings = read(map)?;
        if !(1..=1000).contains(&settings.window) {
            return Err(KindError::setting("window", "must be 1..=1000"));
        }
        if settings.timeout_ms == 0 {
            return Err(KindError::setting("timeout_ms", "must be more than 0"));
        }
        crate::deadline::check_seconds(settings.receipt_deadline_seconds)?;
        Ok(settings)
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }
}

/// The `http` kind.
#[derive(Debug, Clone, Copy)]
pub struct HttpKind;

impl SenderKind for HttpKind {
    fn name(&self) -> &'static str {
        "http"
    }

    fn check(&self, endpoint: &str, settings: &BTreeMap<String, String>) -> Result<(), KindError> {
        HttpSettings::parse(endpoint, settings).map(|_| ())
    }

    fn start<'a>(
        &'a self,
        sender: &'a SenderConfig,
        context: &'a StartContext,
    ) -> BoxFuture<'a, Result<Arc<dyn Carrier>, KindError>> {
        Box::pin(async move {
            let settings = HttpSettings::parse(&sender.endpoint, &sender.settings)?;
            let carrier = HttpCarrier::new(sender, context.receipt_url.clone(), &settings)?;
            crate::deadline::register(&sender.name, settings.receipt_deadline_seconds);
            Ok(Arc::new(carrier) as Arc<dyn Carrier>)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_errors() {
        let s = HttpSettings::parse("https://c.example/submit", &BTreeMap::new()).expect("ok");
        assert_eq!((s.window, s.timeout_ms), (64, 10_000));
        assert_eq!(s.receipt_deadline_seconds, 172_800);
        let map = |k: &str, v: &str| BTreeMap::from([(k.to_string(), v.to_string())]);
        let e = HttpSettings::parse("http://c/submit", &map("window", "0")).expect_err("0");
        assert_eq!(e.to_string(), "settings.window: must be 1..=1000");
        let e = HttpSettings::parse("http://c/submit", &map("retries", "3")).expect_err("unknown");
        assert!(
            e.to_string().starts_with("settings.retries: unknown field"),
            "{e}"
        );
        let e = HttpSettings::parse("http://c/submit", &map("receipt_deadline_seconds", "0"))
            .expect_err("0 s");
        assert!(
            e.to_string()
                .starts_with("settings.receipt_deadline_seconds: must be 1..="),
            "{e}"
        );
        let s = HttpSettings::parse("http://c/submit", &map("receipt_deadline_seconds", "5"))
            .expect("5 s");
        assert_eq!(s.receipt_deadline_seconds, 5);
        let e = HttpSettings::parse("smpp://c:1", &BTreeMap::new()).expect_err("scheme");
        assert!(matches!(e, KindError::Endpoint(_)));
    }
}
