//! Errors of the runtime, saying whether a retry can help.

use thiserror::Error;

/// What stopped a runner or table.
#[derive(Debug, Error)]
pub enum RuntimeError {
    /// The broker refused or did not answer; retrying (or restarting) may help.
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// A record could not be encoded or decoded.
    #[error(transparent)]
    Codec(#[from] switchyard_schemas::CodecError),
    /// The topic catalog is wrong.
    #[error(transparent)]
    Topics(#[from] switchyard_topics::TopicsError),
    /// A topic the stage needs does not exist.
    #[error("topic {0} does not exist: run `switchyard topics apply`")]
    MissingTopic(String),
    /// A table did not catch up in time.
    #[error("table {topic} did not catch up within {seconds} s")]
    TableNotReady { topic: String, seconds: u64 },
    /// A stage's state store cannot be restored (an undecodable changelog entry).
    #[error("state store: {0}")]
    State(String),
    /// Stopped while waiting.
    #[error("stopped")]
    Stopped,
    /// The stage is set up wrong (e.g. a state store on a runner that cannot keep it).
    #[error("stage misconfigured: {0}")]
    Misconfigured(String),
    /// The metrics endpoint could not start.
    #[error("metrics endpoint: {0}")]
    Metrics(#[from] std::io::Error),
}

impl RuntimeError {
    /// Whether trying again later may succeed.
    pub fn is_retriable(&self) -> bool {
        match self {
            RuntimeError::Kafka(_) | RuntimeError::TableNotReady { .. } => true,
            RuntimeError::Codec(e) => e.is_retriable(),
            RuntimeError::Topics(e) => e.is_retriable(),
            RuntimeError::MissingTopic(_)
            | RuntimeError::Metrics(_)
            | RuntimeError::State(_)
            | RuntimeError::Stopped
            | RuntimeError::Misconfigured(_) => false,
        }
    }
}
