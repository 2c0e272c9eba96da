//! Carrying committed offsets from old consumer groups to the one group that replaces them,
//! for a stage whose consumers were merged (dispatch's per-lane groups, callback's per-tier
//! groups). Before the stage first subscribes, every partition of the old groups' topics that
//! the new group has no offset for starts where its old group stopped: what waits there is
//! still handled, and nothing already handled is handled again (a new group would otherwise read
//! those topics from the beginning). A partition that is empty, or that its old group never
//! committed, starts at its first offset (where a new group reads from anyway), committed too,
//! so later starts find every offset and ask nothing more; only the old groups of partitions
//! holding records are asked.
//!
//! Carried offsets are committed only while no instance of the previous version still runs:
//! the old groups must have no members (their consumers would handle the same records again),
//! and the broker takes a commit from outside a group only while the group is empty. Until
//! then the stage waits, saying why. The look-ups use short-lived clients that never join a
//! group (not counted among the process's Kafka clients).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

use crate::KafkaSettings;
use crate::retry::{backoff, sleep_or_stop};
use crate::watermark::Partition;

/// How long one broker request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A consumer group the new group replaces: its id and the logical topic it read. One old
/// group per topic (were a topic listed twice, the later group's offsets would win).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OldGroup {
    pub group_id: String,
    pub topic: String,
}

impl OldGroup {
    /// Old group `group_id`, which read the logical `topic`.
    pub fn new(group_id: impl Into<String>, topic: impl Into<String>) -> Self {
        OldGroup {
            group_id: group_id.into(),
            topic: topic.into(),
        }
    }
}

/// Why the new group's offsets are not set up yet.
#[derive(Debug, thiserror::Error)]
pub enum CarryError {
    /// The broker refused or did not answer.
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    /// A consumer of the previous version still reads the topic: stop it first.
    #[error(
        "old consumer group {group} still has {members} member(s) reading {topic}: an instance \
         of the previous version is running; stop every one, then this one starts"
    )]
    OldGroupActive {
        group: String,
        topic: String,
        members: usize,
    },
    /// The new group has members (an older instance reading another of its topics): a commit
    /// from outside is refused until it is empty.
    #[error(
        "cannot commit the offsets carried over under {group} (is an instance of the previous \
         version still running?): {source}"
    )]
    Commit { group: String, source: KafkaError },
    /// The blocking look-up panicked or was cancelled.
    #[error("the offset lookup did not finish: {0}")]
    Interrupted(String),
}

impl CarryError {
    /// Whether trying again later may succeed: always — the broker answers later, the old
    /// instances stop, the new group empties — so `carry_offsets` retries every one.
    pub fn is_retriable(&self) -> bool {
        match self {
            CarryError::Kafka(_)
            | CarryError::OldGroupActive { .. }
            | CarryError::Commit { .. }
            | CarryError::Interrupted(_) => true,
        }
    }
}

/// What to commit under the new group, for the partitions it has no offset for (keyed by
/// physical topic).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Carry {
    /// Where the old group stopped: the records from there on were not handled yet.
    pub carried: BTreeMap<Partition, i64>,
    /// Partitions no group committed: their first offset (where a new group reads from anyway).
    pub fresh: BTreeMap<Partition, i64>,
}

impl Carry {
    /// Every offset to commit.
    pub fn offsets(&self) -> impl Iterator<Item = (&Partition, &i64)> {
        self.carried.iter().chain(&self.fresh)
    }
}

/// What to commit for the partitions `missing` (no offset under the new group): the old
/// group's offset where `old` has one, else the partition's first offset from `starts` (a
/// partition with neither is left to the consumer's reset).
pub fn plan(
    missing: &[Partition],
    old: &BTreeMap<Partition, i64>,
    starts: &BTreeMap<Partition, i64>,
) -> Carry {
    let mut carry = Carry::default();
    for partition in missing {
        if let Some(&offset) = old.get(partition) {
            carry.carried.insert(partition.clone(), offset);
        } else if let Some(&start) = starts.get(partition) {
            carry.fresh.insert(partition.clone(), start);
        }
    }
    carry
}

