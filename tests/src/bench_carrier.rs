//! `make bench BENCH_ARGS="--path carrier"`: the carrier path end to end — HTTP submit → the
//! pipeline → SMPP to the SMSC simulator (`tests/smsc/smsc.js`, which answers `submit_sm` and
//! sends a receipt) → the signed webhook to a receiver in the bench — next to the broker's
//! raw rate measured in the same run.
//!
//! Every role runs in the bench process, as `switchyard up` runs them, with the demo-like
//! config: customer `acme`, client `acme-web` (signed webhooks), one `smpp` sender. Each run has
//! a fresh namespace, SMSC and receiver. Two runs:
//!
//! - all at once: `--messages N` (default 20,000) posted as batch requests of `--batch`
//!   (default 100), `--in-flight` (default 8) requests at a time; msg/s is N over the time
//!   from the first submit to the last webhook;
//! - steady: `--rate R` msg/s (default 1,000) for `--seconds S` (default 20), a request every
//!   20 ms carrying what is due.
//!
//! Printed per run: msg/s, p50/p99/max from submit (the request leaving the bench) to the first
//! webhook for the message, per stage the mean time from receipt to acknowledged outputs, and
//! CPU seconds and peak RSS (VmHWM) of the bench process (every role), the Kafka JVM and the
//! node SMSC; beside them CPU ms per message and threads of each of those, and Kafka requests
//! per message by API and client with the clients open (`crate::bench_kafka_stats`; requests
//! are read at least one 5 s statistics interval after the last webhook, and given net of
//! those quiet seconds at the idle rate). Before each run,
//! after its warm-up, an idle section: `--idle-seconds` (default 20; 0 skips it) with no
//! traffic, CPU % of one core per process and Kafka requests per second by API and client.
//! `--run burst|steady|both` picks the runs; `--window W` is the SMPP sender's
//! window (default 50: 1.2× the rate of the sender's default 10, decision 0021); `--mode` the
//! processing guarantee; `--set key=value` (repeatable) a librdkafka property on every client
//! of the pipeline, to measure a setting (e.g. `linger.ms`) before changing the runtime's
//! default.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;
use switchyard::pipeline::{Role, start};
use switchyard_runtime::{CancellationToken, Processing};
use switchyard_schemas::now_millis;

use crate::bench_kafka_stats::{CostSummary, Idle, RunCost, measure_idle};
use crate::bench_proc::{Watched, cpu_snapshot, print_costs};
use crate::bench_raw::{Raw, raw_rate};
use crate::bench_stages::print_stage_latencies;
use crate::bench_webhooks::{self, Arrivals};
use crate::pipeline::{API_KEY, SECRET, local_settings};
use crate::{Broker, Stack};

/// Records the carrier path produces per message: accepted, validated, sender.<name>, routed,
/// dispatched, reports (the receipt), final — for the ceiling raw produce ÷ 7.
const PRODUCES_PER_MESSAGE: f64 = 7.0;
/// Steady runs send what is due every this often.
const TICK: Duration = Duration::from_millis(20);

/// Which runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Runs {
    Burst,
    Steady,
    Both,
}

/// The carrier mode's options.
#[derive(Debug, Clone)]
pub struct Options {
    messages: usize,
    rate: f64,
    seconds: f64,
    raw_records: usize,
    batch: usize,
    in_flight: usize,
    window: usize,
    processing: Processing,
    runs: Runs,
    /// librdkafka properties set on every client of the pipeline (`--set key=value`), to
    /// measure a setting before changing the runtime's defaults.
    overrides: Vec<(String, String)>,
    /// The callback role's endpoint guard: a full endpoint that ended no call for this long
    /// is treated as stuck (`--webhook-slow-after-ms`; `None`: the role's default).
    webhook_slow_after: Option<Duration>,
    /// Seconds of idle measured before each run, after its warm-up (0: none).
    idle_seconds: u64,
}

