//! What stops a replay, and whether running it again later can help.

use thiserror::Error;

use super::decode::DecodeError;

/// Why `switchyard replay` cannot go on (a record that does not decode is not one: it is
/// counted and reported, and the replay continues).
#[derive(Debug, Error)]
pub enum ReplayError {
    /// An option is wrong (`--from`, `--to`, `--filter`). Fix it; a retry will not help.
    #[error("{0}")]
    BadArgument(String),
    /// The topic is not on the broker in this namespace.
    #[error(
        "topic {logical} does not exist (looked for {physical} on the broker; \
         `switchyard topics list` names the topics, --namespace picks the environment)"
    )]
    MissingTopic { logical: String, physical: String },
    /// The broker refused or did not answer. A retry may help.
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// The schema registry did not answer, even after waiting. A retry may help.
    #[error(transparent)]
    RegistryUnavailable(DecodeError),
    /// The schema registry settings are wrong (e.g. the URL).
    #[error("schema registry: {0}")]
    Registry(String),
    /// Records could not be written to stdout (other than its reader going away).
    #[error("writing the records: {0}")]
    Output(String),
}

impl ReplayError {
    /// Whether running the replay again later may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            ReplayError::Kafka(_) => true,
            ReplayError::RegistryUnavailable(e) => e.is_retryable(),
            ReplayError::BadArgument(_)
            | ReplayError::MissingTopic { .. }
            | ReplayError::Registry(_)
            | ReplayError::Output(_) => false,
        }
    }
}
