//! The registry of sender kinds: each kind checks its endpoint and typed settings (what
//! `config apply` calls before writing anything) and builds a running [`Carrier`] from a
//! sender record (what the dispatch service calls). A new kind is one more entry in [`KINDS`].

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::future::BoxFuture;
use switchyard_runtime::{CancellationToken, Runtime, Table};
use switchyard_schemas::{DispatchRequest, SenderConfig, StateEntry};

use crate::failure::Sent;
pub use crate::settings::KindError;

/// A running sender of some kind: submits one message at a time, up to `window` at once.
pub trait Carrier: Send + Sync + 'static {
    /// Submit `request`'s message and say what became of it.
    fn send<'a>(&'a self, request: &'a DispatchRequest) -> BoxFuture<'a, Sent>;

    /// How many submits may be in flight at once.
    fn window(&self) -> usize;

    /// Whether the connection to the carrier is up (an SMPP bind); kinds without a standing
    /// connection are always "bound" and are judged by their answers.
    fn bound(&self) -> bool {
        true
    }

    /// Stop (close binds); called once the sender's runner ended.
    fn stop(&self) -> BoxFuture<'_, ()> {
        Box::pin(std::future::ready(()))
    }
}

/// What building a sender may need from the dispatch role.
#[derive(Debug)]
pub struct StartContext {
    pub runtime: Runtime,
    /// Where HTTP carriers send receipts.
    pub receipt_url: String,
    pub shutdown: CancellationToken,
    /// The durable receipt index (`state.receipts`), started by the first kind that needs it.
    pub receipts: tokio::sync::OnceCell<Table<String, StateEntry>>,
}

impl StartContext {
    pub fn new(runtime: Runtime, receipt_url: String, shutdown: CancellationToken) -> Self {
        StartContext {
            runtime,
            receipt_url,
            shutdown,
            receipts: tokio::sync::OnceCell::new(),
        }
    }
}

/// One kind of sender.
pub trait SenderKind: Send + Sync + 'static {
    /// The name `kind = "…"` selects it by.
    fn name(&self) -> &'static str;

    /// Check the endpoint and settings (the record's string map) without connecting anywhere.
    fn check(&self, endpoint: &str, settings: &BTreeMap<String, String>) -> Result<(), KindError>;

    /// Build and start a sender of this kind.
    fn start<'a>(
        &'a self,
        sender: &'a SenderConfig,
        context: &'a StartContext,
    ) -> BoxFuture<'a, Result<Arc<dyn Carrier>, KindError>>;
}

/// Every kind, by name.
pub static KINDS: &[&dyn SenderKind] = &[&crate::http::HttpKind, &crate::smpp::SmppKind];

/// Every kind.
pub fn kinds() -> &'static [&'static dyn SenderKind] {
    KINDS
}

/// The kind called `name`.
pub fn kind(name: &str) -> Result<&'static dyn SenderKind, KindError> {
    KINDS
        .iter()
        .copied()
        .find(|k| k.name() == name)
        .ok_or_else(|| KindError::UnknownKind {
            kind: name.to_string(),
            known: KINDS
                .iter()
                .map(|k| k.name())
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// Check a sender's endpoint and settings with its kind.
pub fn check(
    kind_name: &str,
    endpoint: &str,
    settings: &BTreeMap<String, String>,
) -> Result<(), KindError> {
    let (_, rest) = crate::common::split(settings)?;
    kind(kind_name)?.check(endpoint, &rest)
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
    fn unknown_kinds_are_named() {
        let e = check("carrier-pigeon", "http://x", &map(&[])).expect_err("unknown");
        assert_eq!(
            e.to_string(),
            "kind: \"carrier-pigeon\" is not a sender kind (one of http, smpp)"
        );
    }

    #[test]
    fn each_kind_checks_its_settings() {
        assert_eq!(
            check("http", "http://sim/submit", &map(&[("window", "8")])),
            Ok(())
        );
        let e = check("http", "http://sim/submit", &map(&[("window", "many")])).expect_err("bad");
        assert!(
            e.to_string().starts_with("settings.window: invalid type"),
            "{e}"
        );
        let smpp = map(&[("system_id", "sy"), ("password", "pw"), ("window", "4")]);
        assert_eq!(check("smpp", "smpp://127.0.0.1:2775", &smpp), Ok(()));
        let e = check("smpp", "http://127.0.0.1:2775", &smpp).expect_err("endpoint");
        assert!(matches!(e, KindError::Endpoint(_)), "{e}");
        let mut wrong = smpp.clone();
        wrong.insert("window".into(), "0".into());
        let e = check("smpp", "smpp://127.0.0.1:2775", &wrong).expect_err("window 0");
        assert!(e.to_string().starts_with("settings.window:"), "{e}");
        // The settings every kind shares are checked first, for every kind.
        for kind in ["http", "smpp"] {
            let endpoint = if kind == "http" {
                "http://sim/submit"
            } else {
                "smpp://h:1"
            };
            let mut shared = smpp.clone();
            shared.insert("receipt_deadline_seconds".into(), "0".into());
            let e = check(kind, endpoint, &shared).expect_err("0 s");
            assert!(
                e.to_string()
                    .starts_with("settings.receipt_deadline_seconds:"),
                "{e}"
            );
            let mut shared = smpp.clone();
            shared.insert("failover_after_ms".into(), "soon".into());
            let e = check(kind, endpoint, &shared).expect_err("soon");
            assert!(
                e.to_string().starts_with("settings.failover_after_ms:"),
                "{e}"
            );
        }
    }
}
