//! The callback retry tiers on the real broker, with a 100 ms "minute": a receiver down for the
//! whole schedule sees exactly 11 attempts at the schedule's times, then the report reaches
//! `callbacks.exhausted`; a receiver that fails twice sees exactly 3; a malformed record in a
//! tier goes to its dead-letter topic without blocking the tier; a callback process killed with
//! kill -9 mid-schedule loses no report.

use std::path::PathBuf;
use std::time::Duration;

use switchyard::pipeline::{Role, Running, start};
use switchyard_callback::receiver::{Inbox, serve_failing};
use switchyard_runtime::names::{CALLBACK_RESULTS, CALLBACKS_EXHAUSTED, FINAL, callback_retry};
use switchyard_runtime::{CancellationToken, Output};
use switchyard_schemas::{CallbackResult, Channel, FinalReport, ResultStatus, now_millis};
use switchyard_tests::pipeline::{SECRET, local_settings};
use switchyard_tests::{Stack, produce_raw, read_all};

/// Cumulative times of the 11 attempts, in minutes after the first: 0, then + 1, 3, 7, … 91.
const SCHEDULE_MINUTES: [u32; 11] = [0, 1, 4, 11, 24, 45, 76, 119, 176, 249, 340];
const MINUTE_MS: i64 = 100;

fn config(report_url: &str) -> String {
    format!(
        r#"
[[customers]]
id = "acme"
channels = ["sms"]

[[clients]]
id = "acme-web"
customer = "acme"
api_key = "sk-tiers"
report_url = "{report_url}"
signing_secret = "{SECRET}"
"#
    )
}

fn report(i: usize) -> FinalReport {
    FinalReport {
        event_id: format!("evt-{i}"),
        message_id: format!("m-{i}"),
        customer_id: "acme".into(),
        client_id: Some("acme-web".into()),
        client_message_id: None,
        channel: Channel::Sms,
        to: "01012345678".into(),
        status: ResultStatus::Delivered,
        result_code: "0000".into(),
        result_text: "delivered".into(),
        carrier: Some("skt".into()),
        sender: Some("skt-1".into()),
        attempt: 1,
        submitted_at: None,
        done_at: now_millis(),
        trail: Vec::new(),
    }
}

/// The callback role alone, with a receiver that fails the first `fail_first` deliveries.
struct Tiers {
    stack: Stack,
    inbox: Inbox,
    running: Running,
    shutdown: CancellationToken,
    _dir: tempfile::TempDir,
}

impl Tiers {
    async fn start(fail_first: u32) -> anyhow::Result<Self> {
        let stack = Stack::start(&[]).await?;
        let shutdown = CancellationToken::new();
        let (addr, inbox) = serve_failing(
            "127.0.0.1:0".parse()?,
            SECRET,
            false,
            fail_first,
            shutdown.clone(),
        )
        .await?;
        switchyard_config::apply(
            &stack.runtime,
            &config(&format!("http://{addr}/")),
            false,
            1,
        )
        .await?;
        let dir = tempfile::tempdir()?;
        let settings = local_settings(dir.path());
        let running = start(&stack.runtime, &[Role::Callback], &settings, &shutdown).await?;
        Ok(Tiers {
            stack,
            inbox,
            running,
            shutdown,
            _dir: dir,
        })
    }

    async fn send(&self, reports: Vec<FinalReport>) -> anyhow::Result<()> {
        let outputs: Vec<Output> = reports
            .into_iter()
            .map(|r| Output::new(FINAL, r.message_id.clone(), r))
            .collect();
        self.stack.runtime.publish("test", &outputs).await?;
        Ok(())
    }

