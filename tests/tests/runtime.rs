//! The shared runner end to end on the real broker: bad input is dead-lettered with its reason,
//! a stage killed mid-batch loses nothing after restart, SIGTERM finishes and commits, tables
//! follow compacted topics, and /metrics counts what happened.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rdkafka::Message;
use switchyard_runtime::dead_letter::{
    KIND_HEADER, REASON_HEADER, SOURCE_OFFSET_HEADER, STAGE_HEADER, header_text,
};
use switchyard_runtime::{CancellationToken, Output, Processing, Table};
use switchyard_schemas::{Channel, CustomerConfig, Submission};
use switchyard_tests::sample_submission;
use switchyard_tests::{Stack, committed_total, free_port, produce_raw, read_all, read_topic};

const OUTPUTS: [&str; 2] = ["fixture.out.a", "fixture.out.b"];

fn submission(id: &str, text: &str) -> Submission {
    let mut s = sample_submission(Some(id), "acme", text);
    s.accepted_at = 0;
    s
}

async fn produce_submissions(
    stack: &Stack,
    ids: impl Iterator<Item = String>,
) -> anyhow::Result<()> {
    for id in ids {
        let bytes = stack
            .runtime
            .codec
            .encode("messages.accepted", &submission(&id, "hello"))
            .await?;
        produce_raw(&stack.runtime, "messages.accepted", "acme", &bytes).await?;
    }
    Ok(())
}

fn start_stage(stack: &Stack, delay_ms: u64, metrics_port: Option<u16>) -> anyhow::Result<Child> {
    start_stage_batched(stack, delay_ms, 50, metrics_port)
}

fn start_stage_batched(
    stack: &Stack,
    delay_ms: u64,
    batch: usize,
    metrics_port: Option<u16>,
) -> anyhow::Result<Child> {
    start_stage_as(stack, delay_ms, batch, metrics_port, &[])
}

