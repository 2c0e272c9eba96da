//! `make bench`: the pipeline's end-to-end throughput and latency, in both processing modes,
//! next to the raw rates of the same Apache Kafka broker, all measured in one run.
//!
//! The bench starts its own single-node Kafka (KRaft, `Broker::start()`, killed at the end) and:
//!
//! 1. Raw broker: produces R records of 300 bytes (the runtime's idempotent producer, acks=all)
//!    to a 3-partition topic, then consumes them in a consumer group committing after every
//!    batch of 500 (the stages' batch size): rec/s of each. Then times batches of 100 such
//!    records produced and acknowledged, plainly and as a stage's transaction (begin, produce,
//!    acknowledged, send offsets, commit): the floor each exactly-once hop pays per batch.
//! 2. Pipeline, once per processing mode (`exactly_once`: validate, route and report commit
//!    each batch in a Kafka transaction; `at_least_once`: they commit offsets once outputs are
//!    acknowledged; dispatch, callback and history are at least once in both), each in a fresh
//!    namespace on the same broker, one after the other: every role in-process as
//!    `switchyard up` runs them, the carrier simulator answering and sending its receipt at
//!    once. Two warm-up messages (one per path) go all the way through first, so every group
//!    has joined and every transactional producer started before the clock starts. Then N
//!    messages: chunks of 100 alternate between the HTTP ingress (one batch request, up to 4
//!    in flight) and direct produce to `messages.accepted`. A read_committed reader follows
//!    `reports.final` from before the first submit; the run ends when every message has its
//!    final report. Printed: msg/s end to end; latency submit → final report readable (when
//!    the reader got it) and → written (the report stage's `done_at`), p50/p99/max; webhooks
//!    received; per stage the mean time from receipt to acknowledged outputs; and for exactly
//!    once the commit markers the transactional stages left (records per marker ≈ what a
//!    transaction wrote per partition, i.e. the effective batch).
//!
//!    Beside those, what it cost (`switchyard_tests::bench_kafka_stats`): per watched process
//!    (the bench process, which runs every role, the simulator and the webhook inbox and also
//!    submits and reads; the Kafka JVM) CPU ms per message from the first submit to the last
//!    webhook, and its threads at that moment (the bench's split into librdkafka's `rdk:*`,
//!    tokio's and other; the bench's own Kafka readers are closed by then); Kafka requests
//!    per message, in total, by API and by client (top 6, the rest as `other`), from
//!    librdkafka's statistics (`switchyard_kafka_requests_total`, the bench's own readers
//!    left out), with the clients open. Statistics arrive every 5 s, so requests are read a
//!    whole number of intervals after the first submit and at least one interval after the
//!    last webhook: the window holds a few quiet seconds beyond the run, and with the idle
//!    measurement the figures are also given net of those seconds at the idle rate.
//!
//!    Idle, its own section before each run (after the warm-up, nothing submitted): over
//!    `--idle-seconds` (default 20, rounded up to whole 5 s intervals; 0 skips it) CPU % of one
//!    core and threads of the bench process and the Kafka JVM, and Kafka requests per second
//!    by API and by client. The summary repeats both per run.
//! 3. The ratio of each pipeline rate to the raw rates and to the fair ceiling
//!    min(raw produce ÷ 7, raw consume ÷ 12). Per message the pipeline produces 7 records
//!    (`messages.accepted`, `messages.validated`, `sender.<name>`, `messages.routed`,
//!    `messages.dispatched`, `messages.reports`, `reports.final`) and reads 12: 5 stages
//!    (validate, route, dispatch, report, callback), the report stage's key set following
//!    `reports.final`, and history 6 (it reads 8 topics; `messages.rejected` and
//!    `callback.retry.1` carry nothing when every message succeeds). Exactly once adds, per
//!    transaction, a commit marker on every partition written and an offset commit; those are
//!    not counted.
//!
//! 4. With `--rules both` (the default) the first mode runs once more with every validate rule
//!    on for the customer (prepaid charging with its ledger, a TPS limit above the offered
//!    rate, the duplicate window, bill codes and a keyword blocklist), and the ratio of the two
//!    rates is printed.
//!
//! usage: bench [--messages N] [--raw R] [--rate MSG_PER_S] [--mode exactly_once|at_least_once|both]
//!              [--rules off|on|both] [--idle-seconds S] [--callbacks-only]
//!        bench --path carrier [...]   (HTTP → SMPP → webhook; see `switchyard_tests::bench_carrier`)
//!
//! Without `--rate` every message is submitted at once: the end-to-end rate is how fast the
//! pipeline drains a backlog, and latency includes the queue. With `--rate` below that, the
//! latency is what a message sees at that steady load. `--mode` defaults to both.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use rdkafka::Message;
use rdkafka::consumer::Consumer;
use rdkafka::producer::{DeliveryFuture, FutureRecord, Producer as _};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use serde_json::json;
use switchyard_carrier_http::simulator::SimulatorSettings;
use switchyard_runtime::Producer;
use switchyard_runtime::metrics::StageTopic;
use switchyard_runtime::{Processing, Reader, Runtime, names, read_from_beginning};
use switchyard_schemas::{FinalReport, Submission, now_millis};
use switchyard_tests::bench_kafka_stats::{CostSummary, Idle, RunCost, measure_idle};
use switchyard_tests::bench_proc::Watched;
use switchyard_tests::bench_raw::{Raw, raw_rate};
use switchyard_tests::bench_stages::print_stage_latencies;
use switchyard_tests::pipeline::{API_KEY, Pipeline, RULED_SMS_PRICE, with_every_rule};
use switchyard_tests::{Broker, TestEnv, read_topic, sample_submission};

