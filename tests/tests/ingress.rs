//! The ingress's limits and routes on the real broker: a message over the broker's record limit
//! and a body over the body limit are refused with 413 problem+json and nothing produced, even
//! for the other messages of a batch; a batch of 1,000 Korean LMS fits in one request; and
//! `/metrics` is not served on the ingress port; more than 1,000 messages get 422; and a GET right
//! after the 202 finds each accepted message (read your writes).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use switchyard::pipeline::Role;
use switchyard_carrier_http::simulator::SimulatorSettings;
use switchyard_history::HistoryStore;
use switchyard_ingress::Ingress;
use switchyard_ingress::api::MAX_BODY_BYTES;
use switchyard_runtime::names::ACCEPTED;
use switchyard_runtime::{CancellationToken, ConfigTables, KafkaSettings};
use switchyard_schemas::ApiClientConfig;
use switchyard_tests::pipeline::{API_KEY, Pipeline};
use switchyard_tests::{Stack, read_all};

/// Only the ingress: nothing downstream consumes what it accepts.
async fn ingress_only() -> anyhow::Result<Pipeline> {
    let others: Vec<Role> = Role::ALL
        .into_iter()
        .filter(|r| *r != Role::Ingress)
        .collect();
    Pipeline::start(
        &others,
        SimulatorSettings {
            success_rate: 1.0,
            receipt_delay: Duration::from_secs(60),
        },
    )
    .await
}

/// POST `body` to `/v1/messages` with the test client's key.
async fn post(pipeline: &Pipeline, body: Vec<u8>) -> anyhow::Result<reqwest::Response> {
    post_to(&pipeline.ingress_url, body).await
}

async fn post_to(url: &str, body: Vec<u8>) -> anyhow::Result<reqwest::Response> {
    Ok(reqwest::Client::new()
        .post(format!("{url}/v1/messages"))
        .bearer_auth(API_KEY)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await?)
}

/// An ingress of its own on the test broker whose records may be at most `limit` bytes: with
/// the default limit (1 MB) no message is too large any more, as the field bounds
/// (`switchyard_schemas::limits`) keep the largest one under it.
struct SmallRecords {
    url: String,
    kafka: KafkaSettings,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
    _stack: Stack,
}

impl SmallRecords {
    async fn start(limit: usize) -> anyhow::Result<Self> {
        let stack = Stack::start(&[]).await?;
        let mut runtime = stack.runtime.clone();
        runtime.kafka.max_record_bytes = limit;
        let dir = tempfile::tempdir()?;
        let history =
            HistoryStore::open(&format!("sqlite://{}", dir.path().join("h.db").display())).await?;
        let client = ApiClientConfig {
            client_id: "acme-web".into(),
            customer_id: "acme".into(),
            key_hash: switchyard_config::hash_api_key(API_KEY),
            report_url: None,
            signing_secret: None,
            signing_secret_previous: None,
            enabled: true,
            rate_limit_per_second: None,
        };
        let tables =
            ConfigTables::fixed(Vec::new(), vec![client], Vec::new(), Vec::new(), Vec::new());
        let ingress = Ingress {
            runtime,
            tables,
            history,
            limits: Arc::default(),
        };
        let shutdown = CancellationToken::new();
        let (addr, task) =
            switchyard_ingress::serve("127.0.0.1:0".parse()?, ingress, shutdown.clone()).await?;
        Ok(SmallRecords {
            url: format!("http://{addr}"),
            kafka: stack.runtime.kafka.clone(),
            shutdown,
            task,
            _dir: dir,
            _stack: stack,
        })
    }

    async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.task.await;
    }
}

/// Records of at most 200 kB: a text of 90,000 Hangul syllables (270 kB of UTF-8, within the
/// 100,000 characters `text` may have) does not fit.
const SMALL_RECORD_BYTES: usize = 200_000;

fn korean_sms(i: usize, syllables: usize) -> Value {
    json!({"channel": "sms", "to": format!("0101{i:07}"), "text": "가".repeat(syllables)})
}

/// The status, content type and problem body of a response.
async fn problem(response: reqwest::Response) -> anyhow::Result<(u16, String, Value)> {
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let text = response.text().await?;
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Ok((status, content_type, body))
}