const USAGE: &str = "usage: bench --path carrier [--messages N] [--rate MSG_PER_S] [--seconds S] \
     [--run burst|steady|both] [--batch B] [--in-flight K] [--window W] \
     [--mode exactly_once|at_least_once] [--raw R] [--set librdkafka.key=value]... [--webhook-slow-after-ms MS] [--idle-seconds S]";

impl Options {
    /// Read the options from the arguments (`--path carrier` among them).
    pub fn parse(args: impl Iterator<Item = String>) -> anyhow::Result<Self> {
        let mut o = Options {
            messages: 20_000,
            rate: 1000.0,
            seconds: 20.0,
            raw_records: 20_000,
            batch: 100,
            in_flight: 8,
            window: 50,
            processing: Processing::default(),
            runs: Runs::Both,
            overrides: Vec::new(),
            webhook_slow_after: None,
            idle_seconds: 20,
        };
        let mut args = args.peekable();
        while let Some(name) = args.next() {
            let mut value = || {
                args.next()
                    .ok_or_else(|| anyhow::anyhow!("{name} needs a value; {USAGE}"))
            };
            match name.as_str() {
                "--path" => anyhow::ensure!(value()? == "carrier", "{USAGE}"),
                "--messages" => o.messages = value()?.parse()?,
                "--rate" => o.rate = value()?.parse()?,
                "--seconds" => o.seconds = value()?.parse()?,
                "--raw" => o.raw_records = value()?.parse()?,
                "--batch" => o.batch = value()?.parse()?,
                "--in-flight" => o.in_flight = value()?.parse()?,
                "--window" => o.window = value()?.parse()?,
                "--mode" => o.processing = value()?.parse().map_err(anyhow::Error::msg)?,
                "--set" => {
                    let setting = value()?;
                    let (key, v) = setting
                        .split_once('=')
                        .ok_or_else(|| anyhow::anyhow!("--set takes key=value, not {setting}"))?;
                    o.overrides.push((key.into(), v.into()));
                }
                "--webhook-slow-after-ms" => {
                    o.webhook_slow_after = Some(Duration::from_millis(value()?.parse()?))
                }
                "--idle-seconds" => o.idle_seconds = value()?.parse()?,
                "--run" => {
                    o.runs = match value()?.as_str() {
                        "burst" => Runs::Burst,
                        "steady" => Runs::Steady,
                        "both" => Runs::Both,
                        other => anyhow::bail!("--run is burst, steady or both, not {other}"),
                    }
                }
                other => anyhow::bail!("unknown argument {other}; {USAGE}"),
            }
        }
        anyhow::ensure!(
            o.messages > 0
                && o.rate > 0.0
                && o.seconds > 0.0
                && o.raw_records > 0
                && (1..=1000).contains(&o.batch)
                && o.in_flight > 0
                && o.window > 0,
            "every figure must be positive and --batch at most 1000; {USAGE}"
        );
        Ok(o)
    }
}

/// The SMSC simulator, a child process killed on drop.
struct Smsc {
    port: u16,
    child: Child,
}

