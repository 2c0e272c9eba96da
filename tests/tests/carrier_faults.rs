//! Carrier faults on the real broker, with dispatch and report as `switchyard run` processes
//! and the SMSC simulator as a real node process, ~2,000 SMS through one SMPP sender whose
//! receipt deadline is a few seconds (decision 0020):
//!
//! - the SMSC is killed -9 mid-run and started again on the same port ~2 s later: every
//!   message still has exactly one final report, delivered or unknown (3006: its receipt died
//!   with the simulator, or its submit was in flight — settled by the durable deadline), and
//!   no message was submitted twice;
//! - dispatch is killed -9 mid-run and started again: exactly one final report each, none
//!   missing; the re-submits of an at-least-once dispatcher (offsets not committed at the kill)
//!   are counted from the simulator's log and printed;
//! - receipts that come after the deadline are dropped: the unknown final report stands; their
//!   `state.receipts` entries are tombstoned.
//!
//! Needs Kafka (`SWITCHYARD_TEST_BROKERS`), the `switchyard` binary, node and
//! `tests/smsc/node_modules`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use rdkafka::Message;
use switchyard_runtime::Output;
use switchyard_runtime::names::{FINAL, RECEIPT_INDEX, REPORTS, sender};
use switchyard_schemas::{
    DeliveryReport, DispatchRequest, FinalReport, ResultStatus, ValidatedMessage,
};
use switchyard_tests::processes::{Connection, RoleProcess};
use switchyard_tests::smsc_process::SmscProcess;
use switchyard_tests::{Stack, TestEnv, free_port, read_all, read_values, sample_submission};
use tokio::time::Instant;

/// Messages per run.
const MESSAGES: usize = 2_000;
/// The sender's `receipt_deadline_seconds`.
const DEADLINE_SECONDS: u64 = 5;
/// The unified code of an unknown outcome (`switchyard_carrier_http::codes::OUTCOME_UNKNOWN`).
const UNKNOWN: &str = switchyard_carrier_http::codes::OUTCOME_UNKNOWN;
/// The sender under test.
const SENDER: &str = "smsc-faults";

/// Where a test's role processes log (kept after the run, for evidence).
fn log_dir(test: &str, env: &TestEnv) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("carrier_faults")
        .join(format!(
            "{test}-{}",
            env.namespace.prefix().trim_end_matches('.')
        ))
}

/// Message `i`'s id and its own destination (so a receipt can only match its own message,
/// even when the restarted simulator hands out carrier ids again from the start).
fn message(i: usize) -> (String, String) {
    (format!("f-{i:05}"), format!("0101{i:07}"))
}

fn request(i: usize) -> DispatchRequest {
    let (id, to) = message(i);
    let mut submission = sample_submission(Some(&id), "acme", "fault run");
    submission.to = to;
    submission.client_message_id = Some(format!("c-{id}"));
    DispatchRequest {
        message_id: id.clone(),
        customer_id: "acme".into(),
        carrier: "skt".into(),
        sender_group: "faults".into(),
        sender: SENDER.into(),
        attempt: 1,
        message: ValidatedMessage {
            message_id: id.clone(),
            customer_id: "acme".into(),
            submission,
            encoding: "euc-kr".into(),
            segments: 1,
            validated_at: 2,
            upgraded_from: None,
        },
        trail: vec![],
        routed_at: 3,
        prefer_group: None,
    }
}

/// The SMPP sender's config: short waits everywhere, the receipt deadline in seconds.
fn config(port: u16, deadline_seconds: u64) -> String {
    format!(
        r#"
[[customers]]
id = "acme"
channels = ["sms"]

[[senders]]
name = "{SENDER}"
group = "faults"
channel = "sms"
carriers = ["skt"]
kind = "smpp"
endpoint = "smpp://127.0.0.1:{port}"
settings = {{ system_id = "switchyard", password = "pw", window = 20, submit_timeout_ms = 1000, bind_wait_ms = 500, reconnect_min_ms = 100, reconnect_max_ms = 300, throttle_pause_ms = 100, enquire_link_interval_ms = 5000, receipt_deadline_seconds = {deadline_seconds} }}
"#
    )
}

/// One run: the stack, the simulator, and dispatch and report as processes.
struct Run {
    /// Messages 0..count.
    count: usize,
    stack: Stack,
    smsc: SmscProcess,
    dispatch: RoleProcess,
    report: RoleProcess,
}

