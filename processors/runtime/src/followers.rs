//! One Kafka reader per runtime for every table and key set: each followed topic is added to
//! its assignment when first followed (`incremental_assign`, from the beginning), each partition
//! read from its own queue, so every end-of-partition names its topic; records fan out to every
//! follower of the topic. A topic stays in the assignment while the reader is open (a later
//! follower reads it again from the beginning); the reader closes when its last follower leaves.
//!
//! The number of clients no longer grows with the number of tables (issue 20): `switchyard up`
//! follows fourteen tables and key sets with one `reader.tables` client.

mod partition_feed;

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use rdkafka::Message;
use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use rdkafka::message::OwnedMessage;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::RuntimeError;
use crate::error_log::ErrorLog;
use crate::kafka::{KafkaSettings, Reader, partitions_of};
use partition_feed::{PartitionFeed, Sink};

/// The name of the shared reader: its client is `reader.tables`.
pub(crate) const READER_NAME: &str = "tables";

/// Records a follower may have waiting before its topic's partitions wait for it.
const FEED_CAPACITY: usize = 1024;

/// What a follower receives, in order per partition.
#[derive(Debug)]
pub(crate) enum Fed {
    /// The next record of a partition.
    Record(OwnedMessage),
    /// The partition was read to its end (everything before it was fed).
    End(i32),
}

/// A follower's view of one topic: its records from the beginning, and its partitions.
#[derive(Debug)]
pub(crate) struct Feed {
    records: mpsc::Receiver<Fed>,
    /// Every partition of the topic, each reported once by `Fed::End` when caught up.
    pub partitions: HashSet<i32>,
    _member: Member,
}

impl Feed {
    /// The next record or end of partition; `None` when the reader stopped feeding.
    pub async fn recv(&mut self) -> Option<Fed> {
        self.records.recv().await
    }
}

/// The shared readers of a runtime (and its clones), by client settings: clones of a runtime
/// whose Kafka settings differ (other brokers, overrides) get a reader of their own.
#[derive(Debug, Default)]
pub(crate) struct Followers {
    readers: Mutex<HashMap<String, Shared>>,
}

impl Followers {
    /// Follow the physical `topic` from its beginning with the shared reader of `kafka`
    /// (opened if none is). Dropping the feed leaves.
    pub async fn subscribe(
        self: &Arc<Self>,
        kafka: &KafkaSettings,
        topic: &str,
    ) -> Result<Feed, RuntimeError> {
        let key = reader_key(kafka);
        let (records_tx, records) = mpsc::channel(FEED_CAPACITY);
        let sink = Sink::new(records_tx);
        let (joined, reader) = {
            let mut readers = self.lock();
            let shared = match readers.entry(key.clone()) {
                Entry::Occupied(entry) => entry.into_mut(),
                Entry::Vacant(entry) => entry.insert(Shared::open(kafka)?),
            };
            shared.members += 1;
            (shared.join(topic, &sink), shared.reader.clone())
        };
        let member = Member {
            followers: self.clone(),
            key: key.clone(),
        };
        if let Some(partitions) = joined {
            return Ok(Feed {
                records,
                partitions,
                _member: member,
            });
        }
        let physical = topic.to_string();
        let partitions = tokio::task::spawn_blocking(move || partitions_of(&*reader, &physical))
            .await
            .map_err(|_| RuntimeError::Stopped)??;
        let mut readers = self.lock();
        // This follower is a member: its reader is still open.
        let shared = readers.get_mut(&key).ok_or(RuntimeError::Stopped)?;
        // Another follower may have added the topic meanwhile.
        let partitions = match shared.join(topic, &sink) {
            Some(partitions) => partitions,
            None => {
                shared.add_topic(topic, &partitions, sink)?;
                partitions
            }
        };
        drop(readers);
        Ok(Feed {
            records,
            partitions,
            _member: member,
        })
    }