/// Records the pipeline produces per message (see the module comment).
const PRODUCES_PER_MESSAGE: f64 = 7.0;
/// Records the pipeline consumes per message (see the module comment).
const CONSUMES_PER_MESSAGE: f64 = 12.0;
/// Messages per HTTP batch request and per chunk of direct produce.
const CHUNK: usize = 100;
/// Client message ids of the warm-up messages start so (not timed, not counted).
const WARM_UP_PREFIX: &str = "warm-up-";

/// What to run.
struct Options {
    messages: usize,
    raw_records: usize,
    rate: Option<f64>,
    modes: Vec<Processing>,
    /// Only the callback figures (isolation, pending retries).
    callbacks_only: bool,
    /// Seconds of idle measured per run (0: none).
    idle_seconds: u64,
    /// Run with validate's rules off, on (every rule: prepaid, pacing limit, duplicates,
    /// bill codes, blocklist), or both (the first mode again with them on).
    rules: Rules,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rules {
    Off,
    On,
    Both,
}

impl Options {
    fn parse() -> anyhow::Result<Self> {
        let mut options = Options {
            messages: 4000,
            raw_records: 20_000,
            rate: None,
            modes: vec![Processing::ExactlyOnce, Processing::AtLeastOnce],
            callbacks_only: false,
            idle_seconds: 20,
            rules: Rules::Both,
        };
        let mut args = std::env::args().skip(1);
        while let Some(name) = args.next() {
            let mut value = || {
                args.next()
                    .ok_or_else(|| anyhow::anyhow!("{name} needs a value"))
            };
            match name.as_str() {
                "--messages" => options.messages = value()?.parse()?,
                "--raw" => options.raw_records = value()?.parse()?,
                "--rate" => {
                    let rate: f64 = value()?.parse()?;
                    anyhow::ensure!(rate > 0.0, "--rate must be positive");
                    options.rate = Some(rate);
                }
                "--callbacks-only" => options.callbacks_only = true,
                "--idle-seconds" => options.idle_seconds = value()?.parse()?,
                "--rules" => {
                    options.rules = match value()?.as_str() {
                        "off" => Rules::Off,
                        "on" => Rules::On,
                        "both" => Rules::Both,
                        other => anyhow::bail!("--rules is off, on or both, not {other}"),
                    }
                }
                "--mode" => {
                    let mode = value()?;
                    options.modes = if mode == "both" {
                        vec![Processing::ExactlyOnce, Processing::AtLeastOnce]
                    } else {
                        vec![mode.parse().map_err(anyhow::Error::msg)?]
                    };
                }
                other => anyhow::bail!(
                    "unknown argument {other}; usage: bench [--messages N] [--raw R] \
                     [--rate MSG_PER_S] [--mode exactly_once|at_least_once|both] [--rules off|on|both] \
                     [--idle-seconds S] [--callbacks-only]"
                ),
            }
        }
        anyhow::ensure!(
            options.messages > 0 && options.raw_records > 0,
            "--messages and --raw must be positive"
        );
        Ok(options)
    }
}

/// What one batch costs the broker outside and inside a transaction, in ms (p50, max).
struct BatchCost {
    plain: (i64, i64),
    acknowledged: (i64, i64),
    send_offsets: (i64, i64),
    commit: (i64, i64),
    transaction: (i64, i64),
}

/// Records per batch in `batch_cost`.
const COST_BATCH: usize = 100;
/// Batches timed in `batch_cost`.
const COST_ROUNDS: usize = 30;

fn p50_max(mut samples: Vec<i64>) -> (i64, i64) {
    samples.sort_unstable();
    (
        percentile(&samples, 0.5),
        samples.last().copied().unwrap_or(0),
    )
}

/// Time batches of 100 records of 300 B over 3 partitions, one after the other: produced and
/// acknowledged by the idempotent producer, then as a stage's transaction (begin, produce,
/// acknowledged, send the consumed offsets, commit) — the floor each exactly-once hop pays per
/// batch. Also warms up the transaction coordinator (a fresh broker creates and loads
/// `__transaction_state` on first use) before the first exactly-once run.
async fn batch_cost(env: &TestEnv) -> anyhow::Result<BatchCost> {
    let kafka = env.kafka();
    let topic = kafka.topic("bench.raw");
    let payload = vec![b'x'; 300];
    let send_batch = |producer: &Producer| -> anyhow::Result<Vec<DeliveryFuture>> {
        (0..COST_BATCH)
            .map(|i| {
                producer
                    .send_result(
                        FutureRecord::to(&topic)
                            .key(&format!("k{i}"))
                            .payload(&payload),
                    )
                    .map_err(|(e, _)| e.into())
            })
            .collect()
    };
    let plain_producer = kafka.producer()?;
    let mut plain = Vec::with_capacity(COST_ROUNDS);
    // Round 0 connects and gets the producer id; it is not counted.
    for round in 0..=COST_ROUNDS {
        let t0 = Instant::now();
        for delivery in send_batch(&plain_producer)? {
            delivery.await?.map_err(|(e, _)| e)?;
        }
        if round > 0 {
            plain.push(t0.elapsed().as_millis() as i64);
        }
    }

    // A group member, for the offsets a stage sends with its transaction.
    let consumer = kafka.group_consumer("bench.transactions")?;
    consumer.subscribe(&[topic.as_str()])?;
    tokio::time::timeout(Duration::from_secs(30), consumer.recv()).await??;
    let producer = kafka.transactional_producer("bench.transactions")?;
    let init = producer.clone();
    tokio::task::spawn_blocking(move || init.init_transactions(Duration::from_secs(60))).await??;
    let (mut acknowledged, mut send_offsets, mut commit, mut transaction) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    // Round 0 warms up and is not counted.
    for round in 0..=COST_ROUNDS {
        let t0 = Instant::now();
        producer.begin_transaction()?;
        for delivery in send_batch(&producer)? {
            delivery.await?.map_err(|(e, _)| e)?;
        }
        let t1 = Instant::now();
        let mut offsets = TopicPartitionList::new();
        offsets.add_partition_offset(&topic, 0, Offset::Offset(round as i64 + 1))?;
        let group = consumer
            .group_metadata()
            .ok_or_else(|| anyhow::anyhow!("no group metadata"))?;
        let p = producer.clone();
        tokio::task::spawn_blocking(move || {
            p.send_offsets_to_transaction(&offsets, &group, Duration::from_secs(30))
        })
        .await??;
        let t2 = Instant::now();
        let p = producer.clone();
        tokio::task::spawn_blocking(move || p.commit_transaction(Duration::from_secs(30)))
            .await??;
        let t3 = Instant::now();
        if round > 0 {
            let ms = |d: Duration| d.as_millis() as i64;
            acknowledged.push(ms(t1 - t0));
            send_offsets.push(ms(t2 - t1));
            commit.push(ms(t3 - t2));
            transaction.push(ms(t3 - t0));
        }
    }
    Ok(BatchCost {
        plain: p50_max(plain),
        acknowledged: p50_max(acknowledged),
        send_offsets: p50_max(send_offsets),
        commit: p50_max(commit),
        transaction: p50_max(transaction),
    })
}

fn submission(i: usize) -> Submission {
    let mut s = sample_submission(None, "acme", &format!("bench {i}"));
    s.client_message_id = Some(format!("direct-{i}"));
    s.to = format!("0101{i:07}");
    s
}

fn percentile(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn spread(sorted: &[i64]) -> String {
    format!(
        "p50 {:>5} ms   p99 {:>5} ms   max {:>5} ms",
        percentile(sorted, 0.5),
        percentile(sorted, 0.99),
        sorted.last().copied().unwrap_or(0)
    )
}

/// A final report as the bench's reader saw it.
struct Seen {
    client_message_id: String,
    /// When the reader received it (the report was committed and readable).
    seen_at: i64,
    /// When the report stage made it.
    done_at: i64,
}

/// Follow `reports.final` (read_committed) until `expected` distinct messages have a final
/// report; returns them and when the last arrived.
async fn read_final_reports(
    runtime: Runtime,
    reader: Reader,
    expected: usize,
) -> anyhow::Result<(Vec<Seen>, Instant)> {
    let mut seen = Vec::with_capacity(expected);
    let mut ids = HashSet::with_capacity(expected);
    let deadline = Instant::now() + Duration::from_secs(600);
    while ids.len() < expected {
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {} of {expected} final reports after 600 s",
            ids.len()
        );
        match tokio::time::timeout(Duration::from_secs(5), reader.recv()).await {
            Ok(Ok(message)) => {
                let seen_at = now_millis();
                let report: FinalReport = runtime
                    .codec
                    .decode(message.payload().unwrap_or_default())
                    .await?;
                if let Some(id) = report.client_message_id
                    && !id.starts_with(WARM_UP_PREFIX)
                    && ids.insert(id.clone())
                {
                    seen.push(Seen {
                        client_message_id: id,
                        seen_at,
                        done_at: report.done_at,
                    });
                }
            }
            Ok(Err(rdkafka::error::KafkaError::PartitionEOF(_))) | Err(_) => {}
            Ok(Err(e)) => return Err(e.into()),
        }
    }
    Ok((seen, Instant::now()))
}

/// Encode `submission` (schema subject: the physical topic) and hand it to `producer`.
async fn produce_direct(
    runtime: &Runtime,
    producer: &Producer,
    submission: &Submission,
) -> anyhow::Result<DeliveryFuture> {
    let topic = runtime.kafka.topic(names::ACCEPTED);
    let payload = runtime.codec.encode(&topic, submission).await?;
    let record = FutureRecord::to(&topic).key("acme").payload(&payload);
    Ok(producer.send_result(record).map_err(|(e, _)| e)?)
}

/// POST one batch of messages to the ingress.
async fn post_batch(
    http: &reqwest::Client,
    url: &str,
    body: Vec<serde_json::Value>,
) -> anyhow::Result<()> {
    let status = http
        .post(url)
        .bearer_auth(API_KEY)
        .json(&json!({"messages": body}))
        .send()
        .await?
        .status();
    anyhow::ensure!(status == 202, "ingress answered {status}");
    Ok(())
}

/// The HTTP body of message `i`.
fn http_message(to: &str, client_message_id: &str) -> serde_json::Value {
    json!({"channel": "sms", "to": to, "text": format!("bench {client_message_id}"), "client_message_id": client_message_id})
}

/// One message over HTTP and one produced directly, each through to its final report and
/// webhook: every stage has joined its group (and started its transactions) before the clock
/// starts.
async fn warm_up(pipeline: &Pipeline) -> anyhow::Result<()> {
    let runtime = &pipeline.stack.runtime;
    let http_id = format!("{WARM_UP_PREFIX}http");
    post_batch(
        &reqwest::Client::new(),
        &format!("{}/v1/messages", pipeline.ingress_url),
        vec![http_message("01019999999", &http_id)],
    )
    .await?;
    let mut direct = sample_submission(None, "acme", "warm-up");
    direct.client_message_id = Some(format!("{WARM_UP_PREFIX}direct"));
    let producer = runtime.producer()?;
    produce_direct(runtime, &producer, &direct)
        .await?
        .await?
        .map_err(|(e, _)| e)?;
    let reports = read_topic(&runtime.kafka, names::FINAL, 2, Duration::from_secs(120)).await?;
    anyhow::ensure!(
        reports.len() == 2,
        "warm-up: {} of 2 final reports",
        reports.len()
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while pipeline.inbox.len() < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Submit `messages`: chunks alternate between the HTTP ingress (one batch request, up to 4
/// in flight) and direct produce; with `rate`, chunks are paced to that many messages/s.
/// Returns when each message was submitted, by client message id.
async fn submit(
    pipeline: &Pipeline,
    messages: usize,
    rate: Option<f64>,
    started: Instant,
) -> anyhow::Result<HashMap<String, i64>> {
    let runtime = &pipeline.stack.runtime;
    let mut sent_at: HashMap<String, i64> = HashMap::with_capacity(messages);
    let http = reqwest::Client::new();
    let producer = runtime.producer()?;
    let url = format!("{}/v1/messages", pipeline.ingress_url);
    let mut requests = Vec::new();
    let mut deliveries = Vec::new();
    for chunk in 0..messages.div_ceil(CHUNK) {
        if let Some(rate) = rate {
            let due = started + Duration::from_secs_f64((chunk * CHUNK) as f64 / rate);
            tokio::time::sleep_until(due.into()).await;
        }
        let range = chunk * CHUNK..messages.min((chunk + 1) * CHUNK);
        if chunk % 2 == 0 {
            let body: Vec<_> = range
                .clone()
                .map(|i| http_message(&format!("0101{i:07}"), &format!("http-{i}")))
                .collect();
            for i in range {
                sent_at.insert(format!("http-{i}"), now_millis());
            }
            let (http, url) = (http.clone(), url.clone());
            requests.push(tokio::spawn(
                async move { post_batch(&http, &url, body).await },
            ));
            if requests.len() >= 4 {
                requests.remove(0).await??;
            }
        } else {
            for i in range {
                let mut submission = submission(i);
                submission.accepted_at = now_millis();
                sent_at.insert(format!("direct-{i}"), submission.accepted_at);
                deliveries.push(produce_direct(runtime, &producer, &submission).await?);
            }
        }
    }
    for delivery in deliveries {
        delivery.await?.map_err(|(e, _)| e)?;
    }
    for request in requests {
        request.await??;
    }
    Ok(sent_at)
}

/// Sum of the high watermarks of every partition of the physical `topic`.
fn high_watermarks(reader: &Reader, topic: &str) -> anyhow::Result<i64> {
    let metadata = reader.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let mut total = 0;
    for t in metadata.topics().iter().filter(|t| t.name() == topic) {
        for p in t.partitions() {
            total += reader
                .fetch_watermarks(topic, p.id(), Duration::from_secs(10))?
                .1;
        }
    }
    Ok(total)
}

/// The outputs of the exactly-once stages: (stage, logical topic).
fn transactional_outputs() -> Vec<(&'static str, String)> {
    vec![
        ("validate", names::VALIDATED.to_string()),
        ("route", names::ROUTED.to_string()),
        ("route", names::sender("skt-a")),
        ("route", names::sender("skt-b")),
        ("route", names::sender("kt-a")),
        ("report", names::FINAL.to_string()),
    ]
}

/// Per exactly-once output: records the stage produced and offsets the topic holds.
fn transaction_counts(runtime: &Runtime) -> anyhow::Result<Vec<(i64, i64)>> {
    let reader = &runtime.kafka.reader("bench.watermarks")?;
    transactional_outputs()
        .into_iter()
        .map(|(stage, topic)| {
            let records = runtime
                .metrics
                .produced
                .get_or_create(&StageTopic {
                    stage: stage.to_string(),
                    topic: topic.clone(),
                })
                .get() as i64;
            Ok((
                records,
                high_watermarks(reader, &runtime.kafka.topic(&topic))?,
            ))
        })
        .collect()
}

/// Exactly once: each committed transaction leaves one commit marker in every partition it
/// wrote, so offsets beyond the records are markers; records per marker is what a transaction
/// wrote per partition, i.e. the effective batch, and with every transaction writing all 3
/// partitions there were about markers ÷ 3 transactions.
fn print_transaction_markers(before: &[(i64, i64)], after: &[(i64, i64)]) {
    println!("  transactions                       records  markers  records/marker  ≈ txns");
    for (((stage, topic), (r0, o0)), (r1, o1)) in
        transactional_outputs().iter().zip(before).zip(after)
    {
        let records = r1 - r0;
        if records == 0 {
            continue;
        }
        let markers = (o1 - o0) - records;
        println!(
            "    {:<32} {records:>7}  {markers:>7}  {:>14.1}  {:>6.0}",
            format!("{stage} → {topic}"),
            records as f64 / markers.max(1) as f64,
            markers as f64 / 3.0
        );
    }
}

/// What one pipeline run measured.
struct Run {
    processing: Processing,
    rules: bool,
    rate: f64,
    readable: Vec<i64>,
    cost: CostSummary,
    idle: Option<Idle>,
}

impl Run {
    fn label(&self) -> String {
        let rules = if self.rules { "rules on" } else { "rules off" };
        format!("{} {rules}", self.processing.as_str())
    }
}

async fn run_pipeline(
    broker: &Broker,
    processing: Processing,
    rules: bool,
    options: &Options,
    raw: &Raw,
) -> anyhow::Result<Run> {
    let messages = options.messages;
    let env = broker.env();
    println!(
        "{processing}, validate's rules {} (namespace {})",
        if rules {
            "on: prepaid charging, a TPS limit, duplicates, bill codes, blocklist"
        } else {
            "off"
        },
        env.namespace.prefix().trim_end_matches('.')
    );
    let sim = SimulatorSettings {
        success_rate: 1.0,
        receipt_delay: Duration::ZERO,
    };
    let pipeline = Pipeline::start_reconfigured(
        env,
        &[],
        sim,
        processing,
        |config| {
            if rules {
                with_every_rule(config)
            } else {
                config
            }
        },
        |_| {},
    )
    .await?;
    let runtime = pipeline.stack.runtime.clone();
    if rules {
        credit_for(&runtime, messages).await?;
    }
    warm_up(&pipeline).await?;
    let mut watched = vec![Watched::this_process("bench process (every role)")];
    if let Some(pid) = broker.pid() {
        watched.push(Watched::other("Kafka JVM", pid as u32));
    }
    let idle = if options.idle_seconds > 0 {
        Some(
            measure_idle(
                &watched,
                &runtime.metrics,
                options.idle_seconds,
                "after the warm-up, before the run",
            )
            .await,
        )
    } else {
        None
    };
    let metrics_before = runtime.metrics.encode();
    // The bench's own readers are closed while the run's threads are counted.
    let transactions_before = transaction_counts(&runtime)?;
    let webhooks_before = pipeline.inbox.len();

    // Follow the final reports from before the first submit, so a report is timed when it
    // becomes readable, not when the bench gets round to it.
    let reader = runtime.kafka.reader("bench.final")?;
    read_from_beginning(&reader, &runtime.kafka.topic(names::FINAL))?;
    let reading = tokio::spawn(read_final_reports(runtime.clone(), reader, messages));

    let cost = RunCost::start(&watched, &runtime.metrics);
    let started = Instant::now();
    let sent_at = submit(&pipeline, messages, options.rate, started).await?;
    let submitted_in = started.elapsed();
    let (seen, finished) = reading.await??;
    let elapsed = finished.duration_since(started).as_secs_f64();

    let mut readable = Vec::with_capacity(messages);
    let mut written = Vec::with_capacity(messages);
    for report in &seen {
        if let Some(t0) = sent_at.get(&report.client_message_id) {
            readable.push(report.seen_at - t0);
            written.push(report.done_at - t0);
        }
    }
    readable.sort_unstable();
    written.sort_unstable();
    let rate = messages as f64 / elapsed;
    println!(
        "  pipeline      {rate:>8.0} msg/s end to end   ({messages} messages in {elapsed:.1} s; submitting took {:.1} s)",
        submitted_in.as_secs_f64()
    );
    println!(
        "  latency       submit → final report readable   {}",
        spread(&readable)
    );
    println!(
        "                submit → final report written    {}",
        spread(&written)
    );
    println!(
        "  ratio         pipeline / raw produce = {:.3}   pipeline / raw consume = {:.3}   pipeline / fair ceiling = {:.2}",
        rate / raw.produce_per_s,
        rate / raw.consume_per_s,
        rate / raw.fair_ceiling(PRODUCES_PER_MESSAGE, CONSUMES_PER_MESSAGE)
    );
    if options.rate.is_some() {
        println!(
            "                (paced: the rate is the load offered, not what the pipeline could do)"
        );
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while pipeline.inbox.len() < webhooks_before + messages && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let ended = cost.end(&watched);
    println!(
        "  webhooks      {} of {messages} signed webhooks received {:.1} s after the first submit",
        pipeline.inbox.len() - webhooks_before,
        started.elapsed().as_secs_f64()
    );
    // A stage records its latencies once its whole batch is done: let the last ones finish.
    tokio::time::sleep(Duration::from_secs(1)).await;
    print_stage_latencies(&metrics_before, &runtime.metrics.encode());
    if processing == Processing::ExactlyOnce {
        let transactions_after = transaction_counts(&runtime)?;
        print_transaction_markers(&transactions_before, &transactions_after);
    }
    let cost = ended
        .report(
            &watched,
            &runtime.metrics,
            messages,
            "last webhook",
            idle.as_ref(),
        )
        .await;
    drop(runtime);
    if tokio::time::timeout(Duration::from_secs(60), pipeline.stop())
        .await
        .is_err()
    {
        println!("  (the roles did not stop within 60 s; going on)");
    }
    Ok(Run {
        processing,
        rules,
        rate,
        readable,
        cost,
        idle,
    })
}

/// Credit acme enough for the run and wait until validate applied it.
async fn credit_for(runtime: &Runtime, messages: usize) -> anyhow::Result<()> {
    let amount = RULED_SMS_PRICE * (messages as i64 + 100);
    switchyard_config::balance::credit(
        runtime,
        &switchyard_config::balance::Credit {
            customer_id: "acme".into(),
            amount,
            reason: "bench".into(),
            request_id: "bench-credit".into(),
        },
    )
    .await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let rows = switchyard_config::balance::show(runtime, Some("acme")).await?;
        if rows.first().is_some_and(|r| r.balance >= amount) {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the bench credit was not applied"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn main() -> anyhow::Result<()> {
    // `--path carrier`: the carrier path (HTTP → SMPP → webhook), its own options.
    let carrier = std::env::args()
        .collect::<Vec<_>>()
        .windows(2)
        .any(|w| w[0] == "--path" && w[1] == "carrier");
    let carrier_options = if carrier {
        Some(switchyard_tests::bench_carrier::Options::parse(
            std::env::args().skip(1),
        )?)
    } else {
        None
    };
    let options = if carrier {
        None
    } else {
        Some(Options::parse()?)
    };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            "warn,rdkafka=error,librdkafka=error",
        ))
        .init();
    let broker = Broker::start()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(async {
        match (&options, &carrier_options) {
            (_, Some(carrier)) => switchyard_tests::bench_carrier::bench(&broker, carrier).await,
            (Some(options), None) => bench(&broker, options).await,
            (None, None) => Ok(()),
        }
    });
    // Whatever the roles left running (table followers are cancelled, not awaited) ends here,
    // and its Kafka clients close, while the broker still answers; then the broker is killed.
    runtime.shutdown_timeout(Duration::from_secs(10));
    drop(broker);
    result
}

async fn bench(broker: &Broker, options: &Options) -> anyhow::Result<()> {
    if options.callbacks_only {
        return switchyard_tests::bench_callbacks::run(broker).await;
    }
    let pace = options
        .rate
        .map_or("all at once".to_string(), |r| format!("paced at {r} msg/s"));
    let modes: Vec<_> = options.modes.iter().map(|m| m.as_str()).collect();
    println!(
        "switchyard bench: Apache Kafka (one KRaft node on {}), {} messages {pace} per mode ({}), {} raw records",
        broker.brokers(),
        options.messages,
        modes.join(", "),
        options.raw_records
    );
    let raw_env = broker.env();
    let raw = raw_rate(&raw_env, options.raw_records).await?;
    let cost = batch_cost(&raw_env).await?;
    println!(
        "raw broker      produce {:>8.0} rec/s   consume {:>8.0} rec/s   (300 B, 3 partitions, acks=all idempotent; group commit per 500)",
        raw.produce_per_s, raw.consume_per_s
    );
    let ms = |(p50, max): (i64, i64)| format!("{p50} ms (max {max})");
    println!(
        "raw batch       {COST_BATCH} records acknowledged: plain {}; in a transaction {} = acknowledged {} + send offsets {} + commit {}",
        ms(cost.plain),
        ms(cost.transaction),
        ms(cost.acknowledged),
        ms(cost.send_offsets),
        ms(cost.commit)
    );
    println!(
        "fair ceiling    {:>8.0} msg/s = min(raw produce ÷ {PRODUCES_PER_MESSAGE} produces, raw consume ÷ {CONSUMES_PER_MESSAGE} consumes per message)",
        raw.fair_ceiling(PRODUCES_PER_MESSAGE, CONSUMES_PER_MESSAGE)
    );
    println!(
        "                per message: produced to accepted, validated, sender.<name>, routed, dispatched, reports, final;"
    );
    println!(
        "                read by validate, route, dispatch, report, callback, report's key set on final, history ×6 (of its 8 topics)"
    );

    let mut runs = Vec::new();
    for &processing in &options.modes {
        println!();
        let rules = options.rules == Rules::On;
        runs.push(run_pipeline(broker, processing, rules, options, &raw).await?);
    }
    if options.rules == Rules::Both
        && let Some(&processing) = options.modes.first()
    {
        println!();
        runs.push(run_pipeline(broker, processing, true, options, &raw).await?);
    }
    println!();
    for run in &runs {
        println!(
            "summary         {:<24} {:>8.0} msg/s   readable p50 {} ms   p99 {} ms",
            run.label(),
            run.rate,
            percentile(&run.readable, 0.5),
            percentile(&run.readable, 0.99)
        );
        println!("                  cost  {}", run.cost.summary());
        if let Some(idle) = &run.idle {
            println!("                  idle  {}", idle.summary());
        }
    }
    if let [first, second, ..] = runs.as_slice()
        && first.rules == second.rules
    {
        println!(
            "                {} / {} = {:.2}",
            first.processing,
            second.processing,
            first.rate / second.rate
        );
    }
    if let (Some(off), Some(on)) = (
        runs.iter().find(|r| !r.rules),
        runs.iter().find(|r| r.rules),
    ) && off.processing == on.processing
    {
        println!(
            "                {} / {} = {:.2} (validate's rules cost {:.0}%)",
            on.label(),
            off.label(),
            on.rate / off.rate,
            (1.0 - on.rate / off.rate) * 100.0
        );
    }
    switchyard_tests::bench_callbacks::run(broker).await?;
    Ok(())
}
