//! Priority lanes and per-sender TPS on the real broker (issue 9, decision 0023):
//!
//! - OTP behind bulk: 20,000 bulk requests queued for `kt-a`, a sender its carrier holds to
//!   200 msg/s (`tps`), so the queue is 100 s deep; an OTP submitted over HTTP after them is
//!   dispatched within 1 s, ahead of nearly all of them. Prints the figure, hop by hop. (The
//!   pipeline is warmed first: a state store's first record on a partition waits for its
//!   restore, a one-off per assignment that is not what this measures.)
//! - TPS across instances: `kt-a` at `tps = 100` with two dispatch processes; together they
//!   never start more than 100 submits in any second (each takes half), and the run takes as
//!   long as that rate says.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use switchyard_runtime::names::{DISPATCHED, sender as sender_topic, sender_lane};
use switchyard_runtime::{Output, Processing};
use switchyard_schemas::{
    DispatchOutcome, DispatchRequest, DispatchStatus, Priority, ValidatedMessage, new_message_id,
    now_millis,
};
use switchyard_tests::pipeline::{Pipeline, post_messages};
use switchyard_tests::processes::{Connection, RoleProcess};
use switchyard_tests::{Stack, TestEnv, read_values, sample_submission};

/// The sender's section in the pipeline's test config.
const KT_A: &str =
    "name = \"kt-a\"\ngroup = \"kt-direct\"\nchannel = \"sms\"\ncarriers = [\"kt\"]\n";

/// A request for `sender` (KT, to a 0109 number) at `priority`.
fn request(sender: &str, id: &str, priority: Priority) -> DispatchRequest {
    let mut submission = sample_submission(Some(id), "acme", "lane test");
    submission.to = format!("0109{:07}", id.len() * 7 % 10_000_000);
    submission.priority = priority;
    DispatchRequest {
        message_id: id.into(),
        customer_id: "acme".into(),
        carrier: "kt".into(),
        sender_group: "kt-direct".into(),
        sender: sender.into(),
        attempt: 1,
        message: ValidatedMessage {
            message_id: id.into(),
            customer_id: "acme".into(),
            submission,
            encoding: "euc-kr".into(),
            segments: 1,
            validated_at: now_millis(),
            upgraded_from: None,
        },
        trail: vec![],
        routed_at: now_millis(),
        prefer_group: None,
    }
}

/// The submits so far.
async fn dispatched(runtime: &switchyard_runtime::Runtime) -> anyhow::Result<Vec<DispatchOutcome>> {
    Ok(read_values::<DispatchOutcome>(runtime, DISPATCHED)
        .await?
        .into_iter()
        .filter(|o| o.status == DispatchStatus::Submitted)
        .collect())
}

