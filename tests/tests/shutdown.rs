//! Stopping is bounded and leaves nothing behind (issue 19), with `switchyard` processes on the
//! real broker:
//! - `switchyard up` under load, SIGTERM, its broker killed -9 two seconds later: the process
//!   exits within `--shutdown-timeout-seconds` (5 s here) and logs each role that did not stop
//!   and what that leaves; with the broker back and the process started again, every message
//!   accepted before the SIGTERM — some unfinished at the kill — gets exactly one final report.
//! - `switchyard run validate` with its broker already gone: SIGTERM ends it within the bound.
//! - `switchyard up` and `switchyard sim smsc` leave no child process behind: after a SIGTERM,
//!   and after a role failed. `node` is a shim here that starts the real node as its own child,
//!   as version managers' shims do, so killing only the direct child would leave the simulator
//!   running (and holding its port).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::Message;
use switchyard_runtime::{CancellationToken, KafkaSettings};
use switchyard_tests::pipeline::{self, SECRET, post_batch};
use switchyard_tests::processes::{Connection, RoleProcess, process_alive, process_command_line};
use switchyard_tests::{Broker, TestEnv, apply_topics, free_port, read_all};
use tokio::time::Instant;

/// The bound the tests set (`--shutdown-timeout-seconds`).
const BOUND: Duration = Duration::from_secs(5);
/// What the process may take beyond the bound to exit: the watchdog's own exit.
const MARGIN: Duration = Duration::from_secs(3);

/// The senders' receipt deadline in the test config.
const RECEIPT_DEADLINE: Duration = Duration::from_secs(10);

/// These tests run many processes each: one at a time, so 2 cores give each its timing.
static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Where a test's processes log (kept after the run, for evidence).
fn log_dir(test: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("shutdown")
        .join(format!(
            "{test}-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        ))
}

/// The ports and files of one `switchyard up`.
struct Up {
    registry: u16,
    sim: u16,
    inbox: u16,
    ingress: u16,
    receipts: u16,
    smsc: u16,
    dir: tempfile::TempDir,
}

impl Up {
    fn new() -> anyhow::Result<Self> {
        Ok(Up {
            registry: free_port(),
            sim: free_port(),
            inbox: free_port(),
            ingress: free_port(),
            receipts: free_port(),
            smsc: free_port(),
            dir: tempfile::tempdir()?,
        })
    }

    fn connection(&self, env: &TestEnv) -> Connection {
        Connection::new(env, &format!("http://127.0.0.1:{}", self.registry))
    }

    /// `up …` with every listener on this test's ports, the history in its directory and,
    /// if `with_config`, the test config pointing at up's own carrier simulator and inbox.
    fn command(&self, with_config: bool) -> anyhow::Result<Vec<String>> {
        let addr = |port: u16| format!("127.0.0.1:{port}");
        let mut command: Vec<String> = vec![
            "up".into(),
            "--registry".into(),
            addr(self.registry),
            "--sim".into(),
            addr(self.sim),
            "--inbox".into(),
            addr(self.inbox),
            "--inbox-secret".into(),
            SECRET.into(),
            "--ingress".into(),
            addr(self.ingress),
            "--receipts".into(),
            addr(self.receipts),
            "--smsc-port".into(),
            self.smsc.to_string(),
            "--history".into(),
            self.dir.path().join("history.db").display().to_string(),
            "--callback-minute-ms".into(),
            "100".into(),
        ];
        if with_config {
            let config = self.dir.path().join("config.toml");
            // The carrier simulator runs inside `up`: receipts it still owed when the process
            // went are lost, so the messages they were for end at their senders' receipt
            // deadline (unknown outcome, decision 0020) — 10 s here, not the default days.
            let sim_url = format!("http://127.0.0.1:{}/submit", self.sim);
            let text = pipeline::config(
                &sim_url,
                &format!("http://127.0.0.1:{}/webhooks/switchyard", self.inbox),
            )
            .replace(
                &format!("endpoint = \"{sim_url}\"\n"),
                &format!(
                    "endpoint = \"{sim_url}\"\nsettings = {{ receipt_deadline_seconds = {} }}\n",
                    RECEIPT_DEADLINE.as_secs()
                ),
            );
            anyhow::ensure!(text.matches("receipt_deadline_seconds").count() == 3);
            std::fs::write(&config, text)?;
            command.extend(["--config".into(), config.display().to_string()]);
        }
        Ok(command)
    }

    fn ingress_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.ingress)
    }
}

