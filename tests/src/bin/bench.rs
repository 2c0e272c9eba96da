//! `make bench`: the pipeline's end-to-end throughput and latency next to the broker's raw rate,
//! measured in the same run on the same broker.
//!
//! 1. Raw: produce R records of 300 bytes (idempotent producer, acks=all) to a 3-partition topic,
//!    then consume them in a group committing every 500 — the ceiling every hop shares.
//! 2. Pipeline: every role (as `switchyard up`), the carrier simulator answering at once; N
//!    messages, half over HTTP (batches of 100, 4 requests in flight), half produced directly to
//!    `messages.accepted`; wait for every final report.
//!
//! usage: bench [--messages N] [--raw R] [--storage sqlite|memory] [--rate MSG_PER_S]
//!
//! Without `--rate` every message is submitted at once: the end-to-end rate is how fast the
//! pipeline drains a backlog, and latency includes the queue. With `--rate` below that, the
//! latency is what a message sees at that steady load.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rdkafka::Message;
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::producer::FutureRecord;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use serde_json::json;
use switchyard_carrier_http::simulator::SimulatorSettings;
use switchyard_schemas::{FinalReport, Submission, now_millis};
use switchyard_tests::pipeline::{API_KEY, Pipeline};
use switchyard_tests::{Broker, TestEnv, apply_topics, sample_submission};

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

struct Raw {
    produce_per_s: f64,
    consume_per_s: f64,
}

async fn raw_rate(env: &TestEnv, records: usize) -> anyhow::Result<Raw> {
    apply_topics(env, &["bench.raw"]).await?;
    let kafka = env.kafka();
    let topic = kafka.topic("bench.raw");
    let producer = kafka.producer()?;
    let payload = vec![b'x'; 300];
    let started = Instant::now();
    let mut pending = Vec::with_capacity(records);
    for i in 0..records {
        let key = format!("k{i}");
        loop {
            match producer.send_result(FutureRecord::to(&topic).key(&key).payload(&payload)) {
                Ok(delivery) => {
                    pending.push(delivery);
                    break;
                }
                Err((_, _)) => tokio::time::sleep(Duration::from_millis(1)).await,
            }
        }
    }
    for delivery in pending {
        delivery.await?.map_err(|(e, _)| e)?;
    }
    let produce_per_s = records as f64 / started.elapsed().as_secs_f64();

    let consumer = kafka.group_consumer("bench.raw")?;
    consumer.subscribe(&[topic.as_str()])?;
    let started = Instant::now();
    let mut offsets: HashMap<i32, i64> = HashMap::new();
    for n in 1..=records {
        let message = consumer.recv().await?;
        offsets.insert(message.partition(), message.offset() + 1);
        if n % 500 == 0 || n == records {
            let mut list = TopicPartitionList::new();
            for (partition, offset) in &offsets {
                list.add_partition_offset("bench.raw", *partition, Offset::Offset(*offset))?;
            }
            consumer.commit(&list, CommitMode::Async)?;
        }
    }
    let consume_per_s = records as f64 / started.elapsed().as_secs_f64();
    Ok(Raw {
        produce_per_s,
        consume_per_s,
    })
}

fn submission(i: usize) -> Submission {
    let mut s = sample_submission(None, "acme", &format!("bench {i}"));
    s.client_message_id = Some(format!("direct-{i}"));
    s.to = format!("0101{i:07}");
    s
}

