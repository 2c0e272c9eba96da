//! Carrying consumer-group offsets over when consumers are merged (`seed_group_offsets`): a
//! partition the new group has no offset for starts where the old group stopped; one it has
//! keeps its own; one neither has stays without (read from the beginning).

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use switchyard_runtime::{KafkaSettings, OldGroup, seed_group_offsets};
use switchyard_tests::{TestEnv, apply_topics};

fn commit(kafka: &KafkaSettings, group: &str, offsets: &[(&str, i32, i64)]) -> anyhow::Result<()> {
    let consumer = kafka.group_consumer(group)?;
    let mut list = TopicPartitionList::new();
    for (topic, partition, offset) in offsets {
        list.add_partition_offset(&kafka.topic(topic), *partition, Offset::Offset(*offset))?;
    }
    consumer.commit(&list, CommitMode::Sync)?;
    Ok(())
}

fn committed(
    kafka: &KafkaSettings,
    group: &str,
    topics: &[&str],
) -> anyhow::Result<BTreeMap<(String, i32), i64>> {
    let consumer = kafka.group_consumer(group)?;
    let mut list = TopicPartitionList::new();
    for topic in topics {
        for partition in 0..3 {
            list.add_partition(&kafka.topic(topic), partition);
        }
    }
    let mut out = BTreeMap::new();
    for e in consumer
        .committed_offsets(list, Duration::from_secs(10))?
        .elements()
    {
        if let Offset::Offset(o) = e.offset() {
            out.insert(
                (
                    kafka.namespace.logical(e.topic()).to_string(),
                    e.partition(),
                ),
                o,
            );
        }
    }
    Ok(out)
}

#[tokio::test]
async fn a_merged_group_starts_each_partition_where_its_old_group_stopped() -> anyhow::Result<()> {
    let env = TestEnv::new()?;
    apply_topics(&env, &["lane.a", "lane.b"]).await?;
    let kafka = env.kafka();
    commit(&kafka, "old.a", &[("lane.a", 0, 5), ("lane.a", 1, 3)])?;
    commit(&kafka, "old.b", &[("lane.b", 0, 2), ("lane.b", 1, 4)])?;
    // The new group already read lane.b partition 0 further: its own offset stands.
    commit(&kafka, "merged", &[("lane.b", 0, 7)])?;
    let old = [
        OldGroup {
            group_id: "old.a".into(),
            topic: "lane.a".into(),
        },
        OldGroup {
            group_id: "old.b".into(),
            topic: "lane.b".into(),
        },
    ];
    let (k, o) = (kafka.clone(), old.clone());
    let carried =
        tokio::task::spawn_blocking(move || seed_group_offsets(&k, "merged", &o)).await??;
    assert_eq!(carried, 3, "lane.a 0 and 1, lane.b 1");
    let expected: BTreeMap<(String, i32), i64> = [
        (("lane.a".to_string(), 0), 5),
        (("lane.a".to_string(), 1), 3),
        (("lane.b".to_string(), 0), 7),
        (("lane.b".to_string(), 1), 4),
    ]
    .into_iter()
    .collect();
    assert_eq!(
        committed(&kafka, "merged", &["lane.a", "lane.b"])?,
        expected
    );
    // Once carried over, nothing more is.
    let k = kafka.clone();
    let again =
        tokio::task::spawn_blocking(move || seed_group_offsets(&k, "merged", &old)).await??;
    assert_eq!(again, 0);
    Ok(())
}