/// `--shutdown-timeout-seconds <BOUND>`.
fn bounded() -> Vec<String> {
    vec![
        "--shutdown-timeout-seconds".into(),
        BOUND.as_secs().to_string(),
    ]
}

/// Wait until `up` (with the test config) says it is up, its ingress accepts connections and
/// dispatch started the config's three senders (a SIGTERM before that stops dispatch while it
/// still reads its tables, which it reports as a failure).
async fn wait_up(up: &mut RoleProcess, ingress: u16, timeout: Duration) -> anyhow::Result<()> {
    up.wait_for_log("switchyard is up", 1, timeout).await?;
    up.wait_ready(Some(ingress), timeout).await?;
    up.wait_for_log("sender started", 3, timeout).await
}

/// How many records each key (message id) has on the logical `topic` (read_committed).
async fn key_counts(kafka: &KafkaSettings, topic: &str) -> anyhow::Result<HashMap<String, usize>> {
    let mut counts = HashMap::new();
    for message in read_all(kafka, topic).await? {
        let key = String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned();
        *counts.entry(key).or_insert(0) += 1;
    }
    Ok(counts)
}

/// Wait until every id has a final report; the final reports per message id then.
async fn wait_for_finals(
    kafka: &KafkaSettings,
    ids: &HashSet<String>,
    deadline: Instant,
) -> anyhow::Result<HashMap<String, usize>> {
    loop {
        let counts = key_counts(kafka, "reports.final").await?;
        let absent = ids.iter().filter(|id| !counts.contains_key(*id)).count();
        if absent == 0 {
            return Ok(counts);
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{absent} of {} messages have no final report",
            ids.len()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The ids of `ids` with more than one record in `counts` (a few) and how many.
fn repeated(ids: &HashSet<String>, counts: &HashMap<String, usize>) -> (usize, Vec<String>) {
    let mut twice: Vec<String> = ids
        .iter()
        .filter(|id| counts.get(*id).copied().unwrap_or(0) > 1)
        .cloned()
        .collect();
    twice.sort();
    let n = twice.len();
    twice.truncate(5);
    (n, twice)
}

/// POST batches of `batch` back to back until stopped or a POST fails; the ids answered 202.
fn start_load(
    url: String,
    batch: usize,
    stop: CancellationToken,
    accepted: Arc<std::sync::Mutex<Vec<String>>>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    Ok(tokio::spawn(async move {
        let mut from = 0;
        while !stop.is_cancelled() {
            match post_batch(&http, &url, "bound", from, batch).await {
                Ok(ids) => accepted
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .extend(ids),
                Err(_) => break,
            }
            from += batch;
        }
    }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_with_the_broker_killed_exits_within_the_bound_and_nothing_accepted_is_lost()
-> anyhow::Result<()> {
    let _one_at_a_time = HEAVY.lock().await;
    switchyard_tests::init_logging();
    let broker = Broker::start()?;
    let env = broker.env();
    apply_topics(&env, &[]).await?;
    let kafka = env.kafka();
    let ports = Up::new()?;
    let logs = log_dir("broker_killed");
    let mut up = RoleProcess::spawn_command(
        &ports.connection(&env),
        "up",
        "up-bounded",
        &bounded(),
        &ports.command(true)?,
        &[],
        &logs,
    )?;
    let _children = KillDescendants(up.pid());
    wait_up(&mut up, ports.ingress, Duration::from_secs(90)).await?;

    // Ready end to end: a first batch has its final reports.
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let warm: HashSet<String> = post_batch(&http, &ports.ingress_url(), "warm", 0, 10)
        .await?
        .into_iter()
        .collect();
    wait_for_finals(&kafka, &warm, Instant::now() + Duration::from_secs(60)).await?;

    // Under load: SIGTERM, and the broker killed 2 s later, while roles finish their batches.
    let stop_load = CancellationToken::new();
    let accepted = Arc::new(std::sync::Mutex::new(Vec::new()));
    let load = start_load(ports.ingress_url(), 50, stop_load.clone(), accepted.clone())?;
    let loaded_until = Instant::now() + Duration::from_secs(10);
    while accepted.lock().map(|a| a.len()).unwrap_or(0) < 500 && Instant::now() < loaded_until {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    up.signal("TERM")?;
    let signalled = Instant::now();
    tokio::time::sleep_until(signalled + Duration::from_secs(2)).await;
    tokio::task::block_in_place(|| broker.kill9())?;
    let killed_after = signalled.elapsed();
    let status = up.wait_exit_until(signalled + BOUND + MARGIN).await?;
    let exited_after = signalled.elapsed();
    stop_load.cancel();
    let _ = load.await;
    let log = up.log();
    let first_status = status.map(|s| s.to_string()).unwrap_or_default();
    let Some(status) = status else {
        kill_all(&mut up);
        anyhow::bail!(
            "switchyard up still ran {:.1} s after SIGTERM (bound {BOUND:?}, broker killed \
             {:.1} s after the signal); log {}:\n{}",
            exited_after.as_secs_f64(),
            killed_after.as_secs_f64(),
            up.log_path().display(),
            log.lines().rev().take(30).collect::<Vec<_>>().join("\n")
        );
    };
    // Roles still stopping when the broker died are stuck in calls that wait for it: the log
    // names each with what it leaves (a stage: "its uncommitted batch will be consumed again
    // after the restart"; the ingress: requests in flight get no answer) and the status is 2.
    // (Roles that had all stopped by then, or whose calls failed at once on the dead broker,
    // exit 0, every stage stopped — or 2 if the rest of the process then ran out the bound.)
    let overdue = log.contains(&format!("did not stop within {} s", BOUND.as_secs()));
    match status.code() {
        Some(2) => anyhow::ensure!(
            (overdue && log.contains("leaving without waiting for the roles that did not stop"))
                || log.contains("every role stopped, but the process did not finish"),
            "exit status 2 but the log says neither which roles did not stop nor that all did; {}",
            up.log_path().display()
        ),
        Some(0) => anyhow::ensure!(
            !overdue
                && log.matches("stage started").count() == log.matches("stage stopped").count(),
            "exit status 0 but not every stage stopped; {}",
            up.log_path().display()
        ),
        _ => anyhow::bail!("exit status {status}; {}", up.log_path().display()),
    }
    let ids: HashSet<String> = accepted
        .lock()
        .map(|a| a.iter().cloned().collect())
        .unwrap_or_default();
    anyhow::ensure!(!ids.is_empty(), "no message accepted under load");

    // The broker back: what was not finished before the kill has no final report yet.
    tokio::task::block_in_place(|| broker.start_again())?;
    let before = key_counts(&kafka, "reports.final").await?;
    let unfinished = ids.iter().filter(|id| !before.contains_key(*id)).count();
    anyhow::ensure!(
        unfinished > 0,
        "all {} accepted messages had finished before the kill: nothing to show",
        ids.len()
    );
    // Started again, the process consumes it again: exactly one final report each.
    up.start_again()?;
    let _children_again = KillDescendants(up.pid());
    wait_up(&mut up, ports.ingress, Duration::from_secs(90)).await?;
    let finals = wait_for_finals(&kafka, &ids, Instant::now() + Duration::from_secs(120)).await?;
    let (twice, examples) = repeated(&ids, &finals);
    anyhow::ensure!(
        twice == 0,
        "{twice} messages have more than one final report, e.g. {examples:?}"
    );
    for topic in ["messages.validated", "messages.routed"] {
        let (twice, examples) = repeated(&ids, &key_counts(&kafka, topic).await?);
        anyhow::ensure!(
            twice == 0,
            "{topic} holds {twice} messages twice, e.g. {examples:?}"
        );
    }
    // A stop with the broker up is clean.
    let stopping = Instant::now();
    let status = up.terminate(BOUND + MARGIN).await?;
    let clean_after = stopping.elapsed();
    anyhow::ensure!(
        status.success() && !up.log().contains("did not stop within"),
        "a stop with the broker up: {status}; {}",
        up.log_path().display()
    );
    eprintln!(
        "broker killed {:.1} s after SIGTERM: up exited ({first_status}) {:.1} s after the \
         signal (bound {} s){}; {} messages accepted, {unfinished} without a final report at \
         the kill, all with exactly one after the restart; a clean stop took {:.1} s; logs {}",
        killed_after.as_secs_f64(),
        exited_after.as_secs_f64(),
        BOUND.as_secs(),
        if overdue {
            ", naming the roles that did not stop"
        } else {
            ", every role stopped"
        },
        ids.len(),
        clean_after.as_secs_f64(),
        logs.display(),
    );
    Ok(())
}

/// Produce submissions straight to `messages.accepted`, `batch` at a time, until stopped;
/// failures (the broker gone) are ignored.
fn start_direct_load(
    runtime: switchyard_runtime::Runtime,
    batch: usize,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let Ok(producer) = runtime.producer() else {
            return;
        };
        let topic = runtime.kafka.topic("messages.accepted");
        let mut n = 0;
        while !stop.is_cancelled() {
            let mut encoded = Vec::with_capacity(batch);
            for _ in 0..batch {
                let id = format!("direct-{n}-{}", uuid::Uuid::new_v4().simple());
                let submission = switchyard_tests::sample_submission(Some(&id), "acme", "x");
                if let Ok(bytes) = runtime.codec.encode("messages.accepted", &submission).await {
                    encoded.push(bytes);
                }
                n += 1;
            }
            let sends = encoded.iter().map(|bytes| {
                producer.send(
                    rdkafka::producer::FutureRecord::to(&topic)
                        .key("acme")
                        .payload(bytes),
                    Duration::from_secs(5),
                )
            });
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = futures::future::join_all(sends) => {}
            }
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_role_process_stops_within_the_bound_when_its_broker_dies_mid_batch() -> anyhow::Result<()>
{
    let _one_at_a_time = HEAVY.lock().await;
    switchyard_tests::init_logging();
    let broker = Broker::start()?;
    let env = broker.env();
    let stack = switchyard_tests::Stack::on(env.clone(), &[]).await?;
    let logs = log_dir("broker_dies");
    let connection = Connection::new(&env, &stack.registry.url());
    let mut validate = RoleProcess::spawn_command(
        &connection,
        "validate",
        "validate-bounded",
        &bounded(),
        &["run".into(), "validate".into()],
        &[],
        &logs,
    )?;
    let _children = KillDescendants(validate.pid());
    validate.wait_ready(None, Duration::from_secs(60)).await?;
    // A steady stream (no config: validate rejects each, in its transactions).
    let stop_load = CancellationToken::new();
    let load = start_direct_load(stack.runtime.clone(), 100, stop_load.clone());
    let deadline = Instant::now() + Duration::from_secs(60);
    while read_all(&env.kafka(), "messages.rejected").await?.len() < 1000 {
        anyhow::ensure!(
            Instant::now() < deadline,
            "validate does not keep up:\n{}",
            validate.log_tail(30)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The broker dies under it, then the SIGTERM.
    tokio::task::block_in_place(|| broker.kill9())?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    validate.signal("TERM")?;
    let signalled = Instant::now();
    let status = validate.wait_exit_until(signalled + BOUND + MARGIN).await?;
    let exited_after = signalled.elapsed();
    stop_load.cancel();
    let _ = load.await;
    let Some(status) = status else {
        let tail = validate.log_tail(30);
        kill_all(&mut validate);
        anyhow::bail!(
            "switchyard run validate still ran {:.1} s after SIGTERM with its broker gone \
             (bound {BOUND:?}):\n{tail}",
            exited_after.as_secs_f64()
        );
    };
    let log = validate.log();
    anyhow::ensure!(
        log.contains(&format!(
            "role validate did not stop within {} s",
            BOUND.as_secs()
        )),
        "validate exited ({status}) {:.1} s after SIGTERM without saying it left its batch \
         unfinished; {}",
        exited_after.as_secs_f64(),
        validate.log_path().display()
    );
    eprintln!(
        "run validate, broker killed mid-batch: exited ({status}) {:.1} s after SIGTERM (bound \
         {} s); log {}",
        exited_after.as_secs_f64(),
        BOUND.as_secs(),
        validate.log_path().display()
    );
    Ok(())
}

/// A directory with a `node` that starts the real node as its child (as version managers'
/// shims do) instead of becoming it.
fn node_shim(dir: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let path = std::env::var("PATH").unwrap_or_default();
    let real = std::env::split_paths(&path)
        .map(|p| p.join("node"))
        .find(|p| p.is_file())
        .ok_or_else(|| anyhow::anyhow!("node is not installed (make setup)"))?;
    let shim = dir.join("node");
    std::fs::write(
        &shim,
        format!("#!/bin/sh\n\"{}\" \"$@\"\nexit $?\n", real.display()),
    )?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&shim, std::fs::Permissions::from_mode(0o755))?;
    let mut paths = vec![dir.to_path_buf()];
    paths.extend(std::env::split_paths(&path));
    Ok(vec![(
        "PATH".into(),
        std::env::join_paths(paths)?.to_string_lossy().into_owned(),
    )])
}

/// The simulator's processes under `process` (the shim and the real node), once it listens on
/// `port`.
async fn simulator_processes(process: &RoleProcess, port: u16) -> anyhow::Result<Vec<u32>> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the SMSC simulator does not listen on {port}:\n{}",
            process.log_tail(30)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let simulator: Vec<u32> = process
        .descendants()
        .into_iter()
        .filter(|pid| process_command_line(*pid).contains("smsc.js"))
        .collect();
    anyhow::ensure!(
        simulator.len() >= 2,
        "expected the shim and the real node under {}: {:?}",
        process.role,
        simulator
            .iter()
            .map(|p| (p, process_command_line(*p)))
            .collect::<Vec<_>>()
    );
    Ok(simulator)
}

/// Every process of `pids` is gone (or a zombie) within a moment of the exit, and then nothing
/// listens on `port`. (Liveness first, from `/proc`: a connection to an orphaned simulator
/// could make it write to its closed stdout and die of that, hiding it.)
async fn assert_left_nothing(what: &str, pids: &[u32], port: u16) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let alive: Vec<(u32, String)> = pids
            .iter()
            .filter(|pid| process_alive(**pid))
            .map(|pid| (*pid, process_command_line(*pid)))
            .collect();
        if alive.is_empty() {
            break;
        }
        if Instant::now() >= deadline {
            for (pid, _) in &alive {
                switchyard_runtime::shutdown::kill_group(*pid);
            }
            anyhow::bail!("after {what} exited, its processes still run: {alive:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::ensure!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "after {what} exited, something still listens on its simulator's port {port}"
    );
    Ok(())
}

/// Wait up to `timeout` for `process` to exit; if it does not, SIGKILL it with everything it
/// started and fail saying `why`.
async fn exit_within(
    process: &mut RoleProcess,
    timeout: Duration,
    why: &str,
) -> anyhow::Result<std::process::ExitStatus> {
    match process.wait_exit_until(Instant::now() + timeout).await? {
        Some(status) => Ok(status),
        None => {
            let tail = process.log_tail(30);
            kill_all(process);
            anyhow::bail!("{} {why} within {timeout:?}:\n{tail}", process.role)
        }
    }
}

/// When dropped (a test that failed part way): SIGKILL whatever the process with this pid
/// started (a dropped `RoleProcess` kills only itself; its simulator would live on).
struct KillDescendants(Option<u32>);

impl Drop for KillDescendants {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            for child in switchyard_tests::processes::descendants_of(pid) {
                switchyard_runtime::shutdown::kill_group(child);
            }
        }
    }
}

/// SIGKILL a process and everything it started (a test that failed).
fn kill_all(process: &mut RoleProcess) {
    for pid in process.descendants() {
        switchyard_runtime::shutdown::kill_group(pid);
    }
    let _ = process.kill9();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn up_stops_its_smsc_simulator_on_sigterm() -> anyhow::Result<()> {
    let _one_at_a_time = HEAVY.lock().await;
    switchyard_tests::init_logging();
    let env = TestEnv::new()?;
    apply_topics(&env, &[]).await?;
    let ports = Up::new()?;
    let shim = tempfile::tempdir()?;
    let mut up = RoleProcess::spawn_command(
        &ports.connection(&env),
        "up",
        "up-children",
        &["--shutdown-timeout-seconds".into(), "20".into()],
        &ports.command(true)?,
        &node_shim(shim.path())?,
        &log_dir("children_sigterm"),
    )?;
    let _children = KillDescendants(up.pid());
    wait_up(&mut up, ports.ingress, Duration::from_secs(90)).await?;
    let simulator = simulator_processes(&up, ports.smsc).await?;
    up.signal("TERM")?;
    let status = exit_within(
        &mut up,
        Duration::from_secs(25),
        "did not exit after SIGTERM",
    )
    .await?;
    anyhow::ensure!(status.success(), "up exited with {status}");
    assert_left_nothing("switchyard up (SIGTERM)", &simulator, ports.smsc).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn up_stops_its_smsc_simulator_when_a_role_fails() -> anyhow::Result<()> {
    let _one_at_a_time = HEAVY.lock().await;
    switchyard_tests::init_logging();
    let env = TestEnv::new()?;
    apply_topics(&env, &[]).await?;
    let ports = Up::new()?;
    let shim = tempfile::tempdir()?;
    // A setting validate's transactional producer refuses (a record may not outlive its
    // transaction) while every other client accepts it: validate fails after it started.
    let mut up = RoleProcess::spawn_command(
        &ports.connection(&env),
        "up",
        "up-failing",
        &["--kafka-option".into(), "message.timeout.ms=600000".into()],
        &ports.command(false)?,
        &node_shim(shim.path())?,
        &log_dir("children_failure"),
    )?;
    let _children = KillDescendants(up.pid());
    let simulator = simulator_processes(&up, ports.smsc).await?;
    let status = exit_within(
        &mut up,
        Duration::from_secs(90),
        "kept running with a failed role",
    )
    .await?;
    anyhow::ensure!(
        status.code() == Some(1),
        "up exited with {status} after a role failed:\n{}",
        up.log_tail(30)
    );
    assert_left_nothing("switchyard up (a role failed)", &simulator, ports.smsc).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sim_smsc_stops_its_node_on_sigterm() -> anyhow::Result<()> {
    let _one_at_a_time = HEAVY.lock().await;
    let port = free_port();
    let shim = tempfile::tempdir()?;
    let connection = Connection {
        brokers: "127.0.0.1:9".into(),
        prefix: String::new(),
        registry_url: "http://127.0.0.1:9".into(),
    };
    let mut sim = RoleProcess::spawn_command(
        &connection,
        "sim-smsc",
        "sim",
        &[],
        &[
            "sim".into(),
            "smsc".into(),
            "--port".into(),
            port.to_string(),
        ],
        &node_shim(shim.path())?,
        &log_dir("sim_smsc"),
    )?;
    let _children = KillDescendants(sim.pid());
    let simulator = simulator_processes(&sim, port).await?;
    sim.signal("TERM")?;
    let status = exit_within(
        &mut sim,
        Duration::from_secs(35),
        "did not exit after SIGTERM",
    )
    .await?;
    anyhow::ensure!(status.success(), "sim smsc exited with {status}");
    assert_left_nothing("switchyard sim smsc (SIGTERM)", &simulator, port).await
}
