//! Carrying consumer-group offsets over when consumers are merged
//! (`switchyard_runtime::group_upgrade`, dispatch's and callback's upgrade), on the real
//! broker: a partition the new group has no offset for starts where its old group stopped; one
//! it has keeps its own; one no group has starts at its first offset, committed too, so a second
//! start has nothing left to do. While an old group still has a member (an instance of the
//! previous version reading its topic), nothing is committed: the carry-over waits until it
//! leaves.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::producer::FutureRecord;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use switchyard_runtime::group_upgrade::{Carry, try_carry_offsets};
use switchyard_runtime::{CancellationToken, CarryError, KafkaSettings, OldGroup, carry_offsets};
use switchyard_tests::{TestEnv, apply_topics};

type Offsets = BTreeMap<(String, i32), i64>;

/// Write `count` records to partition `partition` of the logical `topic`.
async fn fill(
    kafka: &KafkaSettings,
    topic: &str,
    partition: i32,
    count: usize,
) -> anyhow::Result<()> {
    let producer = kafka.producer()?;
    let topic = kafka.topic(topic);
    for i in 0..count {
        let key = format!("k{i}");
        producer
            .send(
                FutureRecord::to(&topic)
                    .partition(partition)
                    .key(&key)
                    .payload("x"),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(e, _)| e)?;
    }
    Ok(())
}

fn commit(kafka: &KafkaSettings, group: &str, offsets: &[(&str, i32, i64)]) -> anyhow::Result<()> {
    let consumer = kafka.group_consumer(group)?;
    let mut list = TopicPartitionList::new();
    for (topic, partition, offset) in offsets {
        list.add_partition_offset(&kafka.topic(topic), *partition, Offset::Offset(*offset))?;
    }
    consumer.commit(&list, CommitMode::Sync)?;
    Ok(())
}

