//! `config apply --prune --prune-topics`: delete the topics of senders the apply deleted (their
//! queued messages are lost with them, hence the separate flag).

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;
use switchyard_runtime::Runtime;

use crate::ConfigError;

/// Delete the logical `topics`; a topic already gone counts as deleted. Returns them.
pub async fn delete_topics(
    runtime: &Runtime,
    topics: &[String],
) -> Result<Vec<String>, ConfigError> {
    if topics.is_empty() {
        return Ok(Vec::new());
    }
    let admin: AdminClient<DefaultClientContext> = runtime.kafka.client_config().create()?;
    let physical: Vec<String> = topics.iter().map(|t| runtime.kafka.topic(t)).collect();
    let names: Vec<&str> = physical.iter().map(String::as_str).collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    for result in admin.delete_topics(&names, &options).await? {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::UnknownTopicOrPartition)) => {}
            Err((topic, code)) => {
                return Err(ConfigError::TopicDeletion(format!("{topic}: {code}")));
            }
        }
    }
    tracing::info!(topics = ?topics, "deleted the topics of deleted senders");
    Ok(topics.to_vec())
}