impl Smsc {
    /// Start `tests/smsc/smsc.js` on a free port, receipts on (TLV form), its log discarded.
    fn start() -> anyhow::Result<Self> {
        let dir = crate::repo_root().join("tests/smsc");
        anyhow::ensure!(
            dir.join("node_modules/smpp").is_dir(),
            "the SMSC simulator is not installed in {}: run make setup",
            dir.display()
        );
        let mut child = Command::new("node")
            .arg(dir.join("smsc.js"))
            .env("SMSC_PORT", "0")
            .env("SMSC_LOG", "/dev/null")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("node must be installed")?;
        let stdout = child.stdout.take().context("stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let port = line
            .strip_prefix("LISTENING ")
            .and_then(|p| p.trim().parse().ok());
        match port {
            Some(port) => Ok(Smsc { port, child }),
            None => {
                let _ = child.kill();
                anyhow::bail!("the SMSC simulator did not start: {line:?}")
            }
        }
    }
}

impl Drop for Smsc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The demo-like config: acme's SMS to 0101… go to one SMPP sender at the SMSC.
fn config(smsc_port: u16, report_url: &str, window: usize) -> String {
    format!(
        r#"
[[customers]]
id = "acme"
channels = ["sms"]

[[clients]]
id = "acme-web"
customer = "acme"
api_key = "{API_KEY}"
report_url = "{report_url}"
signing_secret = "{SECRET}"

[[senders]]
name = "smsc-a"
group = "smsc"
channel = "sms"
carriers = ["skt"]
kind = "smpp"
endpoint = "smpp://127.0.0.1:{smsc_port}"
settings = {{ system_id = "switchyard", password = "pw", window = {window} }}

[[routes]]
customer = "acme"
channel = "sms"
carriers = [{{ carrier = "skt", groups = [{{ group = "smsc", ratio = 1 }}] }}]

[[numbering]]
prefix = "0101"
carrier = "skt"
"#
    )
}

/// POST messages `ids` as one batch; returns when the request left (ms since the epoch).
async fn post(http: &reqwest::Client, url: &str, ids: &[String]) -> anyhow::Result<i64> {
    let messages: Vec<serde_json::Value> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            serde_json::json!({
                "channel": "sms",
                "to": format!("0101{:07}", i % 10_000_000),
                "text": format!("bench {id}"),
                "client_message_id": id,
            })
        })
        .collect();
    let body = serde_json::json!({ "messages": messages });
    let sent = now_millis();
    let status = http
        .post(url)
        .bearer_auth(API_KEY)
        .json(&body)
        .send()
        .await?
        .status();
    anyhow::ensure!(status == 202, "ingress answered {status}");
    Ok(sent)
}

/// Wait until `expected` distinct messages have their webhook; fail after 60 s without one.
async fn wait_for(arrivals: &Arrivals, expected: usize) -> anyhow::Result<()> {
    let (mut last_count, mut last_progress) = (arrivals.distinct(), Instant::now());
    while arrivals.distinct() < expected {
        tokio::time::sleep(Duration::from_millis(10)).await;
        let now = arrivals.distinct();
        if now > last_count {
            (last_count, last_progress) = (now, Instant::now());
        }
        anyhow::ensure!(
            last_progress.elapsed() < Duration::from_secs(60),
            "only {now} of {expected} webhooks, none for 60 s"
        );
    }
    Ok(())
}

/// Submit every message at once: batches of `batch`, `in_flight` requests at a time.
async fn submit_burst(url: &str, o: &Options) -> anyhow::Result<Vec<(String, i64)>> {
    let http = reqwest::Client::new();
    let batches: Vec<Vec<String>> = (0..o.messages)
        .collect::<Vec<_>>()
        .chunks(o.batch)
        .map(|c| c.iter().map(|i| format!("burst-{i}")).collect())
        .collect();
    let mut posted = futures::stream::iter(batches)
        .map(|ids| {
            let http = http.clone();
            async move {
                let sent = post(&http, url, &ids).await?;
                anyhow::Ok(ids.into_iter().map(move |id| (id, sent)))
            }
        })
        .buffer_unordered(o.in_flight);
    let mut sent_at = Vec::with_capacity(o.messages);
    while let Some(batch) = posted.next().await {
        sent_at.extend(batch?);
    }
    Ok(sent_at)
}

