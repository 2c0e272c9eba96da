//! Errors of schema loading and of the wire-format codec.

use thiserror::Error;

/// A schema file that cannot be used. Never helped by a retry: the build ships bad schemas.
#[derive(Debug, Clone, Error)]
pub enum SchemaError {
    #[error("no schema named {0}")]
    Unknown(String),
    #[error("schema {name} is invalid: {reason}")]
    Invalid { name: String, reason: String },
}

/// A record that could not be encoded or decoded.
#[derive(Debug, Clone, Error)]
pub enum CodecError {
    /// The registry could not be reached or answered with a server error: retry later.
    #[error("schema registry unavailable: {0}")]
    RegistryUnavailable(String),
    /// The registry refused the schema (incompatible, unknown id, ...): a retry will not help.
    #[error("schema registry refused: {0}")]
    RegistryRefused(String),
    /// The bytes are not a record of the expected type in the Confluent wire format.
    #[error("cannot decode record: {0}")]
    Decode(String),
    /// The value does not fit its schema.
    #[error("cannot encode record: {0}")]
    Encode(String),
    #[error(transparent)]
    Schema(#[from] SchemaError),
}

impl CodecError {
    /// Whether trying again later may succeed.
    pub fn is_retriable(&self) -> bool {
        matches!(self, CodecError::RegistryUnavailable(_))
    }
}