impl Run {
    /// Start the simulator with `smsc_env`, apply the config, put every request on the
    /// sender's topic, and start report then dispatch.
    async fn start(
        test: &str,
        count: usize,
        deadline_seconds: u64,
        smsc_env: &[(&str, &str)],
    ) -> anyhow::Result<Run> {
        switchyard_tests::init_logging();
        let env = TestEnv::new()?;
        let logs = log_dir(test, &env);
        let stack = Stack::on(env, &[&sender(SENDER)]).await?;
        let smsc = SmscProcess::start(free_port(), smsc_env)?;
        let config = config(smsc.port(), deadline_seconds);
        switchyard_config::apply(&stack.runtime, &config, false, 1).await?;
        let requests: Vec<Output> = (0..count)
            .map(|i| Output::new(sender(SENDER), message(i).0, request(i)))
            .collect();
        stack.runtime.publish("test", &requests).await?;

        let connection = Connection::new(&stack.env, &stack.registry.url());
        let mut report = RoleProcess::spawn(&connection, "report", "report-1", &[], &logs)?;
        // report, report.rejected and report.deadline.
        report
            .wait_for_log("stage started", 3, Duration::from_secs(60))
            .await?;
        report
            .wait_for_log("partitions assigned", 3, Duration::from_secs(60))
            .await?;
        let receipts = format!("127.0.0.1:{}", free_port());
        let dispatch = RoleProcess::spawn(
            &connection,
            "dispatch",
            "dispatch-1",
            &["--receipts".into(), receipts],
            &logs,
        )?;
        Ok(Run {
            count,
            stack,
            smsc,
            dispatch,
            report,
        })
    }