#[tokio::test(flavor = "multi_thread")]
async fn an_otp_submitted_behind_20000_queued_bulk_messages_is_dispatched_within_a_second()
-> anyhow::Result<()> {
    const BULK: usize = 20_000;
    let pipeline = Pipeline::start_reconfigured(
        TestEnv::new()?,
        &[],
        Default::default(),
        Processing::default(),
        |base| {
            assert!(base.contains(KT_A));
            base.replacen(KT_A, &format!("{KT_A}tps = 200\n"), 1)
        },
        |_| {},
    )
    .await?;
    let runtime = &pipeline.stack.runtime;
    let http = reqwest::Client::new();

    // Warm up: validate and route restore a partition's state store at its first record
    // (hundreds of ms, once per assignment). 30 messages reach every partition of both, so
    // the OTP below meets a running pipeline, as it would in production.
    let warm: Vec<serde_json::Value> = (0..30)
        .map(|i| {
            serde_json::json!({
                "channel": "sms", "to": format!("0109{i:07}"), "text": format!("warm {i}"),
            })
        })
        .collect();
    let warm_ids = post_messages(&http, &pipeline.ingress_url, warm).await?;
    let started = Instant::now();
    loop {
        let sent = dispatched(runtime).await?;
        if warm_ids
            .iter()
            .all(|id| sent.iter().any(|o| &o.message_id == id))
        {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(60),
            "warm-up not dispatched"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let bulk_ids: Vec<String> = (0..BULK).map(|_| new_message_id()).collect();
    for chunk in bulk_ids.chunks(2_000) {
        let outputs: Vec<Output> = chunk
            .iter()
            .map(|id| {
                Output::new(
                    sender_lane("kt-a", "bulk"),
                    id.clone(),
                    request("kt-a", id, Priority::Bulk),
                )
            })
            .collect();
        runtime.publish("test", &outputs).await?;
    }
    // The bulk is flowing: the gate is busy with it when the OTP comes.
    let started = Instant::now();
    while dispatched(runtime).await?.len() < 500 + warm_ids.len() {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(60),
            "bulk did not start"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let submitted_at = now_millis();
    let ids = post_messages(
        &http,
        &pipeline.ingress_url,
        vec![serde_json::json!({
            "channel": "sms", "to": "01091234567", "text": "인증번호 123456",
            "priority": "otp", "client_message_id": "otp-1",
        })],
    )
    .await?;
    // Accepted: the 202 says the message is on the intake topic.
    let accepted_at = now_millis();
    let otp = ids
        .first()
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("no message id answered"))?;

    let waiting = Instant::now();
    let (report, reports) = loop {
        let reports = dispatched(runtime).await?;
        if let Some(report) = reports.iter().find(|r| r.message_id == otp).cloned() {
            break (report, reports);
        }
        anyhow::ensure!(
            waiting.elapsed() < Duration::from_secs(30),
            "the OTP was not dispatched"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let dispatched_at = report.dispatched_at;
    let latency_ms = dispatched_at - accepted_at;
    let post_ms = accepted_at - submitted_at;
    let bulk_before = reports
        .iter()
        .filter(|r| r.message_id != otp && !warm_ids.contains(&r.message_id))
        .filter(|r| r.dispatched_at <= dispatched_at)
        .count();
    let validated_at =
        read_values::<ValidatedMessage>(runtime, switchyard_runtime::names::VALIDATED)
            .await?
            .into_iter()
            .find(|v| v.message_id == otp)
            .map(|v| v.validated_at - submitted_at);
    let routed_at = read_values::<switchyard_schemas::RoutingDecision>(
        runtime,
        switchyard_runtime::names::ROUTED,
    )
    .await?
    .into_iter()
    .find(|r| r.message_id == otp)
    .map(|r| r.routed_at - submitted_at);
    println!(
        "OTP: POST answered 202 in {post_ms} ms; then validated at {:?} ms, routed at {:?} ms, \
         dispatched at +{latency_ms} ms",
        validated_at.map(|v| v - post_ms),
        routed_at.map(|r| r - post_ms)
    );
    println!(
        "OTP behind {BULK} bulk: dispatched {latency_ms} ms after it was accepted; {bulk_before} bulk \
         dispatched before it, {} after (sender at 200 msg/s)",
        BULK - bulk_before
    );
    assert_eq!(report.sender, "kt-a");
    assert!(
        latency_ms <= 1_000,
        "the OTP took {latency_ms} ms to be dispatched"
    );
    assert!(
        BULK - bulk_before >= 15_000,
        "the OTP was behind the bulk: only {} bulk went after it",
        BULK - bulk_before
    );
    pipeline.stop().await;
    Ok(())
}

/// Where this test's role processes log (kept after the run, for evidence).
fn log_dir(test: &str, env: &TestEnv) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("priority_lanes")
        .join(format!(
            "{test}-{}",
            env.namespace.prefix().trim_end_matches('.')
        ))
}

#[tokio::test(flavor = "multi_thread")]
async fn two_dispatch_instances_together_keep_a_sender_to_its_tps() -> anyhow::Result<()> {
    const TPS: usize = 100;
    const COUNT: usize = 600;
    let env = TestEnv::new()?;
    let logs = log_dir("tps", &env);
    let stack = Stack::on(env, &[]).await?;
    let shutdown = switchyard_runtime::CancellationToken::new();
    let sim = switchyard_carrier_http::simulator::serve(
        "127.0.0.1:0".parse()?,
        Default::default(),
        shutdown.clone(),
    )
    .await?;
    let config = format!(
        "[[customers]]\nid = \"acme\"\nchannels = [\"sms\"]\n\n[[senders]]\n{KT_A}\
         endpoint = \"http://{sim}/submit\"\ntps = {TPS}\n"
    );
    switchyard_config::apply(&stack.runtime, &config, false, 1).await?;

    let connection = Connection::new(&stack.env, &stack.registry.url());
    let mut instances = Vec::new();
    for n in 1..=2 {
        let receipts = format!("127.0.0.1:{}", switchyard_tests::free_port());
        let process = RoleProcess::spawn(
            &connection,
            "dispatch",
            &format!("dispatch-{n}"),
            &["--receipts".into(), receipts],
            &logs,
        )?;
        instances.push(process);
    }
    // Each has counted the other: both run at half the sender's rate.
    let half = format!("per_second={}", TPS as f64 / 2.0);
    for process in &mut instances {
        process
            .wait_for_log(&half, 1, Duration::from_secs(60))
            .await?;
        process
            .wait_for_log("partitions assigned", 1, Duration::from_secs(60))
            .await?;
    }

    let ids: Vec<String> = (0..COUNT).map(|_| new_message_id()).collect();
    let outputs: Vec<Output> = ids
        .iter()
        .map(|id| {
            Output::new(
                sender_topic("kt-a"),
                id.clone(),
                request("kt-a", id, Priority::Normal),
            )
        })
        .collect();
    stack.runtime.publish("test", &outputs).await?;
    let started = Instant::now();
    let reports = loop {
        let reports = dispatched(&stack.runtime).await?;
        if reports.len() >= COUNT {
            break reports;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(60),
            "{} of {COUNT} dispatched; dispatch-1:\n{}",
            reports.len(),
            instances[0].log_tail(20)
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let mut at: Vec<i64> = reports.iter().map(|r| r.dispatched_at).collect();
    at.sort_unstable();
    assert_eq!(at.len(), COUNT, "each dispatched once");
    // The most submits in any one second.
    let busiest = (0..at.len())
        .map(|i| at[i..].iter().take_while(|t| **t < at[i] + 1_000).count())
        .max()
        .unwrap_or(0);
    let span_ms = at[at.len() - 1] - at[0];
    println!(
        "tps {TPS} over two instances: {COUNT} submits in {span_ms} ms, at most {busiest} in any second"
    );
    assert!(busiest <= TPS + 5, "{busiest} submits in one second");
    assert!(
        span_ms >= ((COUNT / TPS) as i64 - 1) * 1_000,
        "{COUNT} submits in {span_ms} ms is faster than {TPS}/s"
    );
    for mut process in instances {
        process.terminate(Duration::from_secs(20)).await?;
    }
    shutdown.cancel();
    Ok(())
}
