//! `KeySet`: the keys present in a topic, kept live, without decoding values. A stage uses it to
//! remember what it already emitted (e.g. report: which messages have a final report), with the
//! topic itself as the durable state. Keys written by this process are added at once with
//! `insert`, so a duplicate arriving before the topic is read back is still caught.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rdkafka::Message;
use rdkafka::message::OwnedMessage;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::follow::spawn_following;
use crate::{Runtime, RuntimeError};

/// The live set of keys of a topic (a tombstone removes its key).
#[derive(Debug, Clone)]
pub struct KeySet {
    topic: String,
    keys: Arc<RwLock<HashSet<String>>>,
    ready: watch::Receiver<bool>,
}

impl KeySet {
    /// Start following `topic` from the beginning and wait until it is read to its end.
    pub async fn start_ready(
        runtime: &Runtime,
        topic: &str,
        shutdown: CancellationToken,
    ) -> Result<Self, RuntimeError> {
        // Keys this process writes are inserted at once; others may arrive a little later.
        let keys = Arc::new(RwLock::new(HashSet::new()));
        let followed = keys.clone();
        let ready = spawn_following(runtime, topic, shutdown, move |message| {
            apply(&followed, &message);
            std::future::ready(true)
        })
        .await?;
        let set = KeySet {
            topic: topic.to_string(),
            keys,
            ready,
        };
        let mut waiting = set.ready.clone();
        match tokio::time::timeout(Duration::from_secs(120), waiting.wait_for(|r| *r)).await {
            Ok(Ok(_)) => Ok(set),
            _ => Err(RuntimeError::TableNotReady {
                topic: topic.to_string(),
                seconds: 120,
            }),
        }
    }

    /// An unfollowed set, for unit tests of stage logic.
    pub fn in_memory(topic: &str) -> Self {
        let (_tx, ready) = watch::channel(true);
        KeySet {
            topic: topic.to_string(),
            keys: Default::default(),
            ready,
        }
    }

    /// Whether `key` is in the topic (or was inserted here).
    pub fn contains(&self, key: &str) -> bool {
        self.keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(key)
    }

    /// Record `key` now; true if it was not there yet.
    pub fn insert(&self, key: &str) -> bool {
        self.keys
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(key.to_string())
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    /// True when no key is present.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The topic followed.
    pub fn topic(&self) -> &str {
        &self.topic
    }
}

/// Apply one record to the key set: a value adds its key, a tombstone removes it.
fn apply(keys: &RwLock<HashSet<String>>, message: &OwnedMessage) {
    let Some(key) = message.key().and_then(|k| std::str::from_utf8(k).ok()) else {
        return;
    };
    let mut keys = keys
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if message.payload().is_some() {
        keys.insert(key.to_string());
    } else {
        keys.remove(key);
    }
}
