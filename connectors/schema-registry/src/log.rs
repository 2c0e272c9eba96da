//! The `_schemas` topic as the registry's store: a follower applies every record to the
//! state in log order; a write is produced and answered only once the follower applied it,
//! so every instance reading the topic agrees and a restart rebuilds the same ids. To catch up
//! with other instances it writes a NOOP marker and waits to read it back (as Confluent's
//! registry does), which needs no high watermark.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use rdkafka::Message;
use rdkafka::message::OwnedMessage;
use rdkafka::producer::FutureRecord;
use switchyard_runtime::{
    CancellationToken, KafkaSettings, RuntimeError, follow, read_from_beginning,
};
use tokio::sync::watch;

use crate::RegistryError;
use crate::state::{LogKey, RegistryState};

const TIMEOUT: Duration = Duration::from_secs(15);

/// The registry's log and the state applied from it.
#[derive(Clone)]
pub struct SchemaLog {
    topic: String,
    producer: switchyard_runtime::Producer,
    state: Arc<RwLock<RegistryState>>,
    /// Next offset the follower will apply (= every record below it is applied).
    applied: watch::Receiver<i64>,
}

impl std::fmt::Debug for SchemaLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchemaLog")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

impl SchemaLog {
    /// Follow `topic` (one partition) and wait until everything in it is applied.
    pub async fn open(
        kafka: &KafkaSettings,
        topic: &str,
        shutdown: CancellationToken,
    ) -> Result<Self, RegistryError> {
        let follower = kafka
            .reader(&format!("registry.{topic}"))
            .map_err(RegistryError::store)?;
        let partitions = read_from_beginning(&follower, topic).map_err(|e| match e {
            RuntimeError::MissingTopic(_) => RegistryError::Store(format!(
                "topic {topic} does not exist: run `switchyard topics apply`"
            )),
            other => RegistryError::store(other),
        })?;

        let state = Arc::new(RwLock::new(RegistryState::default()));
        let (applied_tx, applied) = watch::channel(0);
        let followed = state.clone();
        tokio::spawn(follow(
            follower,
            topic.to_string(),
            partitions,
            None,
            shutdown,
            move |message| {
                apply(&followed, &applied_tx, &message);
                std::future::ready(true)
            },
        ));
        let log = SchemaLog {
            topic: topic.to_string(),
            producer: kafka.producer().map_err(RegistryError::store)?,
            state,
            applied,
        };
        log.catch_up().await?;
        Ok(log)
    }

    /// Read access to the state.
    pub fn read(&self) -> std::sync::RwLockReadGuard<'_, RegistryState> {
        self.state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Wait until every record now in the topic (written by any instance) is applied: write
    /// a NOOP marker and wait until the follower has read past it.
    pub async fn catch_up(&self) -> Result<(), RegistryError> {
        let key = serde_json::to_vec(&LogKey::Noop { magic: 0 }).map_err(RegistryError::store)?;
        self.append(&key, None).await
    }

    /// Append a record and wait until it is applied.
    pub async fn append(&self, key: &[u8], value: Option<&[u8]>) -> Result<(), RegistryError> {
        let mut record: FutureRecord<'_, [u8], [u8]> =
            FutureRecord::to(&self.topic).key(key).partition(0);
        if let Some(value) = value {
            record = record.payload(value);
        }
        let delivery = self
            .producer
            .send(record, TIMEOUT)
            .await
            .map_err(|(e, _)| RegistryError::store(e))?;
        self.wait_applied(delivery.offset + 1).await
    }

    async fn wait_applied(&self, next: i64) -> Result<(), RegistryError> {
        let mut applied = self.applied.clone();
        match tokio::time::timeout(TIMEOUT, applied.wait_for(|a| *a >= next)).await {
            Ok(Ok(_)) => Ok(()),
            _ => Err(RegistryError::Store(format!(
                "{} not caught up to offset {next} in time",
                self.topic
            ))),
        }
    }
}

/// Apply one log record to the state and tell writers waiting for it.
fn apply(state: &RwLock<RegistryState>, applied: &watch::Sender<i64>, message: &OwnedMessage) {
    let result = state
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .apply(message.key().unwrap_or_default(), message.payload());
    if let Err(reason) = result {
        tracing::warn!(offset = message.offset(), %reason, "registry record not applied");
    }
    let _ = applied.send(message.offset() + 1);
}
