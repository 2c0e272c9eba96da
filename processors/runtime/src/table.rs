//! `Table<K, V>`: a compacted topic materialized in memory and kept live. Reads every
//! partition from the beginning (no consumer group, no commits), applies each record in order,
//! and deletes a key on a tombstone. The topic is the state; the map is a cache of it.
//! Ready once every partition reported end-of-partition (fetch-based, so it is exact). Every
//! table and key set of a runtime reads through one shared reader (`followers`).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rdkafka::Message;
use rdkafka::message::OwnedMessage;
use switchyard_schemas::Record;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::follow::spawn_following;
use crate::metrics::TopicLabel;
use crate::{Runtime, RuntimeError};

/// A key type a table can be indexed by.
pub trait TableKey: Eq + Hash + Clone + Send + Sync + 'static {
    /// The key from a record's key bytes; `None` skips the record.
    fn from_key_bytes(bytes: &[u8]) -> Option<Self>;
}

impl TableKey for String {
    fn from_key_bytes(bytes: &[u8]) -> Option<Self> {
        std::str::from_utf8(bytes).ok().map(str::to_string)
    }
}

/// A live, read-only view of a compacted topic.
#[derive(Debug)]
pub struct Table<K, V> {
    topic: String,
    entries: Arc<RwLock<HashMap<K, V>>>,
    ready: watch::Receiver<bool>,
}

impl<K, V> Clone for Table<K, V> {
    fn clone(&self) -> Self {
        Table {
            topic: self.topic.clone(),
            entries: self.entries.clone(),
            ready: self.ready.clone(),
        }
    }
}

impl<K: TableKey, V: Record + Clone> Table<K, V> {
    /// Start materializing `topic`; the table follows it until `shutdown`.
    pub async fn start(
        runtime: &Runtime,
        topic: &str,
        shutdown: CancellationToken,
    ) -> Result<Self, RuntimeError> {
        // Every table of the runtime follows through its one shared reader.
        let entries = Arc::new(RwLock::new(HashMap::new()));
        let follower = Arc::new(Follower {
            runtime: runtime.clone(),
            topic: topic.to_string(),
            entries: entries.clone(),
            shutdown: shutdown.clone(),
        });
        let ready = spawn_following(runtime, topic, shutdown, move |message| {
            let follower = follower.clone();
            async move { follower.apply(message).await }
        })
        .await?;
        Ok(Table {
            topic: topic.to_string(),
            entries,
            ready,
        })
    }

    /// Start and wait until the table holds everything the topic held at start.
    pub async fn start_ready(
        runtime: &Runtime,
        topic: &str,
        shutdown: CancellationToken,
    ) -> Result<Self, RuntimeError> {
        let table = Self::start(runtime, topic, shutdown).await?;
        table.wait_ready(Duration::from_secs(60)).await?;
        Ok(table)
    }

    /// Wait until the table has caught up with the topic as it was at start.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<(), RuntimeError> {
        let mut ready = self.ready.clone();
        match tokio::time::timeout(timeout, ready.wait_for(|r| *r)).await {
            Ok(Ok(_)) => Ok(()),
            _ => Err(RuntimeError::TableNotReady {
                topic: self.topic.clone(),
                seconds: timeout.as_secs(),
            }),
        }
    }

    /// The current value of `key`.
    pub fn get(&self, key: &K) -> Option<V> {
        self.read().get(key).cloned()
    }

    /// The values matching `keep`, cloning only those (no copy of the whole table).
    pub fn values_where(&self, mut keep: impl FnMut(&V) -> bool) -> Vec<V> {
        self.read().values().filter(|v| keep(v)).cloned().collect()
    }

    /// Every entry, as of now.
    pub fn snapshot(&self) -> HashMap<K, V> {
        self.read().clone()
    }

    /// How many keys the table holds.
    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// True when the table holds no key.
    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    /// The topic this table follows.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<K, V>> {
        self.entries
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl<K: TableKey, V: Record + Clone> Table<K, V> {
    /// A table over fixed entries, for unit tests of stage logic (no broker).
    pub fn from_entries(topic: &str, entries: impl IntoIterator<Item = (K, V)>) -> Self {
        let (_tx, ready) = watch::channel(true);
        Table {
            topic: topic.to_string(),
            entries: Arc::new(RwLock::new(entries.into_iter().collect())),
            ready,
        }
    }
}

struct Follower<K, V> {
    runtime: Runtime,
    topic: String,
    entries: Arc<RwLock<HashMap<K, V>>>,
    shutdown: CancellationToken,
}

impl<K: TableKey, V: Record + Clone> Follower<K, V> {
    /// Apply one record: a value sets its key, a tombstone deletes it. False when stopped.
    async fn apply(&self, message: OwnedMessage) -> bool {
        let Some(key) = message.key().and_then(K::from_key_bytes) else {
            self.skip(
                message.partition(),
                message.offset(),
                "record without a usable key",
            );
            return true;
        };
        match message.payload() {
            None => {
                self.write().remove(&key);
            }
            Some(payload) => match self.decode(payload, &self.shutdown).await {
                Some(Ok(value)) => {
                    self.write().insert(key, value);
                }
                Some(Err(reason)) => self.skip(message.partition(), message.offset(), &reason),
                None => return false,
            },
        }
        true
    }

    /// Decode, waiting while the registry is unavailable; `None` when stopped meanwhile.
    async fn decode(
        &self,
        payload: &[u8],
        shutdown: &CancellationToken,
    ) -> Option<Result<V, String>> {
        loop {
            match self.runtime.codec.decode::<V>(payload).await {
                Ok(value) => return Some(Ok(value)),
                Err(e) if e.is_retriable() => {
                    tracing::warn!(topic = %self.topic, error = %e, "registry unavailable; table waits");
                    tokio::select! {
                        _ = shutdown.cancelled() => return None,
                        _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                    }
                }
                Err(e) => return Some(Err(e.to_string())),
            }
        }
    }

    fn skip(&self, partition: i32, offset: i64, reason: &str) {
        self.runtime
            .metrics
            .table_undecodable
            .get_or_create(&TopicLabel {
                topic: self.topic.clone(),
            })
            .inc();
        tracing::error!(topic = %self.topic, partition, offset, reason, "table record skipped");
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<K, V>> {
        self.entries
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
