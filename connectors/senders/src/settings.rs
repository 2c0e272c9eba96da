//! What can be wrong with a sender's kind, endpoint or settings ([`KindError`], naming the
//! field), and reading a kind's typed settings from the record's map.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use thiserror::Error;

/// A sender that cannot be built as configured. Only `Start` may go away by itself.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KindError {
    /// `kind` names no registered kind.
    #[error("kind: {kind:?} is not a sender kind (one of {known})")]
    UnknownKind { kind: String, known: String },
    /// The endpoint does not suit the kind.
    #[error("endpoint {0}")]
    Endpoint(String),
    /// A setting is unknown, missing, of the wrong type or out of range.
    #[error("settings.{field}: {reason}")]
    Setting { field: String, reason: String },
    /// The settings as a whole (a missing setting: serde names it in the reason).
    #[error("settings: {0}")]
    Settings(String),
    /// Something the sender needs at start is missing (an environment variable, a store).
    #[error("cannot start: {reason}")]
    Start { reason: String, retriable: bool },
}

impl KindError {
    /// Whether building the sender again later may work without changing its config.
    pub fn is_retriable(&self) -> bool {
        matches!(
            self,
            KindError::Start {
                retriable: true,
                ..
            }
        )
    }

    pub fn setting(field: impl Into<String>, reason: impl Into<String>) -> Self {
        KindError::Setting {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// A kind's typed settings from the record's map; errors name the field.
pub fn read<T: DeserializeOwned>(map: &BTreeMap<String, String>) -> Result<T, KindError> {
    crate::strmap::from_map(map).map_err(|(field, reason)| match field {
        Some(field) => KindError::Setting { field, reason },
        None => KindError::Settings(reason),
    })
}
