//! The callback role's upgrade from one consumer group per retry tier to one group for the
//! role, on the real broker: reports waiting in a tier under the old group are delivered once,
//! none the old tier already retried is POSTed again; while an older instance still consumes a
//! tier, the new role waits instead of retrying the same records beside it; and the role is
//! one Kafka consumer whatever the number of its topics.

use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use switchyard::pipeline::{Role, Running, start};
use switchyard_callback::receiver::{Inbox, serve_failing};
use switchyard_callback::upgrade::old_group;
use switchyard_runtime::names::{FINAL, callback_retry};
use switchyard_runtime::{CancellationToken, KafkaSettings, Output};
use switchyard_schemas::{CallbackAttempt, Channel, FinalReport, ResultStatus, now_millis};
use switchyard_tests::pipeline::{SECRET, local_settings};
use switchyard_tests::{Stack, committed_total};

fn config(report_url: &str) -> String {
    format!(
        r#"
[[customers]]
id = "acme"
channels = ["sms"]

[[clients]]
id = "acme-web"
customer = "acme"
api_key = "sk-upgrade"
report_url = "{report_url}"
signing_secret = "{SECRET}"
"#
    )
}

fn report(id: &str) -> FinalReport {
    FinalReport {
        event_id: format!("evt-{id}"),
        message_id: format!("m-{id}"),
        customer_id: "acme".into(),
        client_id: Some("acme-web".into()),
        client_message_id: None,
        channel: Channel::Sms,
        to: "01012345678".into(),
        status: ResultStatus::Delivered,
        result_code: "0000".into(),
        result_text: "delivered".into(),
        carrier: None,
        sender: None,
        attempt: 1,
        submitted_at: None,
        done_at: now_millis(),
        trail: Vec::new(),
    }
}

/// Report `id` waiting in retry tier `tier`.
fn waiting(tier: u32, id: &str) -> Output {
    let now = now_millis();
    Output::new(
        callback_retry(tier),
        format!("m-{id}"),
        CallbackAttempt {
            report: report(id),
            report_url: "http://127.0.0.1:9/gone".into(),
            retry: tier as i32,
            due_at: now,
            last_failure: "HTTP 503".into(),
            first_failed_at: now,
            failed_at: now,
        },
    )
}

/// Commit under `group` the end offset of every partition of the logical `topic`: what the
/// previous version's consumer left after handling everything there.
fn commit_ends(kafka: &KafkaSettings, group: &str, topic: &str) -> anyhow::Result<()> {
    let consumer = kafka.group_consumer(group)?;
    let topic = kafka.topic(topic);
    let metadata = consumer.fetch_metadata(Some(&topic), Duration::from_secs(10))?;
    let mut ends = TopicPartitionList::new();
    for t in metadata.topics().iter().filter(|t| t.name() == topic) {
        for p in t.partitions() {
            let (_, high) = consumer.fetch_watermarks(&topic, p.id(), Duration::from_secs(10))?;
            ends.add_partition_offset(&topic, p.id(), Offset::Offset(high))?;
        }
    }
    consumer.commit(&ends, CommitMode::Sync)?;
    Ok(())
}

/// Wait until `done` holds or `limit` passes.
async fn wait_for(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    done()
}

/// The webhooks that arrived for report `id`.
fn count(inbox: &Inbox, id: &str) -> usize {
    let event = format!("evt-{id}");
    inbox.all().iter().filter(|r| r.event_id == event).count()
}

/// A namespace as the previous version left it: reports retried by tiers 1 and 2 (their old
/// groups committed past them) and a final report delivered (group `switchyard.callback`), then
/// reports that came since and wait in the tiers; plus a receiver that accepts everything.
async fn upgraded_namespace() -> anyhow::Result<(Stack, Inbox, CancellationToken)> {
    let stack = Stack::start(&[]).await?;
    let receiver_stop = CancellationToken::new();
    let (addr, inbox) = serve_failing(
        "127.0.0.1:0".parse()?,
        SECRET,
        false,
        0,
        receiver_stop.clone(),
    )
    .await?;
    switchyard_config::apply(
        &stack.runtime,
        &config(&format!("http://{addr}/")),
        false,
        1,
    )
    .await?;
    let kafka = &stack.runtime.kafka;
    let handled: Vec<Output> = (0..6)
        .map(|i| waiting(1 + i % 2, &format!("retried-{i}")))
        .chain([Output::new(FINAL, "m-first", report("first"))])
        .collect();
    stack.runtime.publish("test", &handled).await?;
    commit_ends(kafka, &old_group(1), &callback_retry(1))?;
    commit_ends(kafka, &old_group(2), &callback_retry(2))?;
    commit_ends(kafka, "switchyard.callback", FINAL)?;
    let pending: Vec<Output> = (0..6)
        .map(|i| waiting(1 + i % 2, &format!("pending-{i}")))
        .collect();
    stack.runtime.publish("test", &pending).await?;
    Ok((stack, inbox, receiver_stop))
}

