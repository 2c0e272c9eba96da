//! `make bench-history`: the history store at scale. Loads N events (default 1,000,000) into
//! each engine and prints its write rate and the p50/p99 latency of every query kind at that
//! size.
//!
//! The events are what the history stage makes of a realistic mix (~150k messages for 1M
//! events): per message accepted, validated, routed, submitted, carrier report, final report
//! and webhook result; 5% rejected by validate (accepted, rejected, final, webhook); 7% failing
//! at the carrier; 3% of webhooks retried before delivery, 1% exhausted, 1% still retrying
//! (those stay on the pull list). 40 customers of very different sizes (customer i has a
//! share ∝ 1/(i+1)), two API clients each (10% of messages name none), 12 senders on 3
//! carriers, 50,000 recipients, acceptance times spread over 30 days in order.
//!
//! Writes go in batches of 500 events (the history runner's batch), `record_all` each: on
//! SQLite one transaction per batch, one batch at a time (one writer); on CQL `--cql-batches`
//! batches at once (default 4; `record_all` writes 64 events of a batch at a time, so up to
//! 256 events in flight, each an unlogged single-partition batch plus its lookup rows, all
//! prepared statements).
//!
//! Then `--samples` (default 200) of each query, one at a time, each on a message drawn at
//! random (so bigger customers are asked about more): message by id; by client message id; a
//! client's search in one day of acceptance (no filter, status `failed`, channel `lms`, the
//! message's recipient), pages of 100; the pull list's first page (100); the failure summary
//! and the sender statistics over 7 days.
//!
//! SQLite is a file in a temporary directory. CQL is a fresh keyspace (dropped at the end) on
//! `$SWITCHYARD_TEST_CQL` if set, else on a Cassandra the bench starts with
//! `infra/cassandra.sh` in a temporary directory on free ports (stopped at the end).
//!
//! usage: bench_history [--events N] [--samples S] [--engine sqlite|cql|both] [--cql-batches B]

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::{StreamExt, TryStreamExt};
use serde_json::json;
use switchyard_history::{CallbackState, Event, HistoryStore, MessageQuery, Stage, Summary};
use switchyard_tests::{SHARED_CQL_ENV, free_port};

/// Events per `record_all` (the history runner's batch size).
const BATCH: usize = 500;
/// Milliseconds in a day.
const DAY_MS: i64 = 86_400_000;
/// The first acceptance time: 2026-10-24 00:00 UTC; messages spread over 30 days from it.
const START: i64 = 1_792_800_000_000;
const DAYS: i64 = 30;
const CUSTOMERS: usize = 40;
const RECIPIENTS: u64 = 50_000;
const SENDERS: [(&str, &str); 12] = [
    ("skt-a", "skt"),
    ("skt-b", "skt"),
    ("skt-c", "skt"),
    ("skt-d", "skt"),
    ("kt-a", "kt"),
    ("kt-b", "kt"),
    ("kt-c", "kt"),
    ("kt-d", "kt"),
    ("lgu-a", "lgu"),
    ("lgu-b", "lgu"),
    ("lgu-c", "lgu"),
    ("lgu-d", "lgu"),
];

/// What to run.
struct Options {
    events: usize,
    samples: usize,
    sqlite: bool,
    cql: bool,
    cql_batches: usize,
}

fn options() -> anyhow::Result<Options> {
    let mut o = Options {
        events: 1_000_000,
        samples: 200,
        sqlite: true,
        cql: true,
        cql_batches: 4,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--events" => o.events = value()?.parse()?,
            "--samples" => o.samples = value()?.parse()?,
            "--cql-batches" => o.cql_batches = value()?.parse::<usize>()?.max(1),
            "--engine" => match value()?.as_str() {
                "sqlite" => (o.sqlite, o.cql) = (true, false),
                "cql" => (o.sqlite, o.cql) = (false, true),
                "both" => (o.sqlite, o.cql) = (true, true),
                other => bail!("--engine {other}: sqlite, cql or both"),
            },
            other => bail!(
                "unknown argument {other}; usage: bench_history [--events N] [--samples S] \
                 [--engine sqlite|cql|both] [--cql-batches B]"
            ),
        }
    }
    Ok(o)
}

/// A small deterministic generator (SplitMix64): the same data on every run and engine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// True with probability `percent` / 100.
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// What the queries need of a loaded message.
#[derive(Clone)]
struct Loaded {
    id: String,
    customer: String,
    client: String,
    client_message_id: String,
    to: String,
    accepted_at: i64,
}

/// The events of every message, in batches, and the messages' keys for the queries.
struct Dataset {
    batches: Vec<Vec<Event>>,
    messages: Vec<Loaded>,
    events: usize,
}

