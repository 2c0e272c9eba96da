//! The upgrade from one consumer group per retry tier (`switchyard.callback.retry.<n>`) to the
//! callback role's one group (`switchyard.callback`, which already has the offsets of
//! `reports.final`). Before the role first subscribes, every retry partition the group has no
//! offset for starts where its old tier group stopped: the reports waiting there are still
//! delivered, and none already retried is POSTed again (a new group would otherwise read the
//! retry topics from the beginning: every webhook ever retried, again). A partition that is
//! empty, or that its old group never committed, starts at its first offset (where a new group
//! reads from anyway), committed too, so later starts find every offset and ask nothing more;
//! only the old groups of partitions holding records are asked.
//!
//! Carried offsets are committed only while no instance of the previous version still runs:
//! the old tier groups must have no members (their consumers would retry the same records), and
//! the broker takes a commit from outside the group only while the group is empty. Until then
//! the role waits, saying why.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use switchyard_runtime::names::{CALLBACK_RETRY_TIERS, callback_retry};
use switchyard_runtime::retry::{backoff, sleep_or_stop};
use switchyard_runtime::watermark::Partition;
use switchyard_runtime::{CancellationToken, KafkaSettings};

/// How long one broker request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The consumer group retry tier `tier` had before the callback role became one consumer.
pub fn old_group(tier: u32) -> String {
    format!("switchyard.callback.retry.{tier}")
}

/// Why the group's retry offsets are not set up yet (each is retried).
#[derive(Debug, thiserror::Error)]
pub enum CarryError {
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    /// A consumer of the previous version still reads the tier: stop it first.
    #[error(
        "retry tier {tier}'s old consumer group {group} still has {members} member(s): an older \
         callback instance is running; stop every one, then this one starts"
    )]
    OldGroupActive {
        tier: u32,
        group: String,
        members: usize,
    },
    /// The group has members (an older instance reading `reports.final`): a commit from
    /// outside is refused until it is empty.
    #[error(
        "cannot commit the offsets carried over under {group} (is an older callback instance still running?): {source}"
    )]
    Commit { group: String, source: KafkaError },
    #[error("the offset lookup did not finish: {0}")]
    Interrupted(String),
}

/// What to commit under the group, for the retry partitions it has no offset for.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Carry {
    /// Where the old tier group stopped: the records from there on were not retried yet.
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

/// What to commit for the partitions `missing` (no offset under the group): the old group's
/// offset where `old` has one, else the partition's first offset from `starts` (a partition
/// with neither is left to the consumer's reset).
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

/// Set up `group`'s retry offsets (see the module doc), waiting and retrying while the broker
/// refuses or an older instance runs; `false` if stopped first.
pub async fn carry_retry_offsets(
    kafka: &KafkaSettings,
    group: &str,
    shutdown: &CancellationToken,
) -> bool {
    let mut tries = 0;
    loop {
        let (kafka, task_group) = (kafka.clone(), group.to_string());
        let done = tokio::task::spawn_blocking(move || carry_once(&kafka, &task_group))
            .await
            .unwrap_or_else(|e| Err(CarryError::Interrupted(e.to_string())));
        match done {
            Ok(carry) => {
                if !carry.carried.is_empty() {
                    tracing::info!(stage = "callback", group, partitions = carry.carried.len(), offsets = ?carry.carried, "retry offsets carried over from the old tier groups");
                }
                return true;
            }
            Err(e) => {
                tries += 1;
                tracing::warn!(stage = "callback", group, error = %e, tries, "retry offsets not set up yet; waiting before consuming");
            }
        }
        if sleep_or_stop(backoff(tries), shutdown).await {
            return false;
        }
    }
}