/// Set up `group`'s offsets from the `old` groups it replaces (see the module doc), waiting
/// and retrying with backoff while the broker refuses or an instance of the previous version
/// runs; `false` if stopped first. `stage` names the stage in the log.
pub async fn carry_offsets(
    kafka: &KafkaSettings,
    stage: &str,
    group: &str,
    old: &[OldGroup],
    shutdown: &CancellationToken,
) -> bool {
    let mut tries = 0;
    loop {
        let (task_kafka, task_stage, task_group, task_old) = (
            kafka.clone(),
            stage.to_string(),
            group.to_string(),
            old.to_vec(),
        );
        let done = tokio::task::spawn_blocking(move || {
            try_carry_offsets(&task_kafka, &task_stage, &task_group, &task_old)
        })
        .await
        .unwrap_or_else(|e| Err(CarryError::Interrupted(e.to_string())));
        match done {
            Ok(carry) => {
                if !carry.carried.is_empty() {
                    tracing::info!(stage, group, partitions = carry.carried.len(), offsets = ?carry.carried, "offsets carried over from the groups this one replaces");
                }
                return true;
            }
            Err(e) => {
                tries += 1;
                tracing::warn!(stage, group, error = %e, retriable = e.is_retriable(), tries, "offsets not carried over yet; waiting before consuming");
            }
        }
        if sleep_or_stop(backoff(tries), shutdown).await {
            return false;
        }
    }
}

/// One attempt of `carry_offsets`: look up, decide, commit; what was committed. Blocking:
/// call it off the async threads.
pub fn try_carry_offsets(
    kafka: &KafkaSettings,
    stage: &str,
    group: &str,
    old: &[OldGroup],
) -> Result<Carry, CarryError> {
    let merged = lookup_client(kafka, stage, group)?;
    let all = partitions_of(kafka, &merged, old)?;
    if all.count() == 0 {
        return Ok(Carry::default());
    }
    let missing = uncommitted(&merged, all)?;
    if missing.is_empty() {
        return Ok(Carry::default());
    }
    // Even for a topic that is empty now: a record it gets later would be handled by both.
    for before in old {
        if of_topic(&kafka.topic(&before.topic), &missing).count() > 0 {
            ensure_idle(kafka, &merged, before)?;
        }
    }
    let mut starts = BTreeMap::new();
    let mut holding = Vec::new();
    for partition in &missing {
        let (low, high) = merged.fetch_watermarks(&partition.0, partition.1, REQUEST_TIMEOUT)?;
        starts.insert(partition.clone(), low);
        if high > low {
            holding.push(partition.clone());
        }
    }
    // Only a partition holding records can have some the old group already handled.
    let mut offsets_before = BTreeMap::new();
    for before in old {
        let list = of_topic(&kafka.topic(&before.topic), &holding);
        if list.count() > 0 {
            let client = lookup_client(kafka, stage, &before.group_id)?;
            offsets_before.extend(committed(&client, list)?);
        }
    }
    let carry = plan(&missing, &offsets_before, &starts);
    let mut offsets = TopicPartitionList::new();
    for ((topic, partition), &offset) in carry.offsets() {
        offsets.add_partition_offset(topic, *partition, Offset::Offset(offset))?;
    }
    if offsets.count() == 0 {
        return Ok(carry);
    }
    match merged.commit(&offsets, CommitMode::Sync) {
        Ok(()) => Ok(carry),
        // Only first offsets, the consumer's reset reads from there anyway: a group with
        // members (instances of this version, some partitions added since) need not take them.
        Err(e) if carry.carried.is_empty() => {
            tracing::debug!(stage, group, error = %e, "first offsets not committed; the consumer's reset starts there");
            Ok(carry)
        }
        Err(source) => Err(CarryError::Commit {
            group: group.to_string(),
            source,
        }),
    }
}

/// Every partition of the old groups' topics (those created; each topic once).
fn partitions_of(
    kafka: &KafkaSettings,
    client: &BaseConsumer,
    old: &[OldGroup],
) -> Result<TopicPartitionList, KafkaError> {
    let mut all = TopicPartitionList::new();
    let topics: BTreeSet<String> = old.iter().map(|o| kafka.topic(&o.topic)).collect();
    for topic in topics {
        let metadata = client.fetch_metadata(Some(&topic), REQUEST_TIMEOUT)?;
        // A topic not created yet has nothing waiting.
        for found in metadata
            .topics()
            .iter()
            .filter(|t| t.name() == topic && t.error().is_none())
        {
            for partition in found.partitions() {
                all.add_partition(&topic, partition.id());
            }
        }
    }
    Ok(all)
}