/// Source-record keys (`topic/partition/offset`) per topic, as the history stage makes them.
#[derive(Default)]
struct Offsets(std::collections::HashMap<&'static str, u64>);

impl Offsets {
    fn key(&mut self, topic: &'static str, partition: u64) -> String {
        let offset = self.0.entry(topic).or_default();
        *offset += 1;
        format!("{topic}/{partition}/{offset}")
    }
}

fn customer_of(rng: &mut Rng, weights: &[f64]) -> usize {
    let total: f64 = weights.iter().sum();
    let mut pick = (rng.below(1_000_000) as f64 / 1_000_000.0) * total;
    for (i, w) in weights.iter().enumerate() {
        if pick < *w {
            return i;
        }
        pick -= w;
    }
    weights.len() - 1
}

fn event(
    key: String,
    id: &str,
    kind: &'static str,
    at: i64,
    stage: Stage,
    summary: Summary,
) -> Event {
    Event {
        event_key: key,
        message_id: id.to_string(),
        kind,
        at,
        stage,
        summary,
        detail: json!({"k": kind}),
    }
}

/// One message's events (4 to 9) and its keys.
fn message(
    i: usize,
    n: usize,
    rng: &mut Rng,
    weights: &[f64],
    offsets: &mut Offsets,
) -> (Vec<Event>, Loaded) {
    let c = customer_of(rng, weights);
    let customer = format!("cust-{c:02}");
    let client = if rng.chance(50) { "web" } else { "batch" };
    let client = format!("{customer}-{client}");
    let named_client = (!rng.chance(10)).then(|| client.clone());
    let id = format!("m{i:08x}-{:08x}", rng.next() as u32);
    let client_message_id = format!("cm-{i}");
    let to = format!("010{:08}", rng.below(RECIPIENTS) * 1_999 % 100_000_000);
    let channel = match rng.below(10) {
        0..=6 => "sms",
        7 | 8 => "lms",
        _ => "kakao",
    };
    let span = DAYS * DAY_MS;
    let at = START + (i as i64) * span / (n as i64).max(1) + rng.below(1_000) as i64;
    let partition = rng.below(6);
    let identity = Summary {
        customer_id: Some(customer.clone()),
        client_id: named_client.clone(),
        client_message_id: Some(client_message_id.clone()),
        channel: Some(channel.into()),
        to: Some(to.clone()),
        accepted_at: Some(at),
        ..Summary::default()
    };
    let status = |s: &str, base: &Summary| Summary {
        status: Some(s.into()),
        ..base.clone()
    };
    let mut events = vec![event(
        offsets.key("messages.accepted", partition),
        &id,
        "accepted",
        at,
        Stage::Accepted,
        status("accepted", &identity),
    )];
    let (sender, carrier) = SENDERS[rng.below(SENDERS.len() as u64) as usize];
    let rejected = rng.chance(5);
    let (final_status, code, done_at) = if rejected {
        let code = ["blocked_keyword", "night_ad", "duplicate"][rng.below(3) as usize];
        let mut summary = status("rejected", &identity);
        summary.result_code = Some(code.into());
        summary.result_text = Some("refused by validate".into());
        events.push(event(
            offsets.key("messages.rejected", partition),
            &id,
            "rejected",
            at + 3,
            Stage::Validated,
            summary,
        ));
        ("rejected", code.to_string(), at + 10)
    } else {
        events.push(event(
            offsets.key("messages.validated", partition),
            &id,
            "validated",
            at + 3,
            Stage::Validated,
            status("validated", &identity),
        ));
        let hop = Summary {
            carrier: Some(carrier.into()),
            sender: Some(sender.into()),
            ..Summary::default()
        };
        events.push(event(
            offsets.key("messages.routed", partition),
            &id,
            "routed",
            at + 8,
            Stage::Routed,
            status("routed", &hop),
        ));
        events.push(event(
            offsets.key("messages.dispatched", partition),
            &id,
            "submitted",
            at + 40,
            Stage::Submitted,
            status("submitted", &hop),
        ));
        let reported = at + 2_000 + rng.below(30_000) as i64;
        events.push(event(
            offsets.key("messages.reports", partition),
            &id,
            "report",
            reported,
            Stage::Reported,
            Summary::default(),
        ));
        if rng.chance(7) {
            let code = ["3001", "3002", "4001", "5003"][rng.below(4) as usize];
            ("failed", code.to_string(), reported + 5)
        } else {
            ("delivered", "0000".to_string(), reported + 5)
        }
    };
    let mut last = Summary {
        status: Some(final_status.into()),
        result_code: Some(code),
        result_text: Some(final_status.into()),
        done_at: Some(done_at),
        accepted_at: None,
        ..identity
    };
    if !rejected {
        last.carrier = Some(carrier.into());
        last.sender = Some(sender.into());
    }
    events.push(event(
        offsets.key("reports.final", partition),
        &id,
        "final",
        done_at,
        Stage::Final,
        last,
    ));
    let webhooks: &[CallbackState] = match rng.below(100) {
        0..=94 => &[CallbackState::Delivered],
        95..=97 => &[CallbackState::Retrying, CallbackState::Delivered],
        98 => &[CallbackState::Retrying, CallbackState::Exhausted],
        _ => &[CallbackState::Retrying],
    };
    for (n, state) in webhooks.iter().enumerate() {
        events.push(event(
            offsets.key("callbacks.results", partition),
            &id,
            "callback",
            done_at + 200 + 60_000 * n as i64,
            Stage::Accepted,
            Summary {
                callback: Some(*state),
                ..Summary::default()
            },
        ));
    }
    let loaded = Loaded {
        id,
        customer,
        client,
        client_message_id,
        to,
        accepted_at: at,
    };
    (events, loaded)
}

/// Messages until `events` events, in batches of `BATCH`.
fn dataset(events: usize) -> Dataset {
    let mut rng = Rng(0x5EED);
    let weights: Vec<f64> = (0..CUSTOMERS).map(|i| 1.0 / (i as f64 + 1.0)).collect();
    let mut offsets = Offsets::default();
    // About 6.7 events a message.
    let planned = events * 10 / 67;
    let (mut batches, mut batch, mut messages, mut total) = (Vec::new(), Vec::new(), Vec::new(), 0);
    let mut i = 0;
    while total < events {
        let (mut message_events, loaded) = message(i, planned, &mut rng, &weights, &mut offsets);
        message_events.truncate(events - total);
        total += message_events.len();
        batch.extend(message_events);
        messages.push(loaded);
        if batch.len() >= BATCH {
            batches.push(std::mem::take(&mut batch));
        }
        i += 1;
    }
    if !batch.is_empty() {
        batches.push(batch);
    }
    Dataset {
        batches,
        messages,
        events: total,
    }
}

/// Write every batch, `parallel` at a time; events per second.
async fn load(store: &HistoryStore, data: &Dataset, parallel: usize) -> anyhow::Result<f64> {
    let started = Instant::now();
    let mut written = 0usize;
    let mut next_report = 100_000;
    let mut writes = futures::stream::iter(data.batches.iter())
        .map(|batch| async move { store.record_all(batch).await.map(|()| batch.len()) })
        .buffer_unordered(parallel);
    while let Some(n) = writes.try_next().await? {
        written += n;
        if written >= next_report {
            eprintln!(
                "  {}: {written} events in {:.1} s",
                store.engine(),
                started.elapsed().as_secs_f64()
            );
            next_report += 100_000;
        }
    }
    Ok(written as f64 / started.elapsed().as_secs_f64())
}

/// p50 and p99 of durations, in ms.
fn percentiles(mut samples: Vec<Duration>) -> (f64, f64) {
    samples.sort();
    let at = |q: f64| {
        let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples.get(i).map_or(0.0, |d| d.as_secs_f64() * 1_000.0)
    };
    (at(0.50), at(0.99))
}

/// The query kinds, each asked about a loaded message.
const QUERIES: [&str; 10] = [
    "message by id",
    "by client message id",
    "search 1 day, no filter",
    "search 1 day, status=failed",
    "search 1 day, channel=lms",
    "search 1 day, recipient",
    "undelivered page (100)",
    "failure summary, 7 days",
    "sender stats, 7 days",
    "search 1 day, 2nd page",
];

/// Ask query `kind` about `m`; the number of rows it returned (to check it found something).
async fn ask(store: &HistoryStore, kind: usize, m: &Loaded) -> anyhow::Result<usize> {
    let day = m.accepted_at.div_euclid(DAY_MS) * DAY_MS;
    let query = |f: &dyn Fn(&mut MessageQuery)| {
        let mut q = MessageQuery {
            customer_id: m.customer.clone(),
            client_id: m.client.clone(),
            from: day,
            to: day + DAY_MS,
            client_message_id: None,
            status: None,
            channel: None,
            recipient: None,
        };
        f(&mut q);
        q
    };
    Ok(match kind {
        0 => usize::from(store.message(&m.id).await?.is_some()),
        1 => {
            let q = query(&|q| {
                q.from = START;
                q.to = START + DAYS * DAY_MS;
                q.client_message_id = Some(m.client_message_id.clone());
            });
            store.search(&q, None, 100).await?.messages.len()
        }
        2 => store
            .search(&query(&|_| {}), None, 100)
            .await?
            .messages
            .len(),
        3 => {
            let q = query(&|q| q.status = Some("failed".into()));
            store.search(&q, None, 100).await?.messages.len()
        }
        4 => {
            let q = query(&|q| q.channel = Some("lms".into()));
            store.search(&q, None, 100).await?.messages.len()
        }
        5 => {
            let q = query(&|q| q.recipient = Some(m.to.clone()));
            store.search(&q, None, 100).await?.messages.len()
        }
        6 => store
            .undelivered(&m.customer, &m.client, None, 100)
            .await?
            .reports
            .len(),
        7 => store
            .failure_summary(&m.customer, day - 6 * DAY_MS, day + DAY_MS)
            .await?
            .len(),
        8 => store
            .sender_stats(&m.customer, day - 6 * DAY_MS, day + DAY_MS)
            .await?
            .len(),
        _ => {
            let q = query(&|_| {});
            let first = store.search(&q, None, 100).await?;
            match first.next_cursor {
                Some(cursor) => store.search(&q, Some(&cursor), 100).await?.messages.len(),
                None => 0,
            }
        }
    })
}

/// Time `samples` of every query kind; prints a line per kind.
async fn query_latencies(
    store: &HistoryStore,
    data: &Dataset,
    samples: usize,
) -> anyhow::Result<()> {
    let mut rng = Rng(0xA5C);
    println!(
        "  {:<30} {:>9} {:>9} {:>12}",
        "query", "p50 ms", "p99 ms", "rows (mean)"
    );
    for (kind, name) in QUERIES.iter().enumerate() {
        let mut times = Vec::with_capacity(samples);
        let mut rows = 0;
        for _ in 0..samples {
            let m = &data.messages[rng.below(data.messages.len() as u64) as usize];
            let started = Instant::now();
            rows += ask(store, kind, m).await?;
            times.push(started.elapsed());
        }
        let (p50, p99) = percentiles(times);
        println!(
            "  {name:<30} {p50:>9.2} {p99:>9.2} {:>12.1}",
            rows as f64 / samples.max(1) as f64
        );
    }
    Ok(())
}

/// A Cassandra this bench started (stopped when dropped), or the run's shared one.
struct Cassandra {
    node: String,
    dir: Option<tempfile::TempDir>,
}

fn cassandra_script() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra/cassandra.sh")
}

