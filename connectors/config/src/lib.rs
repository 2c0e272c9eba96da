//! Declarative config: `switchyard config apply FILE` writes customers, API clients (keys
//! hashed), senders, routing rules and numbering to the compacted `config.*` topics, only where
//! they differ; `config show` prints what the topics hold, secrets masked. Bill codes and
//! content policies too; `policy` edits a policy's blocklist and lists the blocks.

mod apply;
pub mod balance;
mod check;
pub mod drain;
mod file;
mod mask;
pub mod policy;
mod prune_topics;
mod read;
pub mod senders;

pub use apply::{ConfigReport, PRUNE_CONFIRM_ABOVE, Plan, apply, plan, show};
pub use file::{ConfigFile, Desired, hash_api_key};
pub use mask::{MASK, Masked, is_secret_name, masked_url};
pub use prune_topics::delete_topics;

/// What can go wrong applying config.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file is wrong; fix it (a retry will not help).
    #[error("config file: {0}")]
    File(String),
    /// The broker or registry failed; a retry may help.
    #[error(transparent)]
    Runtime(#[from] switchyard_runtime::RuntimeError),
    #[error(transparent)]
    Topics(#[from] switchyard_topics::TopicsError),
    /// Writing the config records failed (see whether a retry can help).
    #[error(transparent)]
    Publish(#[from] switchyard_runtime::PublishError),
    /// The broker refused or did not answer an admin request; a retry may help.
    #[error(transparent)]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// The broker refused to delete a sender topic (e.g. not authorized); a retry will not help.
    #[error("deleting topic {0}")]
    TopicDeletion(String),
}
