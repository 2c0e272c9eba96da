//! Carrying committed offsets from old consumer groups to a new one, for a stage whose
//! consumers were merged (one group now reads what several did): each partition the new group
//! has no offset for starts where its old group stopped, not from the beginning, so nothing
//! already handled is handled again. Blocking: call it off the async threads.

use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use crate::{KafkaSettings, RuntimeError};

/// How long one broker request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Where an old group left off: its group id and the logical topic it read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OldGroup {
    pub group_id: String,
    pub topic: String,
}

/// For each partition of each old group's topic that `group` has no committed offset for,
/// commit the old group's offset under `group`. Answers how many partitions were carried over.
/// Fails (and commits nothing more) if the broker refuses: the caller must not start reading
/// from the beginning instead.
pub fn seed_group_offsets(
    kafka: &KafkaSettings,
    group: &str,
    old: &[OldGroup],
) -> Result<usize, RuntimeError> {
    let new = kafka.group_consumer(group)?;
    let mut carried = TopicPartitionList::new();
    for OldGroup { group_id, topic } in old {
        let physical = kafka.topic(topic);
        let metadata = new.fetch_metadata(Some(&physical), REQUEST_TIMEOUT)?;
        let mut all = TopicPartitionList::new();
        for t in metadata.topics().iter().filter(|t| t.name() == physical) {
            for p in t.partitions() {
                all.add_partition(&physical, p.id());
            }
        }
        if all.count() == 0 {
            continue;
        }
        let mut missing = TopicPartitionList::new();
        for e in new.committed_offsets(all, REQUEST_TIMEOUT)?.elements() {
            if !matches!(e.offset(), Offset::Offset(_)) {
                missing.add_partition(e.topic(), e.partition());
            }
        }
        if missing.count() == 0 {
            continue;
        }
        let before = kafka.group_consumer(group_id)?;
        for e in before
            .committed_offsets(missing, REQUEST_TIMEOUT)?
            .elements()
        {
            if let Offset::Offset(offset) = e.offset() {
                carried.add_partition_offset(e.topic(), e.partition(), Offset::Offset(offset))?;
            }
        }
    }
    let count = carried.count();
    if count > 0 {
        new.commit(&carried, CommitMode::Sync)?;
        tracing::info!(
            group,
            partitions = count,
            "offsets carried over from the groups this one replaces"
        );
    }
    Ok(count)
}