/// The Kafka clients `runtime` has open now, by purpose (`switchyard_kafka_clients`), but the
/// config tables' readers.
fn open_clients(runtime: &switchyard_runtime::Runtime) -> Vec<String> {
    let mut open: Vec<String> = runtime
        .metrics
        .encode()
        .lines()
        .filter_map(|line| line.strip_prefix("switchyard_kafka_clients{client=\""))
        .filter_map(|rest| rest.split_once("\"} "))
        .filter(|(_, value)| value.trim() != "0")
        .map(|(client, _)| client.to_string())
        .filter(|client| !client.starts_with("reader."))
        .collect();
    open.sort();
    open
}

async fn start_callback(stack: &Stack, stop: &CancellationToken) -> anyhow::Result<Running> {
    let dir = tempfile::tempdir()?;
    let settings = local_settings(dir.path());
    Ok(start(&stack.runtime, &[Role::Callback], &settings, stop).await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reports_waiting_under_the_old_tier_groups_are_delivered_once_and_none_retried_again()
-> anyhow::Result<()> {
    let (stack, inbox, receiver_stop) = upgraded_namespace().await?;
    let stop = CancellationToken::new();
    let running = start_callback(&stack, &stop).await?;
    let watch = inbox.clone();
    let delivered = wait_for(Duration::from_secs(30), || {
        (0..6).all(|i| count(&watch, &format!("pending-{i}")) >= 1)
    })
    .await;
    assert!(delivered, "{:?}", inbox.all());
    // A report delivered to the receiver: one more, after the waiting ones, shows the role
    // went on past everything it was going to read.
    stack
        .runtime
        .publish("test", &[Output::new(FINAL, "m-after", report("after"))])
        .await?;
    let watch = inbox.clone();
    assert!(wait_for(Duration::from_secs(30), || count(&watch, "after") == 1).await);
    // Longer than tier 2's wait (3 × 100 ms): a record read again would have come due.
    tokio::time::sleep(Duration::from_millis(600)).await;
    for i in 0..6 {
        assert_eq!(count(&inbox, &format!("pending-{i}")), 1, "pending-{i}");
        assert_eq!(
            count(&inbox, &format!("retried-{i}")),
            0,
            "retried-{i} was retried by the old tier group already"
        );
    }
    assert_eq!(count(&inbox, "first"), 0, "delivered before the upgrade");
    // Twelve topics, one consumer (and the process's producer); the look-ups of the upgrade
    // are closed.
    let open = open_clients(&stack.runtime);
    assert_eq!(
        open,
        vec![
            "producer".to_string(),
            "stage.switchyard.callback".to_string()
        ],
        "the clients open"
    );
    stop.cancel();
    running.wait().await;
    // The role's group now holds the tiers' offsets: a restart finds them and reads nothing
    // again.
    let kafka = &stack.runtime.kafka;
    for tier in [1, 2] {
        assert_eq!(
            committed_total(kafka, "switchyard.callback", &callback_retry(tier))?,
            6,
            "tier {tier}: 3 retried and 3 pending records"
        );
    }
    receiver_stop.cancel();
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_older_instance_still_reading_a_tier_holds_the_new_role_back() -> anyhow::Result<()> {
    let (stack, inbox, receiver_stop) = upgraded_namespace().await?;
    let kafka = stack.runtime.kafka.clone();
    // The previous version's tier 1 consumer, still in its group.
    let old = kafka.group_consumer(&old_group(1))?;
    old.subscribe(&[kafka.topic(&callback_retry(1)).as_str()])?;
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
    let physical = kafka.namespace.physical(&old_group(1));
    let watcher = kafka.group_consumer("test.watch")?;
    let joined = wait_for(Duration::from_secs(30), || {
        watcher
            .fetch_group_list(Some(&physical), Duration::from_secs(5))
            .is_ok_and(|list| list.groups().iter().any(|g| !g.members().is_empty()))
    })
    .await;
    assert!(joined, "the old tier consumer joined its group");

    let stop = CancellationToken::new();
    let running = start_callback(&stack, &stop).await?;
    // Much longer than the tiers' waits (100 and 300 ms): nothing comes.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        inbox.is_empty(),
        "nothing is retried while an older instance reads the tiers: {:?}",
        inbox.all()
    );
    old_stop.cancel();
    old_task.await?;
    let watch = inbox.clone();
    let delivered = wait_for(Duration::from_secs(30), || {
        (0..6).all(|i| count(&watch, &format!("pending-{i}")) >= 1)
    })
    .await;
    assert!(delivered, "{:?}", inbox.all());
    assert!((0..6).all(|i| count(&inbox, &format!("retried-{i}")) == 0));
    stop.cancel();
    running.wait().await;
    receiver_stop.cancel();
    Ok(())
}