    /// A follower left: the last one closes the reader.
    fn leave(&self, key: &str) {
        let mut readers = self.lock();
        let Some(shared) = readers.get_mut(key) else {
            return;
        };
        shared.members = shared.members.saturating_sub(1);
        if shared.members == 0
            && let Some(shared) = readers.remove(key)
        {
            tracing::debug!(
                topics = shared.topics.len(),
                "no table follows: reader closes"
            );
            shared.stop.cancel();
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Shared>> {
        self.readers.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One follower's share of a reader: leaving when dropped.
#[derive(Debug)]
struct Member {
    followers: Arc<Followers>,
    key: String,
}

impl Drop for Member {
    fn drop(&mut self) {
        self.followers.leave(&self.key);
    }
}

/// One open reader: its client, the topics it reads and how many follow them.
struct Shared {
    reader: Arc<Reader>,
    /// Stops its tasks (each partition's and the main queue's); the client closes after them.
    stop: CancellationToken,
    topics: HashMap<String, TopicFeed>,
    members: usize,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("topics", &self.topics.keys().collect::<Vec<_>>())
            .field("members", &self.members)
            .finish_non_exhaustive()
    }
}

/// A topic in the reader's assignment: where to send a new follower, for each partition.
#[derive(Debug)]
struct TopicFeed {
    partitions: HashSet<i32>,
    joins: Vec<mpsc::UnboundedSender<Sink>>,
}

impl Shared {
    /// Open the reader of `kafka` and serve its main queue (errors, statistics).
    fn open(kafka: &KafkaSettings) -> Result<Self, RuntimeError> {
        let reader = Arc::new(kafka.reader(READER_NAME)?);
        let stop = CancellationToken::new();
        tokio::spawn(serve_main_queue(reader.clone(), stop.clone()));
        tracing::debug!("shared table reader opened");
        Ok(Shared {
            reader,
            stop,
            topics: HashMap::new(),
            members: 0,
        })
    }

    /// Add `sink` to the followers of `topic` if the reader reads it already; its partitions.
    fn join(&mut self, topic: &str, sink: &Sink) -> Option<HashSet<i32>> {
        let feed = self.topics.get(topic)?;
        for join in &feed.joins {
            if join.send(sink.clone()).is_err() {
                // Partition tasks end only with the reader, which lives while it has members.
                tracing::error!(%topic, "a partition of a followed topic is no longer read");
            }
        }
        Some(feed.partitions.clone())
    }

    /// Read every partition of `topic` from the beginning, each from its own queue (split
    /// before the partitions are assigned, so no record goes to the main queue), `sink` its
    /// first follower. Topics already followed are not disturbed.
    fn add_topic(
        &mut self,
        topic: &str,
        partitions: &HashSet<i32>,
        sink: Sink,
    ) -> Result<(), RuntimeError> {
        let mut assignment = TopicPartitionList::new();
        let mut joins = Vec::with_capacity(partitions.len());
        for &partition in partitions {
            let queue = self
                .reader
                .split_partition_queue(topic, partition)
                .ok_or_else(|| {
                    KafkaError::Subscription(format!("no queue for {topic} [{partition}]"))
                })?;
            assignment.add_partition_offset(topic, partition, Offset::Beginning)?;
            let (join, joined) = mpsc::unbounded_channel();
            // Cannot fail: the receiver is right here.
            let _ = join.send(sink.clone());
            let feed = PartitionFeed::new(topic, partition, self.reader.clone(), queue);
            tokio::spawn(feed.run(joined, self.stop.clone()));
            joins.push(join);
        }
        // If this fails, `joins` is dropped and the partition tasks end without reading.
        self.reader.incremental_assign(&assignment)?;
        tracing::debug!(%topic, partitions = partitions.len(), "table reader follows topic");
        self.topics.insert(
            topic.to_string(),
            TopicFeed {
                partitions: partitions.clone(),
                joins,
            },
        );
        Ok(())
    }
}

/// What makes two runtimes' readers the same: brokers, namespace, overrides and fetch wait.
fn reader_key(kafka: &KafkaSettings) -> String {
    format!(
        "{}\u{1f}{:?}\u{1f}{:?}\u{1f}{}",
        kafka.brokers, kafka.namespace, kafka.overrides, kafka.fetch_wait_max_ms
    )
}

/// Serve the reader's main queue until `stop`: client errors and statistics arrive there.
/// Records never do (every partition has its own queue before it is assigned).
async fn serve_main_queue(reader: Arc<Reader>, stop: CancellationToken) {
    let mut errors = ErrorLog::default();
    loop {
        let received = tokio::select! {
            _ = stop.cancelled() => break,
            received = reader.recv() => {
                received.map(|m| (m.topic().to_string(), m.partition(), m.offset()))
            }
        };
        match received {
            Ok((topic, partition, offset)) => {
                tracing::error!(%topic, partition, offset, "record on the reader's main queue; dropped");
            }
            Err(KafkaError::PartitionEOF(_)) => {}
            Err(error) => {
                if let Some(left_out) = errors.admit(Instant::now()) {
                    tracing::warn!(%error, left_out, "table reader error");
                }
            }
        }
    }
    tracing::debug!("shared table reader closed");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtimes_with_other_client_settings_get_their_own_reader() {
        let kafka = KafkaSettings::new("127.0.0.1:9092");
        assert_eq!(reader_key(&kafka), reader_key(&kafka.clone()));
        let mut other = kafka.clone();
        other
            .overrides
            .push(("security.protocol".into(), "SSL".into()));
        assert_ne!(reader_key(&kafka), reader_key(&other));
        assert_ne!(
            reader_key(&kafka),
            reader_key(&KafkaSettings::new("127.0.0.1:9093"))
        );
        assert_ne!(reader_key(&kafka), reader_key(&kafka.with_fetch_wait(20)));
    }
}
