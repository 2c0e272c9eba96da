//! Errors of the topic catalog and of applying it.

use thiserror::Error;

/// What went wrong with the catalog or the broker.
#[derive(Debug, Error)]
pub enum TopicsError {
    /// The catalog file is wrong: fix it, a retry will not help.
    #[error("topic catalog: {reason}")]
    Catalog { reason: String },
    /// The broker did not answer or refused the request; a retry may help.
    #[error("broker: {0}")]
    Broker(#[from] rdkafka::error::KafkaError),
    /// The broker refused to create a topic.
    #[error("cannot create topic {topic}: {reason}")]
    Create { topic: String, reason: String },
}

impl TopicsError {
    /// Whether trying again later may succeed.
    pub fn is_retriable(&self) -> bool {
        matches!(self, TopicsError::Broker(_))
    }
}