    /// Wait until the simulator took at least `count` submits.
    async fn wait_taken(&self, count: usize, timeout: Duration) -> anyhow::Result<usize> {
        let deadline = Instant::now() + timeout;
        loop {
            let taken = self.smsc.taken_destinations().len();
            if taken >= count {
                return Ok(taken);
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "the simulator took {taken} of {count} submits in {timeout:?}; dispatch:\n{}",
                self.dispatch.log_tail(30)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Wait until every message has a final report; then the final reports by message id.
    async fn wait_for_finals(
        &self,
        timeout: Duration,
    ) -> anyhow::Result<HashMap<String, Vec<FinalReport>>> {
        let deadline = Instant::now() + timeout;
        loop {
            let mut finals: HashMap<String, Vec<FinalReport>> = HashMap::new();
            for f in read_values::<FinalReport>(&self.stack.runtime, FINAL).await? {
                finals.entry(f.message_id.clone()).or_default().push(f);
            }
            let missing: Vec<String> = (0..self.count)
                .map(|i| message(i).0)
                .filter(|id| !finals.contains_key(id))
                .collect();
            if missing.is_empty() {
                return Ok(finals);
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "{} of {} messages have no final report, e.g. {:?}; report:\n{}\ndispatch:\n{}",
                missing.len(),
                self.count,
                &missing[..missing.len().min(5)],
                self.report.log_tail(20),
                self.dispatch.log_tail(20)
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Message ids the simulator took more than once, with how many times.
    fn resubmitted(&self) -> Vec<(String, usize)> {
        let by_dest: HashMap<String, String> = (0..self.count)
            .map(|i| {
                let (id, to) = message(i);
                (to, id)
            })
            .collect();
        let mut counts: HashMap<String, usize> = HashMap::new();
        for dest in self.smsc.taken_destinations() {
            let id = by_dest.get(&dest).cloned().unwrap_or(dest);
            *counts.entry(id).or_default() += 1;
        }
        let mut twice: Vec<(String, usize)> = counts.into_iter().filter(|(_, n)| *n > 1).collect();
        twice.sort();
        twice
    }
}

/// What the finals say: (delivered, unknown); fails on a message with two finals or a final
/// that is neither delivered nor unknown.
fn check_finals(
    finals: &HashMap<String, Vec<FinalReport>>,
    count: usize,
) -> anyhow::Result<(usize, usize)> {
    let mut twice: Vec<(&String, usize)> = finals
        .iter()
        .filter(|(_, f)| f.len() > 1)
        .map(|(id, f)| (id, f.len()))
        .collect();
    twice.sort();
    anyhow::ensure!(
        twice.is_empty(),
        "{} messages have more than one final report, e.g. {:?}",
        twice.len(),
        &twice[..twice.len().min(5)]
    );
    anyhow::ensure!(
        finals.len() == count,
        "{} final reports for {count} messages",
        finals.len()
    );
    let (mut delivered, mut unknown) = (0, 0);
    for f in finals.values().flatten() {
        match (f.status, f.result_code.as_str()) {
            (ResultStatus::Delivered, "0000") => delivered += 1,
            (ResultStatus::Failed, code) if code == UNKNOWN => unknown += 1,
            (status, code) => anyhow::bail!(
                "{}: final {} {code}, neither delivered nor unknown",
                f.message_id,
                status.as_str()
            ),
        }
    }
    Ok((delivered, unknown))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_smsc_killed_mid_run_leaves_every_message_one_final_and_resubmits_nothing()
-> anyhow::Result<()> {
    let began = Instant::now();
    // Slow enough answers that the kill lands mid-run; receipts 1.5 s after the answer, so
    // the ones still pending at the kill die with the simulator.
    let mut run = Run::start(
        "smsc-kill",
        MESSAGES,
        DEADLINE_SECONDS,
        &[("DELAY_MS", "10"), ("RECEIPT_DELAY_MS", "1500")],
    )
    .await?;
    let taken_at_kill = run
        .wait_taken(MESSAGES / 3, Duration::from_secs(40))
        .await?;
    run.smsc.kill9()?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    run.smsc.start_again()?;
    let finals = run.wait_for_finals(Duration::from_secs(45)).await?;
    let (delivered, unknown) = check_finals(&finals, MESSAGES)?;
    let resubmitted = run.resubmitted();
    let submits = run.smsc.taken_destinations().len();
    println!(
        "smsc kill -9 after {taken_at_kill} submits taken: {MESSAGES} messages, {submits} submits taken, \
         {} messages submitted more than once, finals: {delivered} delivered + {unknown} unknown (3006, by the \
         {DEADLINE_SECONDS} s deadline), wall {:.1} s",
        resubmitted.len(),
        began.elapsed().as_secs_f64()
    );
    anyhow::ensure!(
        resubmitted.is_empty(),
        "the SMSC kill made re-submits (a submit in flight at the kill is ambiguous and never \
         sent again, decision 0017): {} e.g. {:?}",
        resubmitted.len(),
        &resubmitted[..resubmitted.len().min(5)]
    );
    anyhow::ensure!(
        unknown > 0,
        "receipts pending in the killed simulator should have ended unknown by the deadline"
    );
    anyhow::ensure!(delivered > 0, "receipts after the restart deliver");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dispatch_killed_mid_run_leaves_every_message_exactly_one_final() -> anyhow::Result<()> {
    let began = Instant::now();
    let mut run = Run::start(
        "dispatch-kill",
        MESSAGES,
        DEADLINE_SECONDS,
        &[("DELAY_MS", "10"), ("RECEIPT_DELAY_MS", "300")],
    )
    .await?;
    let taken_at_kill = run
        .wait_taken(MESSAGES / 3, Duration::from_secs(40))
        .await?;
    run.dispatch.kill9()?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    run.dispatch.start_again()?;
    let finals = run.wait_for_finals(Duration::from_secs(45)).await?;
    let (delivered, unknown) = check_finals(&finals, MESSAGES)?;
    let resubmitted = run.resubmitted();
    let submits = run.smsc.taken_destinations().len();
    println!(
        "dispatch kill -9 after {taken_at_kill} submits taken: {MESSAGES} messages, {submits} submits taken, \
         {} messages submitted twice or more (offsets not committed at the kill: at least once), \
         finals: {delivered} delivered + {unknown} unknown (3006), wall {:.1} s",
        resubmitted.len(),
        began.elapsed().as_secs_f64()
    );
    anyhow::ensure!(
        submits >= MESSAGES,
        "every message reached the simulator at least once ({submits} submits)"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_receipt_after_the_deadline_is_dropped_the_unknown_final_stands() -> anyhow::Result<()> {
    const COUNT: usize = 20;
    // Receipts 5 s after the answer, the deadline at 2 s: every message ends unknown first.
    let run = Run::start("late-receipts", COUNT, 2, &[("RECEIPT_DELAY_MS", "5000")]).await?;
    let finals = run.wait_for_finals(Duration::from_secs(30)).await?;
    let (delivered, unknown) = check_finals(&finals, COUNT)?;
    assert_eq!(
        (delivered, unknown),
        (0, COUNT),
        "every final is the deadline's"
    );
    // The late receipts reach messages.reports …
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let late = read_values::<DeliveryReport>(&run.stack.runtime, REPORTS)
            .await?
            .into_iter()
            .filter(|r| r.status == ResultStatus::Delivered)
            .count();
        if late >= COUNT {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{late} of {COUNT} late receipts reached {REPORTS}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // … and make no second final report: the unknown one stands.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let finals = run.wait_for_finals(Duration::from_secs(5)).await?;
    assert_eq!(check_finals(&finals, COUNT)?, (0, COUNT));
    // The final receipts settled their receipt index entries: tombstones on state.receipts.
    let deadline = Instant::now() + Duration::from_secs(10);
    let tombstones = loop {
        let tombstones = read_all(&run.stack.runtime.kafka, RECEIPT_INDEX)
            .await?
            .iter()
            .filter(|m| m.payload().is_none())
            .count();
        if tombstones >= COUNT || Instant::now() >= deadline {
            break tombstones;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    anyhow::ensure!(
        tombstones >= COUNT,
        "{tombstones} tombstones on {RECEIPT_INDEX} for {COUNT} settled messages"
    );
    println!(
        "late receipts: {tombstones} {RECEIPT_INDEX} entries tombstoned; \
         {COUNT} delivered receipts after a 2 s deadline, {COUNT} finals, all unknown (3006); \
         report log: {}",
        run.report.log_path().display()
    );
    Ok(())
}