fn committed(kafka: &KafkaSettings, group: &str, topics: &[&str]) -> anyhow::Result<Offsets> {
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

fn offsets(entries: &[(&str, i32, i64)]) -> Offsets {
    entries
        .iter()
        .map(|(topic, partition, offset)| ((topic.to_string(), *partition), *offset))
        .collect()
}

/// The same offsets keyed by physical topic, as a `Carry` holds them.
fn physical(kafka: &KafkaSettings, entries: &[(&str, i32, i64)]) -> Offsets {
    entries
        .iter()
        .map(|(topic, partition, offset)| ((kafka.topic(topic), *partition), *offset))
        .collect()
}

fn old_groups() -> Vec<OldGroup> {
    vec![
        OldGroup::new("old.a", "lane.a"),
        OldGroup::new("old.b", "lane.b"),
    ]
}

/// Two lanes as the previous version left them: records in every partition but lane.a's
/// third, the old groups' offsets within them, and the new group further on lane.b 0.
async fn upgraded(env: &TestEnv) -> anyhow::Result<KafkaSettings> {
    apply_topics(env, &["lane.a", "lane.b"]).await?;
    let kafka = env.kafka();
    for (topic, partition, count) in [
        ("lane.a", 0, 6),
        ("lane.a", 1, 3),
        ("lane.b", 0, 8),
        ("lane.b", 1, 5),
        ("lane.b", 2, 2),
    ] {
        fill(&kafka, topic, partition, count).await?;
    }
    commit(&kafka, "old.a", &[("lane.a", 0, 5), ("lane.a", 1, 3)])?;
    commit(&kafka, "old.b", &[("lane.b", 0, 2), ("lane.b", 1, 4)])?;
    // The new group already read lane.b partition 0 further: its own offset stands.
    commit(&kafka, "merged", &[("lane.b", 0, 7)])?;
    Ok(kafka)
}

/// What the new group holds once the offsets are carried over.
const EXPECTED: [(&str, i32, i64); 6] = [
    ("lane.a", 0, 5),
    ("lane.a", 1, 3),
    ("lane.a", 2, 0),
    ("lane.b", 0, 7),
    ("lane.b", 1, 4),
    ("lane.b", 2, 0),
];

#[tokio::test]
async fn a_merged_group_starts_each_partition_where_its_old_group_stopped() -> anyhow::Result<()> {
    let env = TestEnv::new()?;
    let kafka = upgraded(&env).await?;
    let (k, o) = (kafka.clone(), old_groups());
    let carry =
        tokio::task::spawn_blocking(move || try_carry_offsets(&k, "test", "merged", &o)).await??;
    assert_eq!(
        carry.carried,
        physical(
            &kafka,
            &[("lane.a", 0, 5), ("lane.a", 1, 3), ("lane.b", 1, 4)]
        ),
        "lane.a 0 and 1, lane.b 1"
    );
    assert_eq!(
        carry.fresh,
        physical(&kafka, &[("lane.a", 2, 0), ("lane.b", 2, 0)]),
        "no group committed these: their first offsets"
    );
    assert_eq!(
        committed(&kafka, "merged", &["lane.a", "lane.b"])?,
        offsets(&EXPECTED)
    );
    // Once carried over, nothing more is, and the new group's offsets stay as they are.
    let k = kafka.clone();
    let again =
        tokio::task::spawn_blocking(move || try_carry_offsets(&k, "test", "merged", &old_groups()))
            .await??;
    assert_eq!(again, Carry::default());
    assert_eq!(
        committed(&kafka, "merged", &["lane.a", "lane.b"])?,
        offsets(&EXPECTED)
    );
    // The waiting form agrees, returning at once.
    let stop = CancellationToken::new();
    let done = tokio::time::timeout(
        Duration::from_secs(30),
        carry_offsets(&kafka, "test", "merged", &old_groups(), &stop),
    )
    .await?;
    assert!(done);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_old_group_with_a_member_holds_the_carry_over_back_until_it_leaves() -> anyhow::Result<()>
{
    let env = TestEnv::new()?;
    let kafka = upgraded(&env).await?;
    // The previous version's lane.b consumer, still in its group.
    let old = kafka.group_consumer("old.b")?;
    old.subscribe(&[kafka.topic("lane.b").as_str()])?;
    let old_stop = CancellationToken::new();
    let old_task = tokio::spawn({
        let old_stop = old_stop.clone();
        async move {
            loop {
                tokio::select! {
                    _ = old_stop.cancelled() => break,
                    _ = old.recv() => {}
                }
            }
            old.unsubscribe();
        }
    });
    let group = kafka.namespace.physical("old.b");
    let watcher = kafka.group_consumer("test.watch")?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !watcher
        .fetch_group_list(Some(&group), Duration::from_secs(5))
        .is_ok_and(|list| list.groups().iter().any(|g| !g.members().is_empty()))
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the old consumer joined its group"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // One attempt says why it waits, and commits nothing.
    let k = kafka.clone();
    let refused =
        tokio::task::spawn_blocking(move || try_carry_offsets(&k, "test", "merged", &old_groups()))
            .await?;
    match refused {
        Err(CarryError::OldGroupActive { group: named, .. }) => assert_eq!(named, group),
        other => panic!("expected the old group to hold it back, got {other:?}"),
    }
    // A stop while waiting is a stop.
    let stopped = CancellationToken::new();
    stopped.cancel();
    assert!(!carry_offsets(&kafka, "test", "merged", &old_groups(), &stopped).await);

    let stop = CancellationToken::new();
    let waiting = tokio::spawn({
        let (kafka, stop) = (kafka.clone(), stop.clone());
        async move { carry_offsets(&kafka, "test", "merged", &old_groups(), &stop).await }
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        !waiting.is_finished(),
        "the carry-over waits while the old group has a member"
    );
    assert_eq!(
        committed(&kafka, "merged", &["lane.a", "lane.b"])?,
        offsets(&[("lane.b", 0, 7)]),
        "nothing is committed while an old instance reads"
    );

    old_stop.cancel();
    old_task.await?;
    let done = tokio::time::timeout(Duration::from_secs(30), waiting).await??;
    assert!(done, "carried over once the old consumer left");
    assert_eq!(
        committed(&kafka, "merged", &["lane.a", "lane.b"])?,
        offsets(&EXPECTED)
    );
    stop.cancel();
    Ok(())
}
