//! Resilience on the real broker: two instances of validate and route with one of each killed
//! -9 mid-run, a rolling SIGTERM restart of every role under load, a broker crash and restart
//! under load, and a stage started while the broker is down. Each checks that every message
//! has exactly one final report and one verified webhook, and that the transactional topics
//! (messages.validated, messages.routed, reports.final) hold no message twice.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rdkafka::producer::FutureRecord;
use serde_json::{Value, json};
use switchyard::pipeline::Role;
use switchyard_callback::receiver::Inbox;
use switchyard_carrier_http::simulator::{self, SimulatorSettings};
use switchyard_runtime::{CancellationToken, KafkaSettings, Runtime};
use switchyard_schemas::Submission;
use switchyard_tests::pipeline::{self, API_KEY, Pipeline, SECRET, post_batch};
use switchyard_tests::processes::{Connection, RoleProcess};
use switchyard_tests::{
    Broker, Stack, TestEnv, free_port, read_all, read_topic, sample_submission,
};
use tokio::time::Instant;

/// The transactional topics: exactly once, so no message id twice.
const TRANSACTIONAL: [&str; 3] = ["messages.validated", "messages.routed", "reports.final"];

fn fast_carrier() -> SimulatorSettings {
    SimulatorSettings {
        success_rate: 1.0,
        receipt_delay: Duration::from_millis(5),
    }
}

/// Where a test's role processes log (kept after the run, for evidence).
fn log_dir(test: &str, env: &TestEnv) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("resilience")
        .join(format!(
            "{test}-{}",
            env.namespace.prefix().trim_end_matches('.')
        ))
}

fn http_client(timeout: Duration) -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder().timeout(timeout).build()?)
}

fn direct_submission(id: &str, i: usize) -> Submission {
    let mut s = sample_submission(Some(id), "acme", &format!("direct {i}"));
    s.client_message_id = Some(id.to_string());
    s.to = format!("0101{:07}", i % 10_000_000);
    s
}

/// Produce submissions with these message ids straight to `messages.accepted`, all at once,
/// and wait for every acknowledgement.
async fn produce_direct(runtime: &Runtime, ids: &[String], first: usize) -> anyhow::Result<()> {
    let producer = runtime.producer()?;
    let topic = runtime.kafka.topic("messages.accepted");
    let mut encoded = Vec::with_capacity(ids.len());
    for (n, id) in ids.iter().enumerate() {
        encoded.push(
            runtime
                .codec
                .encode("messages.accepted", &direct_submission(id, first + n))
                .await?,
        );
    }
    let sends = encoded.iter().map(|bytes| {
        producer.send(
            FutureRecord::to(&topic).key("acme").payload(bytes),
            Duration::from_secs(30),
        )
    });
    for sent in futures::future::join_all(sends).await {
        sent.map_err(|(e, _)| e)?;
    }
    Ok(())
}

/// How many records each key (message id) has on the logical `topic` (read_committed).
async fn key_counts(kafka: &KafkaSettings, topic: &str) -> anyhow::Result<HashMap<String, usize>> {
    use rdkafka::Message;
    let mut counts = HashMap::new();
    for message in read_all(kafka, topic).await? {
        let key = String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned();
        *counts.entry(key).or_insert(0) += 1;
    }
    Ok(counts)
}

/// The keys with more than one record, with their counts (a few, sorted).
fn repeated(counts: &HashMap<String, usize>) -> Vec<(String, usize)> {
    let mut twice: Vec<(String, usize)> = counts
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(k, n)| (k.clone(), *n))
        .collect();
    twice.sort();
    twice
}

/// Ids of `ids` missing from `counts` (a few, sorted) and how many.
fn missing(ids: &HashSet<String>, counts: &HashMap<String, usize>) -> (usize, Vec<String>) {
    let mut absent: Vec<String> = ids
        .iter()
        .filter(|id| !counts.contains_key(*id))
        .cloned()
        .collect();
    absent.sort();
    let n = absent.len();
    absent.truncate(5);
    (n, absent)
}