impl Cassandra {
    fn start() -> anyhow::Result<Self> {
        if let Ok(node) = std::env::var(SHARED_CQL_ENV) {
            eprintln!("CQL: reusing {node} ({SHARED_CQL_ENV})");
            return Ok(Cassandra { node, dir: None });
        }
        let dir = tempfile::tempdir()?;
        let port = free_port();
        eprintln!("CQL: starting Cassandra on 127.0.0.1:{port} (infra/cassandra.sh)");
        let status = Command::new(cassandra_script())
            .arg("start")
            .env("CASSANDRA_DIR", dir.path())
            .env("CQL_PORT", port.to_string())
            .env("STORAGE_PORT", free_port().to_string())
            .env("JMX_PORT", free_port().to_string())
            .env("CASSANDRA_HEAP", "2g")
            .env("WATCH_PID", std::process::id().to_string())
            .status()?;
        if !status.success() {
            bail!("infra/cassandra.sh start failed ({status}); see its log above");
        }
        Ok(Cassandra {
            node: format!("127.0.0.1:{port}"),
            dir: Some(dir),
        })
    }
}

impl Drop for Cassandra {
    fn drop(&mut self) {
        if let Some(dir) = &self.dir {
            let _ = Command::new(cassandra_script())
                .arg("stop")
                .env("CASSANDRA_DIR", dir.path())
                .env("CASSANDRA_STOP_TIMEOUT", "0")
                .status();
        }
    }
}

