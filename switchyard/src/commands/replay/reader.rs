//! The Kafka side of a replay: which offsets of which partitions to read (watermarks captured
//! at start, times looked up with `offsets_for_times`) and a consumer assigned to them that
//! belongs to no group and commits nothing.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::consumer::Consumer;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use switchyard_runtime::{KafkaSettings, Reader};

use super::bounds::{Bound, OffsetRange, Position, Watermarks};
use super::error::ReplayError;

/// How long one broker request of the planning may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A `read_committed` consumer outside any group (partitions are assigned, never subscribed;
/// no offset is committed).
pub fn consumer(kafka: &KafkaSettings) -> Result<Reader, ReplayError> {
    Ok(kafka.reader("replay")?)
}

/// The range of every partition of the physical `topic` between `from` and `to`.
pub fn plan(
    consumer: &Reader,
    logical: &str,
    physical: &str,
    from: Option<Bound>,
    to: Option<Bound>,
) -> Result<BTreeMap<i32, OffsetRange>, ReplayError> {
    let metadata = consumer.fetch_metadata(Some(physical), REQUEST_TIMEOUT)?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == physical && t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    if partitions.is_empty() {
        return Err(ReplayError::MissingTopic {
            logical: logical.to_string(),
            physical: physical.to_string(),
        });
    }
    let from = positions(consumer, physical, &partitions, from)?;
    let to = positions(consumer, physical, &partitions, to)?;
    let mut ranges = BTreeMap::new();
    for partition in partitions {
        let (low, high) = consumer.fetch_watermarks(physical, partition, REQUEST_TIMEOUT)?;
        let marks = Watermarks { low, high };
        let range = OffsetRange::within(
            from.get(&partition).copied(),
            to.get(&partition).copied(),
            marks,
        );
        ranges.insert(partition, range);
    }
    Ok(ranges)
}

/// Each partition's position for `bound` (none: the default applies).
fn positions(
    consumer: &Reader,
    physical: &str,
    partitions: &[i32],
    bound: Option<Bound>,
) -> Result<BTreeMap<i32, Position>, ReplayError> {
    match bound {
        None => Ok(BTreeMap::new()),
        Some(Bound::Offset(offset)) => Ok(partitions
            .iter()
            .map(|&p| (p, Position::Offset(offset)))
            .collect()),
        Some(Bound::Time(ms)) => {
            let mut query = TopicPartitionList::new();
            for &partition in partitions {
                query.add_partition_offset(physical, partition, Offset::Offset(ms))?;
            }
            let found = consumer.offsets_for_times(query, REQUEST_TIMEOUT)?;
            Ok(found
                .elements_for_topic(physical)
                .iter()
                .map(|e| {
                    let position = match e.offset() {
                        Offset::Offset(offset) => Position::Offset(offset),
                        // No record at or after the time.
                        _ => Position::End,
                    };
                    (e.partition(), position)
                })
                .collect())
        }
    }
}

/// Assign the non-empty ranges to `consumer`, each from its start.
pub fn assign(
    consumer: &Reader,
    physical: &str,
    ranges: &BTreeMap<i32, OffsetRange>,
) -> Result<(), ReplayError> {
    let mut assignment = TopicPartitionList::new();
    for (&partition, range) in ranges.iter().filter(|(_, r)| !r.is_empty()) {
        assignment.add_partition_offset(physical, partition, Offset::Offset(range.start))?;
    }
    consumer.assign(&assignment)?;
    Ok(())
}