/// Wait until every id has a final report; the final reports per message id then.
async fn wait_for_finals(
    kafka: &KafkaSettings,
    ids: &HashSet<String>,
    deadline: Instant,
) -> anyhow::Result<HashMap<String, usize>> {
    loop {
        let counts = key_counts(kafka, "reports.final").await?;
        let (absent, examples) = missing(ids, &counts);
        if absent == 0 {
            return Ok(counts);
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{absent} of {} messages have no final report, e.g. {examples:?}",
            ids.len()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Webhooks per message id.
fn webhook_counts(inbox: &Inbox) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for webhook in inbox.all() {
        if let Some(body) = webhook.body {
            *counts.entry(body.message_id).or_insert(0) += 1;
        }
    }
    counts
}

/// Wait until every id has a webhook, then a moment more for any duplicate to show up.
async fn wait_for_webhooks(
    inbox: &Inbox,
    ids: &HashSet<String>,
    deadline: Instant,
) -> anyhow::Result<HashMap<String, usize>> {
    loop {
        let (absent, examples) = missing(ids, &webhook_counts(inbox));
        if absent == 0 {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{absent} of {} messages have no webhook, e.g. {examples:?}",
            ids.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    Ok(webhook_counts(inbox))
}

/// Every webhook verifies and reports delivery.
fn check_webhooks_verified(inbox: &Inbox) -> anyhow::Result<()> {
    for webhook in inbox.all() {
        anyhow::ensure!(
            webhook.signature_valid,
            "a webhook signature does not verify"
        );
        let body = webhook
            .body
            .ok_or_else(|| anyhow::anyhow!("a webhook body is unreadable"))?;
        anyhow::ensure!(
            body.status == "delivered",
            "{} reported {}",
            body.message_id,
            body.status
        );
    }
    Ok(())
}

/// Exactly one final report and one webhook per id; no id twice in a transactional topic, and
/// every id in messages.validated and messages.routed.
async fn check_exactly_once(
    kafka: &KafkaSettings,
    ids: &HashSet<String>,
    finals: &HashMap<String, usize>,
    webhooks: &HashMap<String, usize>,
) -> anyhow::Result<()> {
    let final_twice = repeated(finals);
    anyhow::ensure!(
        final_twice.is_empty(),
        "{} messages have more than one final report: {:?}",
        final_twice.len(),
        &final_twice[..final_twice.len().min(5)]
    );
    let webhook_twice: Vec<(String, usize)> = repeated(webhooks)
        .into_iter()
        .filter(|(id, _)| ids.contains(id))
        .collect();
    anyhow::ensure!(
        webhook_twice.is_empty(),
        "{} messages have more than one webhook: {:?}",
        webhook_twice.len(),
        &webhook_twice[..webhook_twice.len().min(5)]
    );
    for topic in ["messages.validated", "messages.routed"] {
        let counts = key_counts(kafka, topic).await?;
        let twice = repeated(&counts);
        anyhow::ensure!(
            twice.is_empty(),
            "{topic} holds {} message ids more than once: {:?}",
            twice.len(),
            &twice[..twice.len().min(5)]
        );
        let (absent, examples) = missing(ids, &counts);
        anyhow::ensure!(
            absent == 0,
            "{topic} lacks {absent} messages, e.g. {examples:?}"
        );
    }
    Ok(())
}

/// Wait until the logical `topic` holds at least `count` records.
async fn wait_for_records(
    kafka: &KafkaSettings,
    topic: &str,
    count: usize,
    timeout: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let seen = read_all(kafka, topic).await?.len();
        if seen >= count {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{topic} holds {seen} of {count} records after {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A client posting batches to the ingress until stopped, keeping the ids it got 202 for.
#[derive(Debug)]
struct Load {
    stop: CancellationToken,
    accepted: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<LoadReport>,
}

/// What a load run did.
#[derive(Debug, Default)]
struct LoadReport {
    accepted: Vec<String>,
    posts: usize,
    failed_posts: usize,
    first_failure: Option<String>,
}

impl Load {
    /// POST `batch` messages every `every` to `url` (each POST waiting at most `timeout`).
    fn start(
        url: String,
        tag: &'static str,
        batch: usize,
        every: Duration,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        let http = http_client(timeout)?;
        let stop = CancellationToken::new();
        let accepted = Arc::new(AtomicUsize::new(0));
        let (stop2, accepted2) = (stop.clone(), accepted.clone());
        let task = tokio::spawn(async move {
            let mut report = LoadReport::default();
            let mut next = 0;
            while !stop2.is_cancelled() {
                report.posts += 1;
                match post_batch(&http, &url, tag, next, batch).await {
                    Ok(ids) => {
                        report.accepted.extend(ids);
                        accepted2.store(report.accepted.len(), Ordering::SeqCst);
                    }
                    Err(e) => {
                        report.failed_posts += 1;
                        report.first_failure.get_or_insert_with(|| format!("{e:#}"));
                    }
                }
                next += batch;
                tokio::select! {
                    _ = stop2.cancelled() => {}
                    _ = tokio::time::sleep(every) => {}
                }
            }
            report
        });
        Ok(Load {
            stop,
            accepted,
            task,
        })
    }

    /// Messages accepted so far.
    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Wait until `count` messages were accepted in all.
    async fn wait_accepted(&self, count: usize, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        while self.accepted() < count {
            anyhow::ensure!(
                Instant::now() < deadline && !self.task.is_finished(),
                "{} of {count} messages accepted after {timeout:?}",
                self.accepted()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(())
    }

    /// Stop posting; what was accepted.
    async fn finish(self) -> anyhow::Result<LoadReport> {
        self.stop.cancel();
        Ok(self.task.await?)
    }
}

async fn wait_for_webhook_count(
    inbox: &Inbox,
    count: usize,
    timeout: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    while inbox.len() < count {
        anyhow::ensure!(
            Instant::now() < deadline,
            "{} of {count} webhooks after {timeout:?}",
            inbox.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// Clients posting back to back to `url` (`workers` at once, `batch` messages a POST) until their
/// first failure: what the ingress acknowledged and how many POSTs failed. Some POST is always
/// in flight, so a SIGTERM lands on one.
fn start_burst(
    url: String,
    workers: usize,
    batch: usize,
    acknowledged: Arc<AtomicUsize>,
) -> anyhow::Result<tokio::task::JoinHandle<(Vec<String>, usize)>> {
    let http = http_client(Duration::from_secs(20))?;
    Ok(tokio::spawn(async move {
        let posts = (0..workers).map(|worker| {
            let (http, url, acknowledged) = (http.clone(), url.clone(), acknowledged.clone());
            async move {
                let mut ids = Vec::new();
                for post in 0..200 {
                    let from = (worker * 200 + post) * batch;
                    match post_batch(&http, &url, "burst", from, batch).await {
                        Ok(got) => {
                            acknowledged.fetch_add(got.len(), Ordering::SeqCst);
                            ids.extend(got);
                        }
                        Err(_) => return (ids, 1),
                    }
                }
                (ids, 0)
            }
        });
        let mut all = Vec::new();
        let mut failed = 0;
        for (ids, failures) in futures::future::join_all(posts).await {
            all.extend(ids);
            failed += failures;
        }
        (all, failed)
    }))
}

/// One POST of one message whose body arrives slowly: the headers and half the body now, the
/// rest after `pause`. The status the ingress answered with and the ids it gave, or why there
/// was no answer.
async fn slow_post(port: u16, pause: Duration) -> Result<(u16, Vec<String>), String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let body = json!({"messages": [{
        "channel": "sms",
        "to": "01010000000",
        "text": "slow",
        "client_message_id": "slow-1",
    }]})
    .to_string();
    let (head, tail) = body.split_at(body.len() / 2);
    let request = format!(
        "POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer \
         {API_KEY}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: \
         close\r\n\r\n{head}",
        body.len()
    );
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| format!("connect: {e}"))?;
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("sending the head: {e}"))?;
    tokio::time::sleep(pause).await;
    stream
        .write_all(tail.as_bytes())
        .await
        .map_err(|e| format!("sending the rest of the body: {e}"))?;
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .await
        .map_err(|e| format!("reading the answer: {e}"))?;
    let response = String::from_utf8_lossy(&response);
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("no answer (connection closed): {response:?}"))?;
    let answer: Value = response
        .split_once("\r\n\r\n")
        .and_then(|(_, body)| serde_json::from_str(body).ok())
        .unwrap_or_default();
    let ids = answer["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["message_id"].as_str().map(String::from))
        .collect();
    Ok((status, ids))
}

/// Submit `chunks` chunks of 100 messages, HTTP and direct in turn, a little apart.
async fn submit_mixed(
    url: String,
    runtime: Runtime,
    tag: &'static str,
    chunks: usize,
) -> anyhow::Result<Vec<String>> {
    let http = http_client(Duration::from_secs(30))?;
    let mut ids = Vec::new();
    for chunk in 0..chunks {
        let from = chunk * 100;
        if chunk % 2 == 0 {
            ids.extend(post_batch(&http, &url, tag, from, 100).await?);
        } else {
            let direct: Vec<String> = (from..from + 100)
                .map(|i| format!("{tag}-direct-{i}-{}", uuid::Uuid::new_v4().simple()))
                .collect();
            produce_direct(&runtime, &direct, from).await?;
            ids.extend(direct);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(ids)
}

/// These tests run many processes each: one at a time, so 2 cores give each its timing.
static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_validate_and_two_route_processes_survive_a_kill_9_of_one_each() -> anyhow::Result<()> {
    let _one_at_a_time = HEAVY.lock().await;
    switchyard_tests::init_logging();
    let began = Instant::now();
    let env = TestEnv::new()?;
    let logs = log_dir("two_instances", &env);
    let pipeline = Pipeline::start_on(env, &[Role::Validate, Role::Route], fast_carrier()).await?;
    let kafka = pipeline.stack.runtime.kafka.clone();
    let connection = Connection::new(&pipeline.stack.env, &pipeline.stack.registry.url());
    let mut validates = [
        RoleProcess::spawn(&connection, "validate", "validate-a", &[], &logs)?,
        RoleProcess::spawn(&connection, "validate", "validate-b", &[], &logs)?,
    ];
    let mut routes = [
        RoleProcess::spawn(&connection, "route", "route-a", &[], &logs)?,
        RoleProcess::spawn(&connection, "route", "route-b", &[], &logs)?,
    ];
    for process in validates.iter_mut().chain(routes.iter_mut()) {
        process.wait_ready(None, Duration::from_secs(60)).await?;
    }

    // 2,000 messages, half over HTTP and half straight to the topic, over a few seconds.
    let submitter = tokio::spawn(submit_mixed(
        pipeline.ingress_url.clone(),
        pipeline.stack.runtime.clone(),
        "twin",
        20,
    ));
    wait_for_records(&kafka, "messages.routed", 600, Duration::from_secs(60)).await?;
    validates[0].kill9()?;
    routes[0].kill9()?;
    let killed_at = Instant::now();
    let ids: HashSet<String> = submitter.await??.into_iter().collect();
    assert_eq!(ids.len(), 2000, "2,000 distinct messages submitted");

    // The survivors take the killed instances' partitions after the session timeout (6 s);
    // the killed transactions hold read_committed readers back until they time out (10 s).
    let finals = wait_for_finals(&kafka, &ids, killed_at + Duration::from_secs(60)).await?;
    let took_over_in = killed_at.elapsed();
    let webhooks = wait_for_webhooks(
        &pipeline.inbox,
        &ids,
        Instant::now() + Duration::from_secs(30),
    )
    .await?;
    check_exactly_once(&kafka, &ids, &finals, &webhooks).await?;
    assert_eq!(finals.len(), 2000, "no final report for an unknown message");
    check_webhooks_verified(&pipeline.inbox)?;
    for survivor in [&mut validates[1], &mut routes[1]] {
        assert!(
            survivor.is_running(),
            "{} {} is still running:\n{}",
            survivor.role,
            survivor.instance_id,
            survivor.log_tail(20)
        );
    }
    eprintln!(
        "two instances: all 2,000 final reports {:.1} s after the kill; test {:.1} s; logs {}",
        took_over_in.as_secs_f64(),
        began.elapsed().as_secs_f64(),
        logs.display()
    );
    pipeline.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rolling_sigterm_restart_of_every_role_under_load_loses_and_repeats_nothing()
-> anyhow::Result<()> {
    let _one_at_a_time = HEAVY.lock().await;
    switchyard_tests::init_logging();
    let began = Instant::now();
    let env = TestEnv::new()?;
    let logs = log_dir("rolling", &env);
    let stack = Stack::on(env, &[]).await?;
    let kafka = stack.runtime.kafka.clone();
    let shutdown = CancellationToken::new();
    let sim = simulator::serve("127.0.0.1:0".parse()?, fast_carrier(), shutdown.clone()).await?;
    let (inbox_addr, inbox) = switchyard_callback::receiver::serve(
        "127.0.0.1:0".parse()?,
        SECRET,
        false,
        shutdown.clone(),
    )
    .await?;
    let config = pipeline::config(
        &format!("http://{sim}/submit"),
        &format!("http://{inbox_addr}/webhooks/switchyard"),
    );
    switchyard_config::apply(&stack.runtime, &config, false, 1).await?;
    let history = tempfile::tempdir()?;
    let history_path = history.path().join("history.db").display().to_string();
    let (ingress_port, receipts_port) = (free_port(), free_port());
    let connection = Connection::new(&stack.env, &stack.registry.url());
    let roles: Vec<(&str, Vec<String>, Option<u16>)> = vec![
        (
            "history",
            vec!["--history".into(), history_path.clone()],
            None,
        ),
        ("validate", vec![], None),
        ("route", vec![], None),
        (
            "dispatch",
            vec!["--receipts".into(), format!("127.0.0.1:{receipts_port}")],
            Some(receipts_port),
        ),
        ("report", vec![], None),
        (
            "callback",
            vec![
                "--callback-minute-ms".into(),
                "1000".into(),
                "--webhook-mode".into(),
                "dev".into(),
            ],
            None,
        ),
        (
            "ingress",
            vec![
                "--ingress".into(),
                format!("127.0.0.1:{ingress_port}"),
                "--history".into(),
                history_path,
            ],
            Some(ingress_port),
        ),
    ];
    let mut processes = Vec::new();
    for (role, args, port) in &roles {
        processes.push((
            RoleProcess::spawn(&connection, role, &format!("{role}-1"), args, &logs)?,
            *port,
        ));
    }
    for (process, port) in &mut processes {
        process.wait_ready(*port, Duration::from_secs(60)).await?;
    }

    let load = Load::start(
        format!("http://127.0.0.1:{ingress_port}"),
        "roll",
        10,
        Duration::from_millis(100),
        Duration::from_secs(20),
    )?;
    wait_for_webhook_count(&inbox, 50, Duration::from_secs(60)).await?;

    // One role at a time: SIGTERM, wait for it to finish, start it again, wait until it is up.
    let mut restarts = Vec::new();
    let mut burst_ids = Vec::new();
    let mut burst_failed = 0;
    let mut slow_outcome = Err("not sent".to_string());
    for (process, port) in &mut processes {
        // The ingress is stopped with POSTs in flight: SIGTERM must let them finish.
        let burst = if process.role == "ingress" {
            let acknowledged = Arc::new(AtomicUsize::new(0));
            let burst = start_burst(
                format!("http://127.0.0.1:{ingress_port}"),
                3,
                300,
                acknowledged.clone(),
            )?;
            let deadline = Instant::now() + Duration::from_secs(10);
            while acknowledged.load(Ordering::SeqCst) < 300 && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Some(burst)
        } else {
            None
        };
        // ... and with a request whose body is still arriving.
        let slow = if process.role == "ingress" {
            let slow = tokio::spawn(slow_post(ingress_port, Duration::from_secs(1)));
            tokio::time::sleep(Duration::from_millis(200)).await;
            Some(slow)
        } else {
            None
        };
        let restart_began = Instant::now();
        let status = process.terminate(Duration::from_secs(30)).await?;
        let old_log = process.log();
        anyhow::ensure!(
            status.success(),
            "{} exited with {status} after SIGTERM:\n{}",
            process.role,
            process.log_tail(30)
        );
        anyhow::ensure!(
            !old_log.contains(" did not stop within "),
            "{} did not finish within its grace period: {}",
            process.role,
            process.log_path().display()
        );
        process.start_again()?;
        process.wait_ready(*port, Duration::from_secs(60)).await?;
        if let Some(burst) = burst {
            let (ids, failed) = burst.await?;
            burst_ids.extend(ids);
            burst_failed += failed;
        }
        if let Some(slow) = slow {
            slow_outcome = slow.await?;
            if let Ok((_, ids)) = &slow_outcome {
                burst_ids.extend(ids.iter().cloned());
            }
        }
        restarts.push(format!(
            "{} {:.1} s",
            process.role,
            restart_began.elapsed().as_secs_f64()
        ));
    }
    // Some load through the restarted ingress, then stop.
    let after = load.accepted() + 100;
    load.wait_accepted(after, Duration::from_secs(30)).await?;
    let report = load.finish().await?;
    let ids: HashSet<String> = report.accepted.iter().chain(&burst_ids).cloned().collect();
    anyhow::ensure!(
        ids.len() == report.accepted.len() + burst_ids.len(),
        "the ingress gave an id twice"
    );

    let finals = wait_for_finals(&kafka, &ids, Instant::now() + Duration::from_secs(60)).await?;
    let webhooks =
        wait_for_webhooks(&inbox, &ids, Instant::now() + Duration::from_secs(30)).await?;
    check_exactly_once(&kafka, &ids, &finals, &webhooks).await?;
    check_webhooks_verified(&inbox)?;
    let unknown = finals.keys().filter(|id| !ids.contains(*id)).count();
    eprintln!(
        "rolling restart: {} messages accepted in {} POSTs ({} failed, first: {:?}) and {} in \
         a burst of POSTs across the ingress's SIGTERM ({burst_failed} POSTs failed); a POST \
         begun before that SIGTERM and finished after it: {slow_outcome:?}; {unknown} final \
         reports for messages whose POST failed; restarts: {}; test {:.1} s; \
         logs {}",
        report.accepted.len(),
        report.posts,
        report.failed_posts,
        report.first_failure,
        burst_ids.len(),
        restarts.join(", "),
        began.elapsed().as_secs_f64(),
        logs.display()
    );
    for (mut process, _) in processes {
        process.terminate(Duration::from_secs(30)).await?;
    }
    shutdown.cancel();
    // A POST either gets its 202 or its messages are not taken: a SIGTERM'd ingress answers
    // the requests it is working on before it exits.
    let mut graceless = Vec::new();
    if unknown > 0 {
        graceless.push(format!(
            "{unknown} messages went through the pipeline although their POST failed"
        ));
    }
    if !matches!(slow_outcome, Ok((202, _))) {
        graceless.push(format!(
            "a POST begun before the SIGTERM got {slow_outcome:?} instead of 202"
        ));
    }
    anyhow::ensure!(
        graceless.is_empty(),
        "the ingress exited on SIGTERM without finishing the requests in flight: {}",
        graceless.join("; ")
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_pipeline_resumes_by_itself_after_a_broker_crash() -> anyhow::Result<()> {
    let _one_at_a_time = HEAVY.lock().await;
    switchyard_tests::init_logging();
    let began = Instant::now();
    let broker = Broker::start()?;
    let pipeline = Pipeline::start_on(broker.env(), &[], fast_carrier()).await?;
    let kafka = pipeline.stack.runtime.kafka.clone();
    // A POST in flight during the crash waits for the broker to come back.
    let load = Load::start(
        pipeline.ingress_url.clone(),
        "crash",
        20,
        Duration::from_millis(100),
        Duration::from_secs(60),
    )?;
    wait_for_webhook_count(&pipeline.inbox, 100, Duration::from_secs(60)).await?;

    let accepted_at_crash = load.accepted();
    let crashed_at = Instant::now();
    tokio::task::block_in_place(|| broker.kill9())?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let starting_at = Instant::now();
    tokio::task::block_in_place(|| broker.start_again())?;
    let restarted_at = Instant::now();
    let accepted_at_restart = load.accepted();
    load.wait_accepted(accepted_at_restart + 200, Duration::from_secs(60))
        .await?;
    let more_accepted_in = restarted_at.elapsed();
    let report = load.finish().await?;
    let ids: HashSet<String> = report.accepted.iter().cloned().collect();

    let finals = wait_for_finals(&kafka, &ids, Instant::now() + Duration::from_secs(60)).await?;
    let resumed_in = restarted_at.elapsed();
    let webhooks = wait_for_webhooks(
        &pipeline.inbox,
        &ids,
        Instant::now() + Duration::from_secs(30),
    )
    .await?;
    // Exactly one final report per acknowledged message; the transactional topics hold no
    // message twice even across the crash. Webhooks and the other topics may repeat.
    let final_twice = repeated(&finals);
    anyhow::ensure!(
        final_twice.is_empty(),
        "{} messages have more than one final report: {:?}",
        final_twice.len(),
        &final_twice[..final_twice.len().min(5)]
    );
    let mut transactional = Vec::new();
    for topic in TRANSACTIONAL {
        let counts = key_counts(&kafka, topic).await?;
        let (absent, _) = missing(&ids, &counts);
        transactional.push((topic, repeated(&counts).len(), absent));
    }
    let mut other = Vec::new();
    for topic in ["messages.dispatched", "messages.reports"] {
        other.push((topic, repeated(&key_counts(&kafka, topic).await?).len()));
    }
    let webhook_twice = repeated(&webhooks).len();
    eprintln!(
        "broker crash: {} messages acknowledged ({accepted_at_crash} before the crash, \
         {accepted_at_restart} by the restart), {} POSTs failed (first: {:?}); crash at \
         {:.1} s, broker up again in {:.1} s, 200 more accepted {:.1} s after that, all final \
         reports {:.1} s after the restart; repeated ids: transactional (topic, repeated, \
         missing) {transactional:?}, others {other:?}, webhooks {webhook_twice}; test {:.1} s",
        ids.len(),
        report.failed_posts,
        report.first_failure,
        crashed_at.duration_since(began).as_secs_f64(),
        restarted_at.duration_since(starting_at).as_secs_f64(),
        more_accepted_in.as_secs_f64(),
        resumed_in.as_secs_f64(),
        began.elapsed().as_secs_f64()
    );
    for (topic, twice, absent) in &transactional {
        assert_eq!(*twice, 0, "{topic} holds a message id twice");
        assert_eq!(*absent, 0, "{topic} lacks acknowledged messages");
    }
    check_webhooks_verified(&pipeline.inbox)?;
    pipeline.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stage_started_while_the_broker_is_down_waits_then_works() -> anyhow::Result<()> {
    let _one_at_a_time = HEAVY.lock().await;
    switchyard_tests::init_logging();
    let began = Instant::now();
    // A broker with the topics and the config, then down: nothing listens on its port.
    let broker = Broker::start()?;
    let env = broker.env();
    let logs = log_dir("broker_down", &env);
    let stack = Stack::on(env.clone(), &[]).await?;
    let config = pipeline::config("http://127.0.0.1:9/submit", "http://127.0.0.1:9/webhooks");
    switchyard_config::apply(&stack.runtime, &config, false, 1).await?;
    tokio::task::block_in_place(|| broker.kill9())?;
    anyhow::ensure!(
        std::net::TcpStream::connect(("127.0.0.1", broker.port)).is_err(),
        "the broker port still answers"
    );

    let connection = Connection::new(&env, &stack.registry.url());
    let mut validate = RoleProcess::spawn(&connection, "validate", "validate-early", &[], &logs)?;
    let spawned_at = Instant::now();
    // Longer than a client's 10 s metadata timeout: a stage that gives up has exited by then.
    let watch_until = spawned_at + Duration::from_secs(12);
    while Instant::now() < watch_until {
        if !validate.is_running() {
            let status = validate.exit_status();
            anyhow::bail!(
                "validate exited ({status:?}) {:.1} s after it started while the broker was \
                 down, instead of waiting for it; log {}:\n{}",
                spawned_at.elapsed().as_secs_f64(),
                validate.log_path().display(),
                validate.log_tail(30)
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let log_while_down = validate.log();

    tokio::task::block_in_place(|| broker.start_again())?;
    let started_at = Instant::now();
    let ids: Vec<String> = (0..50)
        .map(|i| format!("early-{i}-{}", uuid::Uuid::new_v4().simple()))
        .collect();
    produce_direct(&stack.runtime, &ids, 0).await?;
    let validated = read_topic(
        &stack.runtime.kafka,
        "messages.validated",
        ids.len(),
        Duration::from_secs(60),
    )
    .await?;
    let got: HashSet<String> = validated
        .iter()
        .map(|m| {
            use rdkafka::Message;
            String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned()
        })
        .collect();
    let expected: HashSet<String> = ids.iter().cloned().collect();
    anyhow::ensure!(
        got == expected,
        "validated {} of {} messages once the broker was up:\n{}",
        got.intersection(&expected).count(),
        ids.len(),
        validate.log_tail(30)
    );
    assert!(validate.is_running(), "validate still runs");
    assert!(
        log_while_down.contains("brokers not reachable; retrying"),
        "validate says it is retrying while the broker is down:\n{log_while_down}"
    );
    eprintln!(
        "broker down at start: validated {} messages {:.1} s after the broker started; test \
         {:.1} s; logs {}",
        ids.len(),
        started_at.elapsed().as_secs_f64(),
        began.elapsed().as_secs_f64(),
        logs.display()
    );
    validate.terminate(Duration::from_secs(30)).await?;
    Ok(())
}
