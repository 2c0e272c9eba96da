//! One Kafka reader for every table and key set of a runtime (issue 20): topics followed at
//! different times each get exactly their own records and their own readiness, the same topic
//! followed twice feeds both followers from its beginning, a stuck table does not hold up the
//! others, and the reader closes once nothing follows.

use std::time::Duration;

use rdkafka::producer::FutureRecord;
use switchyard_runtime::{CancellationToken, ConfigTables, KeySet, Output, Runtime, Table};
use switchyard_schemas::{Channel, CustomerConfig};
use switchyard_tests::{Stack, free_port, produce_raw};
use tokio::time::Instant;

const A: &str = "shared.a";
const B: &str = "shared.b";
const C: &str = "shared.c";
const BIG: &str = "shared.big";
const CUSTOMERS: &str = "config.customers";

/// The runtime's open `reader.*` clients by purpose, from its metrics.
fn open_readers(runtime: &Runtime) -> Vec<(String, i64)> {
    runtime
        .metrics
        .encode()
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("switchyard_kafka_clients{client=\"")?;
            let (client, open) = rest.split_once("\"} ")?;
            let open: i64 = open.trim().parse().ok()?;
            (client.starts_with("reader.") && open > 0).then(|| (client.to_string(), open))
        })
        .collect()
}

fn one_shared_reader() -> Vec<(String, i64)> {
    vec![("reader.tables".to_string(), 1)]
}