/// Submit `rate` messages/s for `seconds`: every tick, one request with what is due.
async fn submit_steady(url: &str, o: &Options) -> anyhow::Result<Vec<(String, i64)>> {
    let http = reqwest::Client::new();
    let total = (o.rate * o.seconds).round() as usize;
    let started = Instant::now();
    let mut requests = Vec::new();
    let mut next = 0;
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    while next < total {
        tick.tick().await;
        let due = ((started.elapsed().as_secs_f64() * o.rate) as usize + 1).min(total);
        for chunk in (next..due).collect::<Vec<_>>().chunks(o.batch) {
            let ids: Vec<String> = chunk.iter().map(|i| format!("steady-{i}")).collect();
            let (http, url) = (http.clone(), url.to_string());
            requests.push(tokio::spawn(async move {
                let sent = post(&http, &url, &ids).await?;
                anyhow::Ok(ids.into_iter().map(move |id| (id, sent)))
            }));
        }
        next = due.max(next);
    }
    let mut sent_at = Vec::with_capacity(total);
    for request in requests {
        sent_at.extend(request.await??);
    }
    Ok(sent_at)
}

fn percentile(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// What one run measured.
struct Measured {
    label: String,
    rate: f64,
    p50: i64,
    p99: i64,
    cost: CostSummary,
    idle: Option<Idle>,
}

/// One run in a fresh namespace: start everything, warm up, submit, wait for every webhook.
async fn run(broker: &Broker, o: &Options, steady: bool, raw: &Raw) -> anyhow::Result<Measured> {
    let stack = Stack::on(broker.env(), &[]).await?;
    let mut runtime = stack.runtime.clone();
    runtime.processing = o.processing;
    // Before the first client is made (the shared producer is made on first use).
    runtime.kafka.overrides.extend(o.overrides.iter().cloned());
    let shutdown = CancellationToken::new();
    let smsc = Smsc::start()?;
    let (report_url, arrivals) = bench_webhooks::serve(SECRET, shutdown.clone()).await?;
    switchyard_config::apply(
        &runtime,
        &config(smsc.port, &report_url, o.window),
        false,
        1,
    )
    .await?;
    let history = tempfile::tempdir()?;
    let mut settings = local_settings(history.path());
    if let Some(slow_after) = o.webhook_slow_after {
        settings.webhooks.guard.slow_after = slow_after;
    }
    let running = start(&runtime, &Role::ALL, &settings, &shutdown).await?;
    let url = format!(
        "http://{}/v1/messages",
        running.ingress.context("no ingress")?
    );

    // Two messages all the way through first: every group joined, the SMPP bind up, every
    // transactional producer started before the clock starts.
    let http = reqwest::Client::new();
    post(&http, &url, &["warm-up-0".into(), "warm-up-1".into()]).await?;
    tokio::time::timeout(Duration::from_secs(120), wait_for(&arrivals, 2))
        .await
        .context("warm-up: no webhooks in 120 s")??;

    let label = if steady {
        format!("steady {} msg/s for {} s", o.rate, o.seconds)
    } else {
        format!("all at once, {} messages", o.messages)
    };
    println!(
        "\ncarrier path, {label} ({}, SMPP window {}{}, namespace {})",
        o.processing,
        o.window,
        o.overrides
            .iter()
            .map(|(k, v)| format!(", {k}={v}"))
            .collect::<String>(),
        stack.env.namespace.prefix().trim_end_matches('.')
    );
    let mut watched = vec![Watched::this_process("bench process (every role)")];
    if let Some(pid) = broker.pid() {
        watched.push(Watched::other("Kafka JVM", pid as u32));
    }
    watched.push(Watched::other("SMSC (node)", smsc.child.id()));
    let idle = if o.idle_seconds > 0 {
        Some(
            measure_idle(
                &watched,
                &runtime.metrics,
                o.idle_seconds,
                "after the warm-up, before the run",
            )
            .await,
        )
    } else {
        None
    };
    let cost = RunCost::start(&watched, &runtime.metrics);
    let cpu_before = cpu_snapshot(&watched);
    let metrics_before = runtime.metrics.encode();
    let started = Instant::now();
    let first_submit = now_millis();
    let sent_at = if steady {
        submit_steady(&url, o).await?
    } else {
        submit_burst(&url, o).await?
    };
    let submitted_in = started.elapsed().as_secs_f64();
    wait_for(&arrivals, sent_at.len() + 2).await?;
    let wall = started.elapsed().as_secs_f64();
    let ended = cost.end(&watched);
    let last = arrivals.last().unwrap_or(first_submit);
    let elapsed = ((last - first_submit) as f64 / 1000.0).max(1e-3);
    let mut latencies: Vec<i64> = sent_at
        .iter()
        .filter_map(|(id, sent)| arrivals.arrived(id).map(|at| at - sent))
        .collect();
    latencies.sort_unstable();
    let rate = sent_at.len() as f64 / elapsed;
    let (p50, p99) = (percentile(&latencies, 0.5), percentile(&latencies, 0.99));
    println!(
        "  end to end    {rate:>8.0} msg/s   ({} messages, first submit → last webhook {elapsed:.2} s; submitting took {submitted_in:.2} s)",
        sent_at.len()
    );
    println!(
        "  latency       submit → webhook   p50 {p50:>5} ms   p99 {p99:>5} ms   max {:>5} ms",
        latencies.last().copied().unwrap_or(0)
    );
    let (total, bad, not_delivered) = arrivals.counts();
    println!(
        "  webhooks      {total} received ({} distinct; {bad} bad signatures, {not_delivered} not delivered)",
        arrivals.distinct()
    );
    println!(
        "  ratio         end to end / raw produce = {:.3}   / raw consume = {:.3}   / (raw produce ÷ {PRODUCES_PER_MESSAGE}) = {:.2}",
        rate / raw.produce_per_s,
        rate / raw.consume_per_s,
        rate / (raw.produce_per_s / PRODUCES_PER_MESSAGE)
    );
    println!("  cost          (first submit → last webhook, {wall:.2} s wall)");
    print_costs(&watched, &cpu_before, wall);
    // A stage records its latencies once its whole batch is done: let the last ones finish.
    tokio::time::sleep(Duration::from_millis(500)).await;
    print_stage_latencies(&metrics_before, &runtime.metrics.encode());
    let cost = ended
        .report(
            &watched,
            &runtime.metrics,
            sent_at.len(),
            "last webhook",
            idle.as_ref(),
        )
        .await;

    shutdown.cancel();
    if tokio::time::timeout(Duration::from_secs(60), running.wait())
        .await
        .is_err()
    {
        println!("  (the roles did not stop within 60 s; going on)");
    }
    drop(smsc);
    drop(stack);
    Ok(Measured {
        label,
        rate,
        p50,
        p99,
        cost,
        idle,
    })
}

/// The carrier mode: raw rates, then the runs asked for.
pub async fn bench(broker: &Broker, o: &Options) -> anyhow::Result<()> {
    println!(
        "switchyard bench --path carrier: Apache Kafka (one KRaft node on {}), SMSC simulator (node), {} raw records",
        broker.brokers(),
        o.raw_records
    );
    let raw = raw_rate(&broker.env(), o.raw_records).await?;
    println!(
        "raw broker      produce {:>8.0} rec/s   consume {:>8.0} rec/s   (300 B, 3 partitions, acks=all idempotent; group commit per 500)",
        raw.produce_per_s, raw.consume_per_s
    );
    let mut measured = Vec::new();
    if o.runs != Runs::Steady {
        measured.push(run(broker, o, false, &raw).await?);
    }
    if o.runs != Runs::Burst {
        measured.push(run(broker, o, true, &raw).await?);
    }
    println!();
    for m in &measured {
        println!(
            "summary         {:<32} {:>8.0} msg/s   submit → webhook p50 {} ms   p99 {} ms",
            m.label, m.rate, m.p50, m.p99
        );
        println!("                  cost  {}", m.cost.summary());
        if let Some(idle) = &m.idle {
            println!("                  idle  {}", idle.summary());
        }
    }
    Ok(())
}