/// Per stage: records consumed and mean seconds from receipt to acknowledged outputs.
fn print_stage_latencies(metrics: &str) {
    let mut sums: HashMap<String, (f64, f64)> = HashMap::new();
    for line in metrics.lines() {
        let Some((name, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        let stage = name
            .split("stage=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap_or_default()
            .to_string();
        if name.starts_with("switchyard_processing_latency_seconds_sum") {
            sums.entry(stage).or_default().0 = value;
        } else if name.starts_with("switchyard_processing_latency_seconds_count") {
            sums.entry(stage).or_default().1 = value;
        }
    }
    let mut stages: Vec<_> = sums.into_iter().filter(|(_, (_, n))| *n > 0.0).collect();
    stages.sort_by(|a, b| a.0.cmp(&b.0));
    println!("stages        records  mean ms (receipt → outputs acknowledged)");
    for (stage, (sum, count)) in stages {
        println!("  {stage:<34} {count:>7.0}  {:>7.1}", sum / count * 1000.0);
    }
}

fn percentile(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let messages: usize = arg(&args, "--messages")
        .and_then(|n| n.parse().ok())
        .unwrap_or(4000);
    let raw_records: usize = arg(&args, "--raw")
        .and_then(|n| n.parse().ok())
        .unwrap_or(20_000);
    let storage = arg(&args, "--storage").unwrap_or_else(|| "sqlite".into());
    let rate: Option<f64> = arg(&args, "--rate").and_then(|r| r.parse().ok());
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("warn,rdkafka=error"))
        .init();

    let broker = Broker::start()?;
    let pace = rate.map_or("all at once".to_string(), |r| format!("paced at {r} msg/s"));
    println!(
        "switchyard bench: broker Tansu ({storage} storage), {messages} messages {pace}, {raw_records} raw records"
    );
    let raw = raw_rate(&broker.env(), raw_records).await?;
    println!(
        "raw broker    produce {:>9.0} rec/s   consume {:>9.0} rec/s   (300 B, 3 partitions)",
        raw.produce_per_s, raw.consume_per_s
    );

    let sim = SimulatorSettings {
        success_rate: 1.0,
        receipt_delay: Duration::ZERO,
    };
    let pipeline = Pipeline::start_on(broker.env(), &[], sim).await?;
    let runtime = pipeline.stack.runtime.clone();
    let mut sent_at: HashMap<String, i64> = HashMap::new();

    // Chunks of 100 messages alternate between the HTTP ingress (one batch request, up to 4
    // in flight) and direct produce; with --rate, chunks are paced to that many messages/s.
    let started = Instant::now();
    let http = reqwest::Client::new();
    let producer = runtime.producer()?;
    let accepted_topic = runtime.kafka.topic("messages.accepted");
    let url = format!("{}/v1/messages", pipeline.ingress_url);
    let mut requests = Vec::new();
    let mut deliveries = Vec::new();
    for chunk in 0..messages.div_ceil(100) {
        if let Some(rate) = rate {
            let due = started + Duration::from_secs_f64(chunk as f64 * 100.0 / rate);
            tokio::time::sleep_until(due.into()).await;
        }
        let range = chunk * 100..messages.min(chunk * 100 + 100);
        if chunk % 2 == 0 {
            let body: Vec<_> = range
                .clone()
                .map(|i| json!({"channel": "sms", "to": format!("0101{i:07}"), "text": format!("bench {i}"), "client_message_id": format!("http-{i}")}))
                .collect();
            for i in range {
                sent_at.insert(format!("http-{i}"), now_millis());
            }
            let (http, url) = (http.clone(), url.clone());
            requests.push(tokio::spawn(async move {
                http.post(url)
                    .bearer_auth(API_KEY)
                    .json(&json!({"messages": body}))
                    .send()
                    .await
                    .map(|r| r.status())
            }));
            if requests.len() >= 4 {
                let status = requests.remove(0).await??;
                anyhow::ensure!(status == 202, "ingress answered {status}");
            }
        } else {
            for i in range {
                let mut submission = submission(i);
                submission.accepted_at = now_millis();
                sent_at.insert(format!("direct-{i}"), submission.accepted_at);
                let payload = runtime
                    .codec
                    .encode("messages.accepted", &submission)
                    .await?;
                let record = FutureRecord::to(&accepted_topic)
                    .key("acme")
                    .payload(&payload);
                deliveries.push(producer.send_result(record).map_err(|(e, _)| e)?);
            }
        }
    }
    for delivery in deliveries {
        delivery.await?.map_err(|(e, _)| e)?;
    }
    for request in requests {
        let status = request.await??;
        anyhow::ensure!(status == 202, "ingress answered {status}");
    }
    let submitted_in = started.elapsed();

    let reader = runtime.kafka.reader("bench.final")?;
    let mut assignment = TopicPartitionList::new();
    for partition in 0..3 {
        assignment.add_partition_offset("reports.final", partition, Offset::Beginning)?;
    }
    reader.assign(&assignment)?;
    let mut latencies = Vec::with_capacity(messages);
    let deadline = Instant::now() + Duration::from_secs(600);
    while latencies.len() < messages {
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {} of {messages} final reports",
            latencies.len()
        );
        match tokio::time::timeout(Duration::from_secs(5), reader.recv()).await {
            Ok(Ok(message)) => {
                let report: FinalReport = runtime
                    .codec
                    .decode(message.payload().unwrap_or_default())
                    .await?;
                if let Some(t0) = report
                    .client_message_id
                    .as_ref()
                    .and_then(|c| sent_at.get(c))
                {
                    latencies.push(report.done_at - t0);
                }
            }
            Ok(Err(rdkafka::error::KafkaError::PartitionEOF(_))) | Err(_) => {}
            Ok(Err(e)) => return Err(e.into()),
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let achieved = messages as f64 / elapsed;
    // Each message is produced to 7 topics (accepted, validated, routed, sender, dispatched,
    // reports, final) and consumed 13 times (5 stages + 8 history readers).
    let ceiling = (raw.produce_per_s / 7.0).min(raw.consume_per_s / 13.0);
    let rate = achieved;
    println!(
        "pipeline      {rate:>9.0} msg/s end to end   ({messages} messages in {elapsed:.1} s; submitting took {:.1} s)",
        submitted_in.as_secs_f64()
    );
    println!(
        "latency       accept → final report   p50 {} ms   p99 {} ms   max {} ms",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or(0)
    );
    println!(
        "ratio         pipeline / raw produce = {:.3}   pipeline / raw consume = {:.3}",
        rate / raw.produce_per_s,
        rate / raw.consume_per_s
    );
    println!(
        "              pipeline / fair ceiling (raw produce ÷ 7 topics, raw consume ÷ 13 reads) = {:.2}  ({ceiling:.0} msg/s)",
        rate / ceiling
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    while pipeline.inbox.len() < messages && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!(
        "webhooks      {} of {messages} signed webhooks received {:.1} s after the first submit",
        pipeline.inbox.len(),
        started.elapsed().as_secs_f64()
    );
    print_stage_latencies(&runtime.metrics.encode());
    drop((reader, producer, runtime));
    pipeline.stop().await;
    Ok(())
}