/// The partitions of the physical `topic` among `partitions`.
fn of_topic(topic: &str, partitions: &[Partition]) -> TopicPartitionList {
    let mut list = TopicPartitionList::new();
    for (_, partition) in partitions.iter().filter(|(t, _)| t == topic) {
        list.add_partition(topic, *partition);
    }
    list
}

/// Fails while the old group has members (an instance of the previous version consumes it).
fn ensure_idle(
    kafka: &KafkaSettings,
    client: &BaseConsumer,
    before: &OldGroup,
) -> Result<(), CarryError> {
    let physical = kafka.namespace.physical(&before.group_id);
    let groups = client.fetch_group_list(Some(&physical), REQUEST_TIMEOUT)?;
    match groups
        .groups()
        .iter()
        .find(|g| g.name() == physical && !g.members().is_empty())
    {
        Some(active) => Err(CarryError::OldGroupActive {
            group: physical,
            topic: before.topic.clone(),
            members: active.members().len(),
        }),
        None => Ok(()),
    }
}

/// A client that only looks up and commits `group`'s offsets, never joining it.
fn lookup_client(
    kafka: &KafkaSettings,
    stage: &str,
    group: &str,
) -> Result<BaseConsumer, KafkaError> {
    let mut config = kafka.client_config();
    config
        .set("group.id", kafka.namespace.physical(group))
        .set(
            "client.id",
            kafka.namespace.physical(&format!("{stage}.upgrade")),
        )
        .set("enable.auto.commit", "false");
    config.create()
}

/// The committed offsets `consumer`'s group has for `partitions`.
fn committed(
    consumer: &BaseConsumer,
    partitions: TopicPartitionList,
) -> Result<BTreeMap<Partition, i64>, KafkaError> {
    let answered = consumer.committed_offsets(partitions, REQUEST_TIMEOUT)?;
    Ok(answered
        .elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(offset) => Some(((e.topic().to_string(), e.partition()), offset)),
            _ => None,
        })
        .collect())
}

/// Which of `partitions` `consumer`'s group has no committed offset for.
fn uncommitted(
    consumer: &BaseConsumer,
    partitions: TopicPartitionList,
) -> Result<Vec<Partition>, KafkaError> {
    let all: Vec<Partition> = partitions
        .elements()
        .iter()
        .map(|e| (e.topic().to_string(), e.partition()))
        .collect();
    let known = committed(consumer, partitions)?;
    Ok(all.into_iter().filter(|p| !known.contains_key(p)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(topic: &str, partition: i32) -> Partition {
        (topic.to_string(), partition)
    }

    #[test]
    fn a_partition_starts_where_its_old_group_stopped_else_at_its_beginning() {
        let missing = vec![p("a", 0), p("a", 1), p("c", 2), p("d", 0)];
        let old = BTreeMap::from([(p("a", 0), 17), (p("c", 2), 0), (p("i", 9), 5)]);
        let starts = BTreeMap::from([(p("a", 1), 4)]);
        let carry = plan(&missing, &old, &starts);
        assert_eq!(
            carry.carried,
            BTreeMap::from([(p("a", 0), 17), (p("c", 2), 0)])
        );
        assert_eq!(carry.fresh, BTreeMap::from([(p("a", 1), 4)]));
        assert_eq!(carry.offsets().count(), 3, "d 0: left to the reset");
    }

    #[test]
    fn an_old_offset_wins_over_the_first_offset() {
        let missing = vec![p("a", 0)];
        let old = BTreeMap::from([(p("a", 0), 9)]);
        let starts = BTreeMap::from([(p("a", 0), 2)]);
        let carry = plan(&missing, &old, &starts);
        assert_eq!(carry.carried, BTreeMap::from([(p("a", 0), 9)]));
        assert!(carry.fresh.is_empty());
    }

    #[test]
    fn a_partition_the_group_has_is_not_planned() {
        let old = BTreeMap::from([(p("a", 0), 9)]);
        let starts = BTreeMap::from([(p("a", 0), 0)]);
        assert_eq!(plan(&[], &old, &starts), Carry::default());
    }

    #[test]
    fn every_error_is_retried() {
        let errors = [
            CarryError::Kafka(KafkaError::Canceled),
            CarryError::OldGroupActive {
                group: "g".into(),
                topic: "t".into(),
                members: 1,
            },
            CarryError::Commit {
                group: "g".into(),
                source: KafkaError::Canceled,
            },
            CarryError::Interrupted("panicked".into()),
        ];
        assert!(errors.iter().all(CarryError::is_retriable));
    }
}