/// Wait until `check` holds (20 s at most).
async fn eventually(what: &str, mut check: impl FnMut() -> bool) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check() {
        anyhow::ensure!(Instant::now() < deadline, "{what}: not within 20 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// Write `keys` to the logical `topic` (spread over its partitions by key).
async fn put(runtime: &Runtime, topic: &str, keys: &[String]) -> anyhow::Result<()> {
    let writes = keys
        .iter()
        .map(|key| produce_raw(runtime, topic, key, b"v"));
    futures::future::try_join_all(writes).await?;
    Ok(())
}

fn keys(prefix: &str, range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("{prefix}-{i}")).collect()
}

async fn delete(runtime: &Runtime, topic: &str, key: &str) -> anyhow::Result<()> {
    runtime
        .publish("test", &[Output::tombstone(topic, key)])
        .await?;
    Ok(())
}

fn customer(id: &str) -> CustomerConfig {
    CustomerConfig {
        customer_id: id.into(),
        name: id.to_uppercase(),
        enabled: true,
        channels: vec![Channel::Sms],
        bill_codes: vec![],
        tps_limits: Default::default(),
        prepaid: false,
        night_ads: Default::default(),
        auto_lms_upgrade: false,
        prices: Default::default(),
        dedup_window_hours: 24,
        history_retention_days: None,
    }
}

async fn put_customer(runtime: &Runtime, id: &str) -> anyhow::Result<()> {
    runtime
        .publish("test", &[Output::new(CUSTOMERS, id, customer(id))])
        .await?;
    Ok(())
}

fn holds_all(set: &KeySet, keys: &[String]) -> bool {
    keys.iter().all(|k| set.contains(k))
}

#[tokio::test(flavor = "multi_thread")]
async fn every_table_and_key_set_of_a_runtime_reads_through_one_client() -> anyhow::Result<()> {
    switchyard_tests::init_logging();
    let stack = Stack::start(&[A, B, C]).await?;
    let runtime = &stack.runtime;
    put(runtime, A, &keys("a", 0..100)).await?;
    put(runtime, B, &keys("b", 0..50)).await?;
    put_customer(runtime, "acme").await?;

    let stop = CancellationToken::new();
    // Seven tables at once, then key sets one after the other, each topic added to the
    // reader while the others are followed.
    let config = ConfigTables::start(runtime, stop.clone()).await?;
    assert!(config.customers.get(&"acme".to_string()).is_some());
    assert!(config.senders.is_empty());
    let a = KeySet::start_ready(runtime, A, stop.clone()).await?;
    assert_eq!(
        a.len(),
        100,
        "ready once every partition of its own topic was read"
    );
    assert!(holds_all(&a, &keys("a", 0..100)));
    // B grows before it is followed; C stays empty.
    put(runtime, B, &keys("b", 50..100)).await?;
    let b = KeySet::start_ready(runtime, B, stop.clone()).await?;
    assert_eq!(b.len(), 100, "only B's records, all of them");
    assert!(holds_all(&b, &keys("b", 0..100)));
    let c = KeySet::start_ready(runtime, C, stop.clone()).await?;
    assert!(c.is_empty(), "an empty topic is ready with nothing in it");

    // Live changes reach exactly their own followers.
    put(runtime, A, &["a-live".to_string()]).await?;
    put(runtime, C, &["c-live".to_string()]).await?;
    delete(runtime, B, "b-0").await?;
    put_customer(runtime, "beta").await?;
    eventually("every follower sees its topic's changes", || {
        a.contains("a-live")
            && c.contains("c-live")
            && !b.contains("b-0")
            && config.customers.get(&"beta".to_string()).is_some()
    })
    .await?;
    assert_eq!((a.len(), b.len(), c.len()), (101, 99, 1));
    assert!(!a.contains("c-live") && !c.contains("a-live") && !b.contains("a-live"));
    assert_eq!(config.customers.len(), 2);
    assert_eq!(open_readers(runtime), one_shared_reader(), "ten followers");

    // Nothing follows any more: the reader closes.
    stop.cancel();
    eventually("the reader closes", || open_readers(runtime).is_empty()).await?;

    // A later table opens it again.
    let again = CancellationToken::new();
    let a = KeySet::start_ready(runtime, A, again.clone()).await?;
    assert_eq!(a.len(), 101);
    assert_eq!(open_readers(runtime), one_shared_reader());
    again.cancel();
    eventually("the reader closes again", || {
        open_readers(runtime).is_empty()
    })
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_topic_followed_twice_feeds_each_follower_from_its_beginning() -> anyhow::Result<()> {
    switchyard_tests::init_logging();
    let stack = Stack::start(&[A]).await?;
    let runtime = &stack.runtime;
    put(runtime, A, &keys("a", 0..100)).await?;
    put_customer(runtime, "acme").await?;

    let first_stop = CancellationToken::new();
    let first = KeySet::start_ready(runtime, A, first_stop.clone()).await?;
    let first_table: Table<String, CustomerConfig> =
        Table::start_ready(runtime, CUSTOMERS, first_stop.clone()).await?;
    put(runtime, A, &keys("a", 100..150)).await?;
    delete(runtime, A, "a-0").await?;
    put_customer(runtime, "beta").await?;
    eventually("the first followers see the new records", || {
        first.len() == 149 && first_table.len() == 2
    })
    .await?;

    // Two roles following the same topics: the second followers get everything too.
    let second_stop = CancellationToken::new();
    let second = KeySet::start_ready(runtime, A, second_stop.clone()).await?;
    let second_table: Table<String, CustomerConfig> =
        Table::start_ready(runtime, CUSTOMERS, second_stop.clone()).await?;
    assert_eq!(second.len(), 149);
    assert!(holds_all(&second, &keys("a", 1..150)) && !second.contains("a-0"));
    assert_eq!(second_table.len(), 2);

    // Both stay live, the first undisturbed by the second's read from the beginning.
    delete(runtime, A, "a-1").await?;
    put(runtime, A, &["a-live".to_string()]).await?;
    put_customer(runtime, "gamma").await?;
    eventually("both followers see what comes next", || {
        [&first, &second]
            .iter()
            .all(|s| s.contains("a-live") && !s.contains("a-1") && s.len() == 149)
            && first_table.len() == 3
            && second_table.len() == 3
    })
    .await?;
    assert!(!first.contains("a-0"), "a deleted key stays deleted");
    assert_eq!(open_readers(runtime), one_shared_reader());

    // One leaving does not stop the other.
    first_stop.cancel();
    put(runtime, A, &["a-after".to_string()]).await?;
    put_customer(runtime, "delta").await?;
    eventually("the remaining followers go on", || {
        second.contains("a-after") && second_table.len() == 4
    })
    .await?;
    assert!(!first.contains("a-after"), "the stopped follower stopped");
    assert_eq!(open_readers(runtime), one_shared_reader());
    second_stop.cancel();
    eventually("the reader closes", || open_readers(runtime).is_empty()).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stuck_table_does_not_hold_up_the_others() -> anyhow::Result<()> {
    switchyard_tests::init_logging();
    let stack = Stack::start(&[A]).await?;
    put_customer(&stack.runtime, "acme").await?;
    put(&stack.runtime, A, &keys("a", 0..10)).await?;
    // A runtime whose registry does not answer: its customer table waits in `apply`.
    let blind = Runtime::new(
        stack.env.kafka(),
        &format!("http://127.0.0.1:{}", free_port()),
    )?;
    let stop = CancellationToken::new();
    let stuck: Table<String, CustomerConfig> =
        Table::start(&blind, CUSTOMERS, stop.clone()).await?;
    anyhow::ensure!(
        stuck.wait_ready(Duration::from_secs(2)).await.is_err(),
        "the table should wait for the registry"
    );

    // Other topics, and the same topic without decoding, are followed meanwhile.
    let other = KeySet::start_ready(&blind, A, stop.clone()).await?;
    assert_eq!(other.len(), 10);
    let same_topic = KeySet::start_ready(&blind, CUSTOMERS, stop.clone()).await?;
    assert!(same_topic.contains("acme"));
    put(&stack.runtime, A, &["a-live".to_string()]).await?;
    put_customer(&stack.runtime, "beta").await?;
    eventually("live records reach the other followers", || {
        other.contains("a-live") && same_topic.contains("beta")
    })
    .await?;
    assert!(stuck.is_empty(), "still waiting for the registry");
    assert_eq!(open_readers(&blind), one_shared_reader());

    stop.cancel();
    eventually("the reader closes, the stuck table with it", || {
        open_readers(&blind).is_empty()
    })
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_follower_is_ready_only_once_every_partition_of_its_topic_was_read() -> anyhow::Result<()>
{
    switchyard_tests::init_logging();
    let stack = Stack::start(&[BIG, C]).await?;
    let runtime = &stack.runtime;
    // 12 MB in partition 0, nothing in the others: reading partition 0 takes a dozen fetches
    // (1 MB each at most) while the other partitions, and the empty topic C, end at once.
    let producer = runtime.producer()?;
    let topic = runtime.kafka.topic(BIG);
    let payload = vec![7u8; 200_000];
    let big = keys("big", 0..60);
    let writes = big.iter().map(|key| {
        producer.send(
            FutureRecord::to(&topic)
                .partition(0)
                .key(key)
                .payload(&payload),
            Duration::from_secs(30),
        )
    });
    for written in futures::future::join_all(writes).await {
        written.map_err(|(e, _)| e)?;
    }
    let stop = CancellationToken::new();
    let empty = KeySet::start_ready(runtime, C, stop.clone());
    let full = KeySet::start_ready(runtime, BIG, stop.clone());
    let (empty, full) = tokio::try_join!(empty, full)?;
    assert!(empty.is_empty());
    assert_eq!(full.len(), 60, "ready before partition 0 was read");
    assert!(holds_all(&full, &big));
    stop.cancel();
    Ok(())
}