/// One attempt: look up, decide, commit.
fn carry_once(kafka: &KafkaSettings, group: &str) -> Result<Carry, CarryError> {
    let merged = lookup_client(kafka, group)?;
    let (all, tiers) = retry_partitions(kafka, &merged)?;
    if all.count() == 0 {
        return Ok(Carry::default());
    }
    let missing = uncommitted(&merged, all)?;
    if missing.is_empty() {
        return Ok(Carry::default());
    }
    // Even a tier that is empty now: a record it gets later would be retried by both.
    for (topic, &tier) in &tiers {
        if of_topic(topic, &missing).count() > 0 {
            ensure_idle(kafka, &merged, tier)?;
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
    // Only a partition holding records can have some the old group already retried.
    let mut old = BTreeMap::new();
    for (topic, &tier) in &tiers {
        let list = of_topic(topic, &holding);
        if list.count() > 0 {
            old.extend(committed(&lookup_client(kafka, &old_group(tier))?, list)?);
        }
    }
    let carry = plan(&missing, &old, &starts);
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
            tracing::debug!(stage = "callback", group, error = %e, "first offsets of retry partitions not committed; the consumer's reset starts there");
            Ok(carry)
        }
        Err(source) => Err(CarryError::Commit {
            group: group.to_string(),
            source,
        }),
    }
}

/// Every partition of the retry topics (those created), and each topic's tier.
fn retry_partitions(
    kafka: &KafkaSettings,
    client: &BaseConsumer,
) -> Result<(TopicPartitionList, BTreeMap<String, u32>), KafkaError> {
    let mut all = TopicPartitionList::new();
    let mut tiers = BTreeMap::new();
    for tier in 1..=CALLBACK_RETRY_TIERS {
        let topic = kafka.topic(&callback_retry(tier));
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
        tiers.insert(topic, tier);
    }
    Ok((all, tiers))
}

/// The partitions of `topic` among `partitions`.
fn of_topic(topic: &str, partitions: &[Partition]) -> TopicPartitionList {
    let mut list = TopicPartitionList::new();
    for (_, partition) in partitions.iter().filter(|(t, _)| t == topic) {
        list.add_partition(topic, *partition);
    }
    list
}

/// Fails while retry tier `tier`'s old group has members (an older instance consumes it).
fn ensure_idle(kafka: &KafkaSettings, client: &BaseConsumer, tier: u32) -> Result<(), CarryError> {
    let physical = kafka.namespace.physical(&old_group(tier));
    let groups = client.fetch_group_list(Some(&physical), REQUEST_TIMEOUT)?;
    match groups
        .groups()
        .iter()
        .find(|g| g.name() == physical && !g.members().is_empty())
    {
        Some(active) => Err(CarryError::OldGroupActive {
            tier,
            group: physical,
            members: active.members().len(),
        }),
        None => Ok(()),
    }
}

/// A client that only looks up and commits `group`'s offsets, never joining it (a short-lived
/// client at start: not counted among the process's Kafka clients).
fn lookup_client(kafka: &KafkaSettings, group: &str) -> Result<BaseConsumer, KafkaError> {
    let mut config = kafka.client_config();
    config
        .set("group.id", kafka.namespace.physical(group))
        .set("client.id", kafka.namespace.physical("callback.upgrade"))
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

    fn p(tier: u32, partition: i32) -> Partition {
        (callback_retry(tier), partition)
    }

    #[test]
    fn a_partition_starts_where_its_old_group_stopped_else_at_its_beginning() {
        let missing = vec![p(1, 0), p(1, 1), p(3, 2), p(4, 0)];
        let old = BTreeMap::from([(p(1, 0), 17), (p(3, 2), 0), (p(9, 9), 5)]);
        let starts = BTreeMap::from([(p(1, 1), 4)]);
        let carry = plan(&missing, &old, &starts);
        assert_eq!(carry.carried, BTreeMap::from([(p(1, 0), 17), (p(3, 2), 0)]));
        assert_eq!(carry.fresh, BTreeMap::from([(p(1, 1), 4)]));
        assert_eq!(carry.offsets().count(), 3, "p(4, 0): left to the reset");
    }

    #[test]
    fn the_old_groups_are_the_tiers_names() {
        assert_eq!(old_group(1), "switchyard.callback.retry.1");
        assert_eq!(old_group(10), "switchyard.callback.retry.10");
    }
}