    async fn stop(self) {
        self.shutdown.cancel();
        self.running.wait().await;
    }
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_receiver_down_for_the_whole_schedule_sees_eleven_attempts_on_time() -> anyhow::Result<()>
{
    let tiers = Tiers::start(u32::MAX).await?;
    // Warm up: once a report's first retry arrived, the tier consumers are in their group.
    tiers.send(vec![report(99)]).await?;
    let inbox = tiers.inbox.clone();
    assert!(wait_for(Duration::from_secs(30), || inbox.len() >= 2).await);
    tiers.send(vec![report(0), report(1)]).await?;
    let all_in = wait_for(Duration::from_secs(60), || inbox.len() >= 33).await;
    // Longer than the last gap: nothing more may come.
    tokio::time::sleep(Duration::from_millis(12 * MINUTE_MS as u64)).await;
    let received = tiers.inbox.all();
    assert!(all_in, "{} attempts arrived", received.len());
    for event in ["evt-0", "evt-1"] {
        let count = received.iter().filter(|r| r.event_id == event).count();
        assert_eq!(count, 11, "{event}");
    }
    // The timing of the first report (one sent with it may wait behind it in its partition
    // for the fetch after the resume).
    for event in ["evt-0"] {
        let times: Vec<i64> = received
            .iter()
            .filter(|r| r.event_id == event)
            .map(|r| r.at)
            .collect();
        assert_eq!(times.len(), 11, "{event}: {times:?}");
        let offsets: Vec<i64> = times
            .iter()
            .zip(SCHEDULE_MINUTES)
            .map(|(at, minutes)| at - times[0] - i64::from(minutes) * MINUTE_MS)
            .collect();
        eprintln!("{event}: ms late against the schedule, per attempt: {offsets:?}");
        for (n, (at, minutes)) in times.iter().zip(SCHEDULE_MINUTES).enumerate().skip(1) {
            let expected = i64::from(minutes) * MINUTE_MS;
            let actual = at - times[0];
            // Within 10% of the schedule (and 30 ms for the 100 ms first gap).
            let slack = (expected / 10).max(30);
            assert!(
                (actual - expected).abs() <= slack,
                "{event} attempt {}: {actual} ms after the first, expected {expected} ± {slack}",
                n + 1
            );
        }
    }
    assert!(received.iter().all(|r| r.signature_valid));

    let kafka = &tiers.stack.runtime.kafka;
    let exhausted = read_all(kafka, CALLBACKS_EXHAUSTED).await?;
    assert_eq!(
        exhausted.len(),
        3,
        "each report once in callbacks.exhausted"
    );
    let results = read_all(kafka, CALLBACK_RESULTS).await?;
    assert_eq!(results.len(), 33, "one result per attempt");
    let mut last = Vec::new();
    for message in &results {
        let result: CallbackResult = tiers
            .stack
            .runtime
            .codec
            .decode(rdkafka::Message::payload(message).unwrap_or_default())
            .await?;
        assert!(!result.delivered);
        if result.attempt == 11 {
            last.push(result);
        }
    }
    assert_eq!(last.len(), 3);
    assert!(last.iter().all(|r| r.exhausted && r.next_due_at.is_none()));
    tiers.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_receiver_that_fails_twice_sees_exactly_three_attempts() -> anyhow::Result<()> {
    let tiers = Tiers::start(2).await?;
    tiers.send((0..5).map(report).collect()).await?;
    let inbox = tiers.inbox.clone();
    assert!(
        wait_for(Duration::from_secs(20), || inbox
            .all()
            .iter()
            .filter(|r| r.status == 204)
            .count()
            == 5)
        .await,
        "{:?}",
        inbox.all().len()
    );
    // Retry 3 would come 7 minutes after retry 2: wait longer than that.
    tokio::time::sleep(Duration::from_millis(9 * MINUTE_MS as u64)).await;
    let received = tiers.inbox.all();
    for i in 0..5 {
        let statuses: Vec<u16> = received
            .iter()
            .filter(|r| r.event_id == format!("evt-{i}"))
            .map(|r| r.status)
            .collect();
        assert_eq!(statuses, vec![503, 503, 204], "evt-{i}");
    }
    let kafka = &tiers.stack.runtime.kafka;
    assert!(read_all(kafka, CALLBACKS_EXHAUSTED).await?.is_empty());
    assert!(read_all(kafka, &callback_retry(3)).await?.is_empty());
    assert_eq!(read_all(kafka, &callback_retry(2)).await?.len(), 5);
    tiers.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_malformed_record_in_a_tier_is_dead_lettered_and_does_not_block_it() -> anyhow::Result<()>
{
    let tiers = Tiers::start(1).await?;
    let tier = callback_retry(1);
    produce_raw(&tiers.stack.runtime, &tier, "junk", b"not avro at all").await?;
    tiers.send(vec![report(7)]).await?;
    let inbox = tiers.inbox.clone();
    assert!(
        wait_for(Duration::from_secs(20), || inbox
            .all()
            .iter()
            .any(|r| r.status == 204))
        .await,
        "the report after the junk was retried and delivered"
    );
    let dead = read_all(
        &tiers.stack.runtime.kafka,
        &switchyard_runtime::names::dead_letter(&tier),
    )
    .await?;
    assert_eq!(dead.len(), 1);
    tiers.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tier_consumer_killed_mid_schedule_loses_no_report() -> anyhow::Result<()> {
    use switchyard_tests::processes::{Connection, RoleProcess};
    let stack = Stack::start(&[]).await?;
    let shutdown = CancellationToken::new();
    // Fails the first four deliveries of each report: it is delivered by retry 4, 24 minutes
    // (2.4 s) after the first attempt.
    let (addr, inbox) =
        serve_failing("127.0.0.1:0".parse()?, SECRET, false, 4, shutdown.clone()).await?;
    switchyard_config::apply(
        &stack.runtime,
        &config(&format!("http://{addr}/")),
        false,
        1,
    )
    .await?;
    let logs = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "tiers-kill-{}",
        stack.env.namespace.prefix().trim_end_matches('.')
    ));
    let connection = Connection::new(&stack.env, &stack.registry.url());
    let args: Vec<String> = ["--callback-minute-ms", "100", "--webhook-mode", "dev"]
        .map(String::from)
        .to_vec();
    let mut callback = RoleProcess::spawn(&connection, "callback", "callback-1", &args, &logs)?;
    callback.wait_ready(None, Duration::from_secs(60)).await?;

    let reports: Vec<FinalReport> = (0..20).map(report).collect();
    let outputs: Vec<Output> = reports
        .iter()
        .map(|r| Output::new(FINAL, r.message_id.clone(), r.clone()))
        .collect();
    stack.runtime.publish("test", &outputs).await?;
    // Mid-schedule: every report has had its second attempt (waiting in tiers 2 and up).
    let watch = inbox.clone();
    assert!(
        wait_for(Duration::from_secs(30), || {
            (0..20).all(|i| {
                let id = format!("evt-{i}");
                watch.all().iter().filter(|r| r.event_id == id).count() >= 2
            })
        })
        .await
    );
    callback.kill9()?;
    callback.start_again()?;
    callback.wait_ready(None, Duration::from_secs(60)).await?;
    let watch = inbox.clone();
    let delivered = wait_for(Duration::from_secs(60), || {
        (0..20).all(|i| {
            let id = format!("evt-{i}");
            watch
                .all()
                .iter()
                .any(|r| r.event_id == id && r.status == 204)
        })
    })
    .await;
    let received = inbox.all();
    let missing: Vec<usize> = (0..20)
        .filter(|i| {
            !received
                .iter()
                .any(|r| r.event_id == format!("evt-{i}") && r.status == 204)
        })
        .collect();
    assert!(
        delivered,
        "reports never delivered: {missing:?}\n{}",
        callback.log_tail(20)
    );
    shutdown.cancel();
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reports_waiting_in_tiers_survive_rebalances() -> anyhow::Result<()> {
    let stack = Stack::start(&[]).await?;
    let receiver_stop = CancellationToken::new();
    // Fails the first three deliveries: reports wait in tiers 1 to 3 (up to 7 minutes = 0.7 s)
    // while a second callback instance joins.
    let (addr, inbox) = serve_failing(
        "127.0.0.1:0".parse()?,
        SECRET,
        false,
        3,
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
    let dir = tempfile::tempdir()?;
    let settings = local_settings(dir.path());
    let first_stop = CancellationToken::new();
    let first = start(&stack.runtime, &[Role::Callback], &settings, &first_stop).await?;
    let reports: Vec<Output> = (0..30)
        .map(report)
        .map(|r| Output::new(FINAL, r.message_id.clone(), r))
        .collect();
    stack.runtime.publish("test", &reports).await?;
    let watch = inbox.clone();
    let attempted_twice = wait_for(Duration::from_secs(20), || {
        let all = watch.all();
        (0..30).all(|i| {
            let id = format!("evt-{i}");
            all.iter().filter(|r| r.event_id == id).count() >= 2
        })
    })
    .await;
    assert!(attempted_twice);
    // A second instance joins: every tier's group rebalances while partitions are paused.
    let second_stop = CancellationToken::new();
    let second = start(&stack.runtime, &[Role::Callback], &settings, &second_stop).await?;
    // Both stay: partitions the first one had paused and got back must be fetched again.
    let watch = inbox.clone();
    let delivered = wait_for(Duration::from_secs(60), || {
        let all = watch.all();
        (0..30).all(|i| {
            let id = format!("evt-{i}");
            all.iter().any(|r| r.event_id == id && r.status == 204)
        })
    })
    .await;
    let all = inbox.all();
    let missing: Vec<usize> = (0..30)
        .filter(|i| {
            !all.iter()
                .any(|r| r.event_id == format!("evt-{i}") && r.status == 204)
        })
        .collect();
    assert!(
        delivered,
        "never delivered after the rebalance: {missing:?}"
    );
    first_stop.cancel();
    second_stop.cancel();
    first.wait().await;
    second.wait().await;
    receiver_stop.cancel();
    Ok(())
}
