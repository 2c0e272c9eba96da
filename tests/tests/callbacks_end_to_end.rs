//! Report delivery end to end, every role running on the real broker (100 ms callback minute):
//! a client whose receiver is down for the whole schedule finds its report in the pull API
//! after the eleventh attempt, sees every attempt on the message, and an ack clears it; a replay
//! sends a client's reports again with their original event ids. Each on both history engines
//! (SQLite and CQL, `SWITCHYARD_TEST_CQL`).

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};
use switchyard_carrier_http::simulator::SimulatorSettings;
use switchyard_runtime::Processing;
use switchyard_tests::history_scenarios::{Engine, PipelineHistory};
use switchyard_tests::pipeline::{API_KEY, Pipeline, post_batch};
use switchyard_tests::processes::switchyard_bin;
use switchyard_tests::{TestEnv, free_port};

const DOWN_KEY: &str = "sk-receiver-down";

async fn get(http: &reqwest::Client, url: &str, key: &str) -> anyhow::Result<(u16, Value)> {
    let response = http.get(url).bearer_auth(key).send().await?;
    Ok((response.status().as_u16(), response.json().await?))
}

/// Each test once per history engine.
macro_rules! on_both_engines {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $test() -> anyhow::Result<()> {
                    super::$test(super::Engine::Sqlite).await
                }
            )*
        }
        mod cql {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $test() -> anyhow::Result<()> {
                    super::$test(super::Engine::Cql).await
                }
            )*
        }
    };
}

on_both_engines!(
    an_exhausted_report_is_pulled_with_its_attempts_and_acked,
    a_replay_sends_a_clients_reports_again_with_the_same_event_ids,
);

async fn an_exhausted_report_is_pulled_with_its_attempts_and_acked(
    engine: Engine,
) -> anyhow::Result<()> {
    let history = engine.for_pipeline()?;
    if history == PipelineHistory::Skipped {
        return Ok(());
    }
    // Nothing listens on this port: every webhook to it fails at once.
    let down = format!("http://127.0.0.1:{}/hook", free_port());
    let extra = format!(
        r#"
[[customers]]
id = "down"
channels = ["sms"]

[[clients]]
id = "down-web"
customer = "down"
api_key = "{DOWN_KEY}"
report_url = "{down}"
"#
    );
    let pipeline = Pipeline::start_configured(
        TestEnv::new()?,
        &[],
        SimulatorSettings::default(),
        Processing::default(),
        &extra,
        |settings| history.apply(settings),
    )
    .await?;
    let http = reqwest::Client::new();
    let base = pipeline.ingress_url.clone();
    let response = http
        .post(format!("{base}/v1/messages"))
        .bearer_auth(DOWN_KEY)
        .json(&json!({"channel": "sms", "to": "01012345678", "text": "hello"}))
        .send()
        .await?;
    assert_eq!(response.status(), 202);
    let id = response.json::<Value>().await?["message_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();

    // The whole schedule is 340 minutes: 34 s here.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    let mut listed = Value::Null;
    while tokio::time::Instant::now() < deadline {
        let (_, page) = get(&http, &format!("{base}/v1/reports"), DOWN_KEY).await?;
        if page["reports"][0]["callback_state"] == "exhausted" {
            listed = page;
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(listed["reports"][0]["message_id"], id.as_str(), "{listed}");

    let (status, message) = get(&http, &format!("{base}/v1/messages/{id}"), DOWN_KEY).await?;
    assert_eq!(status, 200);
    let attempts: BTreeMap<i64, &Value> = message["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["kind"] == "callback")
        .map(|e| (e["detail"]["attempt"].as_i64().unwrap_or(0), &e["detail"]))
        .collect();
    assert_eq!(
        attempts.keys().copied().collect::<Vec<_>>(),
        (1..=11).collect::<Vec<_>>(),
        "{message}"
    );
    for (n, detail) in &attempts {
        assert_eq!(detail["delivered"], false);
        assert_eq!(detail["next_due_at"].is_null(), *n == 11, "attempt {n}");
    }
    assert_eq!(attempts[&11]["exhausted"], true);

    // Another client sees nothing of it; the ack clears it.
    let (_, other) = get(&http, &format!("{base}/v1/reports"), API_KEY).await?;
    assert!(
        other["reports"]
            .as_array()
            .is_none_or(|r| r.iter().all(|r| r["message_id"] != id.as_str()))
    );
    let acked: Value = http
        .post(format!("{base}/v1/reports/ack"))
        .bearer_auth(DOWN_KEY)
        .json(&json!({"message_ids": [id]}))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(acked["acked"], json!([id]));
    let (_, page) = get(&http, &format!("{base}/v1/reports"), DOWN_KEY).await?;
    assert_eq!(page["reports"], json!([]), "{page}");
    pipeline.stop().await;
    Ok(())
}

async fn a_replay_sends_a_clients_reports_again_with_the_same_event_ids(
    engine: Engine,
) -> anyhow::Result<()> {
    let history = engine.for_pipeline()?;
    if history == PipelineHistory::Skipped {
        return Ok(());
    }
    let pipeline = Pipeline::start_configured(
        TestEnv::new()?,
        &[],
        SimulatorSettings::default(),
        Processing::default(),
        "",
        |settings| history.apply(settings),
    )
    .await?;
    let http = reqwest::Client::new();
    post_batch(&http, &pipeline.ingress_url, "replay", 0, 3).await?;
    let inbox = pipeline.inbox.clone();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while inbox.len() < 3 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(inbox.len(), 3);
    let first: Vec<String> = inbox.all().iter().map(|r| r.event_id.clone()).collect();

    let stack = &pipeline.stack;
    let mut command = Command::new(switchyard_bin()?);
    command
        .args(["--brokers", &stack.env.brokers()])
        .args(["--topic-prefix", stack.env.namespace.prefix()])
        .args(["--schema-registry-url", &stack.registry.url()])
        .args([
            "callbacks",
            "replay",
            "--client",
            "acme-web",
            "--from",
            "1h",
        ]);
    let output = tokio::task::spawn_blocking(move || command.output()).await??;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    assert!(stdout.contains("3 reports of acme-web queued"), "{stdout}");

    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while inbox.len() < 6 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let received = inbox.all();
    assert_eq!(received.len(), 6, "three, then the same three again");
    let mut again: Vec<String> = received[3..].iter().map(|r| r.event_id.clone()).collect();
    let mut first = first;
    first.sort();
    again.sort();
    assert_eq!(again, first, "replayed with the original event ids");
    assert!(received.iter().all(|r| r.signature_valid));

    // A client that does not exist is a clear error.
    let mut command = Command::new(switchyard_bin()?);
    command
        .args(["--brokers", &stack.env.brokers()])
        .args(["--topic-prefix", stack.env.namespace.prefix()])
        .args(["--schema-registry-url", &stack.registry.url()])
        .args(["callbacks", "replay", "--client", "nobody", "--from", "1h"]);
    let output = tokio::task::spawn_blocking(move || command.output()).await??;
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("no client \"nobody\""));
    pipeline.stop().await;
    Ok(())
}