/// The fixture stage with extra arguments (`--processing`, `--instance-id`).
fn start_stage_as(
    stack: &Stack,
    delay_ms: u64,
    batch: usize,
    metrics_port: Option<u16>,
    extra: &[&str],
) -> anyhow::Result<Child> {
    let mut command = Command::new(env!("CARGO_BIN_EXE_fixture_stage"));
    command
        .args(extra)
        .args([
            "--brokers",
            &stack.env.brokers(),
            "--topic-prefix",
            stack.env.namespace.prefix(),
            "--registry",
            &stack.registry.url(),
        ])
        .args([
            "--delay-ms",
            &delay_ms.to_string(),
            "--batch",
            &batch.to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(port) = metrics_port {
        command.args(["--metrics-addr", &format!("127.0.0.1:{port}")]);
    }
    Ok(command.spawn()?)
}

fn signal(child: &Child, signal: &str) -> anyhow::Result<()> {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()?;
    anyhow::ensure!(status.success(), "kill -{signal} failed");
    Ok(())
}

/// Count of each message id on a topic.
async fn ids_on(
    stack: &Stack,
    topic: &str,
    at_least: usize,
    timeout: Duration,
) -> anyhow::Result<HashMap<String, usize>> {
    let mut counts = HashMap::new();
    for message in read_topic(&stack.runtime.kafka, topic, at_least, timeout).await? {
        let key = String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned();
        *counts.entry(key).or_insert(0) += 1;
    }
    Ok(counts)
}

async fn wait_for_count(
    stack: &Stack,
    topic: &str,
    count: usize,
    timeout: Duration,
) -> anyhow::Result<usize> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let seen: usize = ids_on(stack, topic, count, Duration::from_millis(500))
            .await?
            .values()
            .sum();
        if seen >= count || tokio::time::Instant::now() > deadline {
            return Ok(seen);
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_mid_batch_then_restarted_loses_nothing_and_repeats_nothing() -> anyhow::Result<()> {
    killed_mid_batch_then_restarted(Processing::ExactlyOnce).await
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_mid_batch_then_restarted_loses_nothing_at_least_once() -> anyhow::Result<()> {
    killed_mid_batch_then_restarted(Processing::AtLeastOnce).await
}

/// Kill -9 inside a batch, restart with the same instance id: every input has its outputs;
/// exactly once, none twice (read_committed).
async fn killed_mid_batch_then_restarted(processing: Processing) -> anyhow::Result<()> {
    let stack = Stack::start(&OUTPUTS).await?;
    let total = 300;
    produce_submissions(&stack, (0..total).map(|i| format!("m-{i}"))).await?;
    let args = [
        "--processing",
        processing.as_str(),
        "--instance-id",
        "fixture-1",
    ];

    // 20 ms per record: a 50-record batch takes a second, so the kill lands inside one.
    let mut stage = start_stage_as(&stack, 20, 50, None, &args)?;
    let produced_before_kill =
        wait_for_count(&stack, "fixture.out.a", 60, Duration::from_secs(30)).await?;
    assert!(
        produced_before_kill >= 60,
        "stage made progress before the kill"
    );
    signal(&stage, "KILL")?;
    stage.wait()?;
    let committed_at_kill = committed_total(
        &stack.runtime.kafka,
        "switchyard.fixture",
        "messages.accepted",
    )?;
    assert!(
        committed_at_kill < total as i64,
        "the kill came before the end ({committed_at_kill} committed)"
    );

    let mut restarted = start_stage_as(&stack, 0, 50, None, &args)?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while committed_total(
        &stack.runtime.kafka,
        "switchyard.fixture",
        "messages.accepted",
    )? < total as i64
    {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "restarted stage did not commit everything"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Committed means produced and acknowledged: every input has both outputs now.
    for topic in OUTPUTS {
        let mut counts: HashMap<String, usize> = HashMap::new();
        for message in read_all(&stack.runtime.kafka, topic).await? {
            *counts
                .entry(String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned())
                .or_default() += 1;
        }
        let missing: Vec<String> = (0..total)
            .map(|i| format!("m-{i}"))
            .filter(|id| !counts.contains_key(id))
            .collect();
        assert!(
            missing.is_empty(),
            "{topic} lacks {} outputs, e.g. {:?}",
            missing.len(),
            &missing[..missing.len().min(5)]
        );
        let replayed = counts.values().filter(|&&n| n > 1).count();
        eprintln!(
            "{topic}: {total} inputs, all present; {replayed} replayed after the kill ({processing})"
        );
        if processing == Processing::ExactlyOnce {
            assert_eq!(
                replayed, 0,
                "{topic}: no output twice to read_committed readers"
            );
        }
    }
    signal(&restarted, "TERM")?;
    restarted.wait()?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_finishes_the_batch_commits_and_leaves() -> anyhow::Result<()> {
    let stack = Stack::start(&OUTPUTS).await?;
    let total = 100;
    produce_submissions(&stack, (0..total).map(|i| format!("t-{i}"))).await?;
    // 30 ms per record, 10 per batch: the signal lands with most of the input still unread.
    let mut stage = start_stage_batched(&stack, 30, 10, None)?;
    wait_for_count(&stack, "fixture.out.a", 20, Duration::from_secs(30)).await?;
    signal(&stage, "TERM")?;
    let status = stage.wait()?;
    assert!(status.success(), "graceful exit, got {status}");

    // Everything the stage produced is committed, and nothing past it: outputs == commits.
    let committed = committed_total(
        &stack.runtime.kafka,
        "switchyard.fixture",
        "messages.accepted",
    )?;
    let produced: usize = ids_on(&stack, "fixture.out.a", total, Duration::from_secs(2))
        .await?
        .values()
        .sum();
    assert_eq!(
        committed as usize, produced,
        "the in-flight batch was finished and committed"
    );
    assert!(committed < total as i64, "stopped before the end");

    // A restart continues from the commit: every id exactly once.
    let mut restarted = start_stage(&stack, 0, None)?;
    let counts = ids_on(&stack, "fixture.out.a", total, Duration::from_secs(60)).await?;
    assert_eq!(counts.len(), total);
    assert!(
        counts.values().all(|&n| n == 1),
        "no duplicates after a graceful stop"
    );
    signal(&restarted, "TERM")?;
    restarted.wait()?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_goes_to_the_dead_letter_topic_with_its_reason() -> anyhow::Result<()> {
    let stack = Stack::start(&OUTPUTS).await?;
    produce_raw(
        &stack.runtime,
        "messages.accepted",
        "acme",
        b"this is not avro",
    )
    .await?;
    let invalid = stack
        .runtime
        .codec
        .encode("messages.accepted", &submission("bad-1", "invalid"))
        .await?;
    produce_raw(&stack.runtime, "messages.accepted", "acme", &invalid).await?;
    produce_submissions(&stack, std::iter::once("good-1".to_string())).await?;

    let metrics_port = free_port();
    let mut stage = start_stage(&stack, 0, Some(metrics_port))?;
    let dead = read_topic(
        &stack.runtime.kafka,
        "deadletter.messages.accepted",
        2,
        Duration::from_secs(30),
    )
    .await?;
    assert_eq!(dead.len(), 2, "both bad records are dead-lettered");
    let by_kind: HashMap<String, &rdkafka::message::OwnedMessage> = dead
        .iter()
        .map(|m| {
            (
                header_text(m.headers().expect("headers"), KIND_HEADER)
                    .unwrap_or_default()
                    .to_string(),
                m,
            )
        })
        .collect();

    let garbage = by_kind["undecodable"];
    assert_eq!(
        garbage.payload(),
        Some(&b"this is not avro"[..]),
        "original bytes kept"
    );
    assert_eq!(garbage.key(), Some(&b"acme"[..]), "original key kept");
    let headers = garbage.headers().expect("headers");
    assert!(
        header_text(headers, REASON_HEADER)
            .unwrap_or_default()
            .contains("wire format")
    );
    assert_eq!(header_text(headers, STAGE_HEADER), Some("fixture"));
    assert!(header_text(headers, SOURCE_OFFSET_HEADER).is_some());

    let refused = by_kind["invalid"];
    assert_eq!(refused.payload(), Some(&invalid[..]));
    assert_eq!(
        header_text(refused.headers().expect("headers"), REASON_HEADER),
        Some("text is \"invalid\"")
    );

    let good = ids_on(&stack, "fixture.out.a", 1, Duration::from_secs(30)).await?;
    assert_eq!(good.keys().collect::<Vec<_>>(), vec!["good-1"]);

    // The stage is still alive and counts what it did.
    let text = reqwest::get(format!("http://127.0.0.1:{metrics_port}/metrics"))
        .await?
        .text()
        .await?;
    assert!(text.contains(r#"switchyard_records_dead_lettered_total{stage="fixture",topic="deadletter.messages.accepted"} 2"#), "{text}");
    assert!(
        text.contains(
            r#"switchyard_records_consumed_total{stage="fixture",topic="messages.accepted"} 3"#
        ),
        "{text}"
    );
    assert!(
        text.contains(
            r#"switchyard_records_produced_total{stage="fixture",topic="fixture.out.a"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains("switchyard_processing_latency_seconds_bucket"),
        "{text}"
    );
    signal(&stage, "TERM")?;
    assert!(stage.wait()?.success());
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_table_follows_its_compacted_topic() -> anyhow::Result<()> {
    let stack = Stack::start(&[]).await?;
    let customer = |id: &str, enabled: bool| CustomerConfig {
        customer_id: id.into(),
        name: id.to_uppercase(),
        enabled,
        channels: vec![Channel::Sms],
        bill_codes: vec![],
        tps_limits: Default::default(),
        prepaid: false,
        night_ads: Default::default(),
        auto_lms_upgrade: false,
        prices: Default::default(),
        dedup_window_hours: 24,
        history_retention_days: None,
    };
    let put = |output: Output| {
        let runtime = stack.runtime.clone();
        async move {
            runtime.publish("test", &[output]).await?;
            anyhow::Ok(())
        }
    };
    put(Output::new(
        "config.customers",
        "acme",
        customer("acme", true),
    ))
    .await?;
    put(Output::new(
        "config.customers",
        "beta",
        customer("beta", true),
    ))
    .await?;
    put(Output::new(
        "config.customers",
        "acme",
        customer("acme", false),
    ))
    .await?;
    put(Output::tombstone("config.customers", "beta")).await?;
    // Many records at once travel in multi-record batches: readiness must wait for all of them.
    let bulk = (0..200).map(|i| {
        put(Output::new(
            "config.customers",
            format!("bulk-{i}"),
            customer("bulk", true),
        ))
    });
    futures::future::try_join_all(bulk).await?;

    let shutdown = CancellationToken::new();
    let table: Table<String, CustomerConfig> =
        Table::start_ready(&stack.runtime, "config.customers", shutdown.clone()).await?;
    assert_eq!(
        table.len(),
        201,
        "tombstone deleted beta; every bulk record is in"
    );
    assert_eq!(
        table.get(&"acme".to_string()).map(|c| c.enabled),
        Some(false),
        "latest value wins"
    );

    // Live: a change after start shows up.
    put(Output::new(
        "config.customers",
        "gamma",
        customer("gamma", true),
    ))
    .await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while table.get(&"gamma".to_string()).is_none() {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "table did not see gamma"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shutdown.cancel();
    Ok(())
}
