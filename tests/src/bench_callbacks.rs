//! The callback part of `make bench`: how much one customer's dead webhook endpoint slows
//! another customer's webhooks (p50/p99 from report to arrival, with and without the dead
//! endpoint), and the memory of the callback role while 100,000 retries wait in a tier.

use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;
use switchyard::pipeline::{Role, start};
use switchyard_runtime::names::{FINAL, callback_retry};
use switchyard_runtime::{CancellationToken, Output};
use switchyard_schemas::{CallbackAttempt, Channel, FinalReport, ResultStatus, now_millis};

use crate::pipeline::{SECRET, local_settings};
use crate::{Broker, Stack};

/// B's reports per run, and their pace.
const B_REPORTS: usize = 2_000;
const B_PER_SECOND: u64 = 500;
/// Retries left waiting in one tier for the memory figure.
const PENDING: usize = 100_000;

/// Customers acme (A) and beta (B), each with one client whose webhooks go to `a_url` / `b_url`
/// (B's signed with the test secret).
pub fn two_customer_config(a_url: &str, b_url: &str) -> String {
    format!(
        r#"
[[customers]]
id = "acme"
channels = ["sms"]

[[customers]]
id = "beta"
channels = ["sms"]

[[clients]]
id = "acme-web"
customer = "acme"
api_key = "sk-bench-a"
report_url = "{a_url}"

[[clients]]
id = "beta-web"
customer = "beta"
api_key = "sk-bench-b"
report_url = "{b_url}"
signing_secret = "{SECRET}"
"#
    )
}

/// The `i`th delivered final report of `customer`, naming no client.
pub fn final_report(customer: &str, i: usize) -> FinalReport {
    FinalReport {
        event_id: format!("evt-{customer}-{i}"),
        message_id: format!("m-{customer}-{i}"),
        customer_id: customer.into(),
        client_id: None,
        client_message_id: None,
        channel: Channel::Sms,
        to: "01012345678".into(),
        status: ResultStatus::Delivered,
        result_code: "0000".into(),
        result_text: "delivered".into(),
        carrier: None,
        sender: None,
        attempt: 1,
        submitted_at: None,
        done_at: now_millis(),
        trail: Vec::new(),
    }
}

/// A receiver that never answers (its calls time out).
async fn dead_receiver() -> anyhow::Result<String> {
    let app = Router::new().fallback(post(|| async {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        StatusCode::NO_CONTENT
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(url)
}

/// This process's resident memory in MiB (Linux).
fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn percentile(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// B's webhook latencies (ms, sorted), with A's reports interleaved when `dead_a` is set.
async fn b_latencies(broker: &Broker, dead_a: bool) -> anyhow::Result<Vec<i64>> {
    let stack = Stack::on(broker.env(), &[]).await?;
    let shutdown = CancellationToken::new();
    let a_url = dead_receiver().await?;
    let (b_addr, b_inbox) = switchyard_callback::receiver::serve(
        "127.0.0.1:0".parse()?,
        SECRET,
        false,
        shutdown.clone(),
    )
    .await?;
    switchyard_config::apply(
        &stack.runtime,
        &two_customer_config(&a_url, &format!("http://{b_addr}/")),
        false,
        1,
    )
    .await?;
    let dir = tempfile::tempdir()?;
    let mut settings = local_settings(dir.path());
    settings.callback_minute = Duration::from_secs(60);
    settings.webhooks.timeout = Some(Duration::from_secs(10));
    let running = start(&stack.runtime, &[Role::Callback], &settings, &shutdown).await?;

    let mut tick = tokio::time::interval(Duration::from_millis(1000 / B_PER_SECOND));
    for i in 0..B_REPORTS {
        tick.tick().await;
        let mut outputs = vec![Output::new(
            FINAL,
            format!("m-beta-{i}"),
            final_report("beta", i),
        )];
        if dead_a {
            outputs.push(Output::new(
                FINAL,
                format!("m-acme-{i}"),
                final_report("acme", i),
            ));
        }
        stack.runtime.publish("bench", &outputs).await?;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while b_inbox.len() < B_REPORTS && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut latencies: Vec<i64> = b_inbox
        .all()
        .iter()
        .filter_map(|r| r.body.as_ref().map(|b| r.at - b.done_at))
        .collect();
    latencies.sort_unstable();
    anyhow::ensure!(
        latencies.len() == B_REPORTS,
        "{} of {B_REPORTS} webhooks arrived",
        latencies.len()
    );
    shutdown.cancel();
    // Calls to the dead endpoint end at their timeout; the role waits for them.
    running.wait().await;
    Ok(latencies)
}

/// Resident memory before the callback role starts, with `PENDING` retries already queued in
/// tier 5 (21 minutes away), and twice after it started: the tier holds one record per
/// partition, the rest stay in Kafka.
async fn pending_memory(broker: &Broker) -> anyhow::Result<(f64, f64, f64)> {
    let stack = Stack::on(broker.env(), &[]).await?;
    let shutdown = CancellationToken::new();
    switchyard_config::apply(
        &stack.runtime,
        &two_customer_config("http://127.0.0.1:9/", "http://127.0.0.1:9/"),
        false,
        1,
    )
    .await?;
    let now = now_millis();
    let topic = callback_retry(5);
    for chunk in (0..PENDING).collect::<Vec<_>>().chunks(5_000) {
        let outputs: Vec<Output> = chunk
            .iter()
            .map(|&i| {
                Output::new(
                    topic.clone(),
                    format!("m-acme-{i}"),
                    CallbackAttempt {
                        report: final_report("acme", i),
                        report_url: "https://example.com/hook".into(),
                        retry: 5,
                        due_at: now + 21 * 60_000,
                        last_failure: "HTTP 503".into(),
                        first_failed_at: now,
                        failed_at: now,
                    },
                )
            })
            .collect();
        stack.runtime.publish("bench", &outputs).await?;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = rss_mib();
    let dir = tempfile::tempdir()?;
    let mut settings = local_settings(dir.path());
    settings.callback_minute = Duration::from_secs(60);
    let running = start(&stack.runtime, &[Role::Callback], &settings, &shutdown).await?;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let after = rss_mib();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let later = rss_mib();
    shutdown.cancel();
    running.wait().await;
    Ok((before, after, later))
}

/// Run both measurements and print them.
pub async fn run(broker: &Broker) -> anyhow::Result<()> {
    println!();
    println!(
        "callbacks       {B_REPORTS} reports of customer B at {B_PER_SECOND}/s, report → webhook arrival"
    );
    let alone = b_latencies(broker, false).await?;
    println!(
        "                B alone:                      p50 {:>4} ms   p99 {:>4} ms   max {:>5} ms",
        percentile(&alone, 0.5),
        percentile(&alone, 0.99),
        alone.last().copied().unwrap_or(0)
    );
    let shared = b_latencies(broker, true).await?;
    println!(
        "                B beside A's dead endpoint:   p50 {:>4} ms   p99 {:>4} ms   max {:>5} ms   (A: one report per B report, every call times out after 10 s)",
        percentile(&shared, 0.5),
        percentile(&shared, 0.99),
        shared.last().copied().unwrap_or(0)
    );
    println!(
        "                p99 slowed by {} ms",
        percentile(&shared, 0.99) - percentile(&alone, 0.99)
    );
    let (before, after, later) = pending_memory(broker).await?;
    println!(
        "pending retries {PENDING} queued in callbacks.retry.5, then the callback role started: RSS {before:.0} MiB before it, {after:.0} MiB 5 s after, {later:.0} MiB 10 s after"
    );
    Ok(())
}