/// An SMS of `bytes` ASCII characters.
fn sms(i: usize, bytes: usize) -> Value {
    json!({"channel": "sms", "to": format!("0101{i:07}"), "text": "a".repeat(bytes)})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_message_over_the_record_limit_gets_413_problem_json_and_nothing_is_produced()
-> anyhow::Result<()> {
    let ingress = SmallRecords::start(SMALL_RECORD_BYTES).await?;
    let response = post_to(&ingress.url, serde_json::to_vec(&korean_sms(0, 90_000))?).await?;
    let (status, content_type, body) = problem(response).await?;
    assert_eq!(status, 413, "{body}");
    assert_eq!(content_type, "application/problem+json");
    assert_eq!(body["type"], "https://switchyard.dev/problems/too-large");
    assert_eq!(body["status"], 413);

    assert_eq!(read_all(&ingress.kafka, ACCEPTED).await?.len(), 0);
    ingress.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_batch_with_one_oversized_message_produces_none_of_its_messages() -> anyhow::Result<()> {
    let ingress = SmallRecords::start(SMALL_RECORD_BYTES).await?;
    let kafka = &ingress.kafka;
    // The oversized one last: the small ones before it are encoded first, and still none of
    // them may reach the broker.
    let mut messages: Vec<Value> = (0..5).map(|i| sms(i, 10)).collect();
    messages.push(korean_sms(5, 90_000));
    let response = post_to(
        &ingress.url,
        serde_json::to_vec(&json!({"messages": messages}))?,
    )
    .await?;
    let (status, content_type, body) = problem(response).await?;
    assert_eq!(
        read_all(kafka, ACCEPTED).await?.len(),
        0,
        "none of the batch may be produced"
    );
    assert_eq!(status, 413, "{body}");
    assert_eq!(content_type, "application/problem+json");

    // The same batch without it is accepted whole.
    messages.pop();
    let response = post_to(
        &ingress.url,
        serde_json::to_vec(&json!({"messages": messages}))?,
    )
    .await?;
    assert_eq!(response.status(), 202);
    assert_eq!(read_all(kafka, ACCEPTED).await?.len(), 5);
    ingress.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_body_over_the_body_limit_gets_413_problem_json() -> anyhow::Result<()> {
    let pipeline = ingress_only().await?;
    let body = serde_json::to_vec(&sms(0, MAX_BODY_BYTES))?;
    assert!(body.len() > MAX_BODY_BYTES);

    let (status, content_type, problem_body) = problem(post(&pipeline, body).await?).await?;
    assert_eq!(status, 413, "{problem_body}");
    assert_eq!(content_type, "application/problem+json");
    assert_eq!(
        problem_body["type"],
        "https://switchyard.dev/problems/body-too-large"
    );

    assert_eq!(
        read_all(&pipeline.stack.runtime.kafka, ACCEPTED)
            .await?
            .len(),
        0
    );
    pipeline.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_korean_lms_of_two_thousand_bytes_fit_in_one_request() -> anyhow::Result<()> {
    let pipeline = ingress_only().await?;
    // 1,000 Hangul syllables: 2,000 bytes in EUC-KR (the LMS limit), 3,000 in UTF-8, and
    // 6,000 as JSON `\uXXXX` escapes, as encoders that keep to ASCII write them.
    let text: String = (0..1000u32)
        .map(|i| format!("\\u{:04x}", 0xAC00 + i % 11172))
        .collect();
    let messages: Vec<String> = (0..1000)
        .map(|i| {
            format!(
                r#"{{"channel":"lms","to":"0101{i:07}","subject":"공지","text":"{text}","client_message_id":"lms-{i}"}}"#
            )
        })
        .collect();
    let body = format!(r#"{{"messages":[{}]}}"#, messages.join(","));
    assert!(body.len() > 6_000_000, "{} bytes", body.len());

    let response = post(&pipeline, body.into_bytes()).await?;
    let status = response.status();
    let answer: Value = response.json().await?;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["messages"].as_array().map(Vec::len), Some(1000));
    assert_eq!(
        read_all(&pipeline.stack.runtime.kafka, ACCEPTED)
            .await?
            .len(),
        1000
    );
    pipeline.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn metrics_are_not_served_on_the_ingress_port() -> anyhow::Result<()> {
    let pipeline = ingress_only().await?;
    let http = reqwest::Client::new();
    let metrics = http
        .get(format!("{}/metrics", pipeline.ingress_url))
        .send()
        .await?;
    assert_eq!(metrics.status(), 404);
    // The ingress itself answers on that port.
    let health = http
        .get(format!("{}/healthz", pipeline.ingress_url))
        .send()
        .await?;
    assert_eq!(health.status(), 200);
    pipeline.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_bearer_scheme_is_case_insensitive() -> anyhow::Result<()> {
    let pipeline = ingress_only().await?;
    let http = reqwest::Client::new();
    for scheme in ["bearer", "BEARER"] {
        let response = http
            .post(format!("{}/v1/messages", pipeline.ingress_url))
            .header("authorization", format!("{scheme} {API_KEY}"))
            .json(&sms(0, 10))
            .send()
            .await?;
        assert_eq!(response.status().as_u16(), 202, "{scheme}");
    }
    let wrong = http
        .post(format!("{}/v1/messages", pipeline.ingress_url))
        .header("authorization", format!("Basic {API_KEY}"))
        .json(&sms(0, 10))
        .send()
        .await?;
    assert_eq!(wrong.status().as_u16(), 401);
    let kafka = &pipeline.stack.runtime.kafka;
    assert_eq!(read_all(kafka, ACCEPTED).await?.len(), 2);
    pipeline.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_get_right_after_the_202_finds_every_accepted_message() -> anyhow::Result<()> {
    // No history role runs: only the ingress itself can have put them in the history.
    let pipeline = ingress_only().await?;
    let messages: Vec<Value> = (0..3).map(|i| sms(i, 10)).collect();
    let response = post(
        &pipeline,
        serde_json::to_vec(&json!({"messages": messages}))?,
    )
    .await?;
    assert_eq!(response.status(), 202);
    let answer: Value = response.json().await?;
    let http = reqwest::Client::new();
    for accepted in answer["messages"].as_array().into_iter().flatten() {
        let id = accepted["message_id"].as_str().unwrap_or_default();
        let found = http
            .get(format!("{}/v1/messages/{id}", pipeline.ingress_url))
            .bearer_auth(API_KEY)
            .send()
            .await?;
        assert_eq!(found.status(), 200, "{id}");
        let view: Value = found.json().await?;
        assert_eq!(view["message_id"], id);
        assert_eq!(view["status"], "accepted");
        assert_eq!(view["events"].as_array().map(Vec::len), Some(1), "{view}");
    }
    pipeline.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn more_than_a_thousand_messages_get_422_naming_the_field() -> anyhow::Result<()> {
    let pipeline = ingress_only().await?;
    let messages: Vec<Value> = (0..1001).map(|i| sms(i, 10)).collect();
    let response = post(
        &pipeline,
        serde_json::to_vec(&json!({"messages": messages}))?,
    )
    .await?;
    let (status, content_type, body) = problem(response).await?;
    assert_eq!(status, 422, "{body}");
    assert_eq!(content_type, "application/problem+json");
    assert_eq!(body["errors"][0]["field"], "messages");
    assert_eq!(
        read_all(&pipeline.stack.runtime.kafka, ACCEPTED)
            .await?
            .len(),
        0
    );
    pipeline.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_over_its_rate_limit_gets_429_with_retry_after() -> anyhow::Result<()> {
    let others: Vec<Role> = Role::ALL
        .into_iter()
        .filter(|r| *r != Role::Ingress)
        .collect();
    let extra = r#"
[[clients]]
id = "acme-limited"
customer = "acme"
api_key = "sk-limited"
rate_limit_per_second = 5
"#;
    let pipeline = Pipeline::start_configured(
        switchyard_tests::TestEnv::new()?,
        &others,
        SimulatorSettings::default(),
        switchyard_runtime::Processing::default(),
        extra,
        |_| {},
    )
    .await?;
    let http = reqwest::Client::new();
    let send = |count: usize| {
        let messages: Vec<Value> = (0..count).map(|i| sms(i, 10)).collect();
        http.post(format!("{}/v1/messages", pipeline.ingress_url))
            .bearer_auth("sk-limited")
            .json(&json!({ "messages": messages }))
            .send()
    };
    // Two requests of 4 at once: the bucket holds 5, so one goes and one is refused, nothing
    // of it written, and told when to retry.
    let (one, two) = tokio::join!(send(4), send(4));
    let (mut accepted, mut refused) = (one?, two?);
    if accepted.status() != 202 {
        std::mem::swap(&mut accepted, &mut refused);
    }
    assert_eq!(accepted.status(), 202);
    assert_eq!(accepted.headers()["ratelimit-limit"], "5");
    assert_eq!(accepted.headers()["ratelimit-remaining"], "1");
    assert_eq!(refused.status(), 429);
    let retry_after: u64 = refused.headers()["retry-after"].to_str()?.parse()?;
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    let (status, content_type, body) = problem(refused).await?;
    assert_eq!(
        (status, content_type.as_str()),
        (429, "application/problem+json")
    );
    assert_eq!(body["type"], "https://switchyard.dev/problems/rate-limited");
    // More than the limit allows in any second is not worth retrying: 422.
    let (status, _, body) = problem(send(6).await?).await?;
    assert_eq!(status, 422, "{body}");
    // (The refill is unit-tested with an injected clock in `rate_limit.rs`.)
    assert_eq!(
        read_all(&pipeline.stack.runtime.kafka, ACCEPTED)
            .await?
            .len(),
        4,
        "the refused ones were not written"
    );
    // The test client has no limit.
    let unlimited = post(
        &pipeline,
        serde_json::to_vec(&json!({"messages": (0..50).map(|i| sms(i, 10)).collect::<Vec<_>>()}))?,
    )
    .await?;
    assert_eq!(unlimited.status(), 202);
    assert!(unlimited.headers().get("ratelimit-limit").is_none());
    pipeline.stop().await;
    Ok(())
}