/// Load `data` into `store` and time its queries.
async fn run(
    store: &HistoryStore,
    data: &Dataset,
    options: &Options,
    parallel: usize,
) -> anyhow::Result<()> {
    println!(
        "\n{} ({} events, {} messages)",
        store.engine(),
        data.events,
        data.messages.len()
    );
    let rate = load(store, data, parallel).await?;
    println!("  write: {rate:.0} events/s ({parallel} batch(es) of {BATCH} in flight)");
    query_latencies(store, data, options.samples).await
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let options = options()?;
    let data = dataset(options.events);
    eprintln!(
        "{} events of {} messages in {} batches",
        data.events,
        data.messages.len(),
        data.batches.len()
    );
    if options.sqlite {
        let dir = tempfile::tempdir()?;
        let url = format!("sqlite://{}", dir.path().join("history.db").display());
        let store = HistoryStore::open(&url).await?;
        run(&store, &data, &options, 1).await?;
    }
    if options.cql {
        let cassandra = Cassandra::start()?;
        let keyspace = format!("bench_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let store = HistoryStore::open(&format!("cql://{}/{keyspace}", cassandra.node)).await?;
        let outcome = run(&store, &data, &options, options.cql_batches).await;
        if let HistoryStore::Cql(cql) = &store {
            cql.drop_keyspace().await?;
        }
        outcome?;
    }
    Ok(())
}
