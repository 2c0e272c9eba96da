//! A submission of customer B naming a client of customer A, produced straight to
//! `messages.accepted`: refused as `client_customer_mismatch`, its final report names no
//! client, and A's webhook never sees it, while A's own message still reaches A.

use std::time::Duration;

use rdkafka::Message;
use serde_json::json;
use switchyard_carrier_http::simulator::SimulatorSettings;
use switchyard_runtime::Output;
use switchyard_runtime::names::{ACCEPTED, FINAL, REJECTED};
use switchyard_schemas::{FinalReport, Rejection, ResultStatus};
use switchyard_tests::pipeline::{API_KEY, Pipeline};
use switchyard_tests::{read_all, sample_submission};

/// Customer `beta` and its client, added next to the test config's `acme`.
const BETA: &str = r#"
[[customers]]
id = "beta"
channels = ["sms"]

[[clients]]
id = "beta-web"
customer = "beta"
api_key = "sk-beta-key"
"#;

/// Every record of `topic` decoded as `T`.
async fn decoded<T: switchyard_schemas::Record>(
    pipeline: &Pipeline,
    topic: &str,
) -> anyhow::Result<Vec<T>> {
    let runtime = &pipeline.stack.runtime;
    let mut out = Vec::new();
    for message in read_all(&runtime.kafka, topic).await? {
        out.push(
            runtime
                .codec
                .decode(message.payload().unwrap_or_default())
                .await?,
        );
    }
    Ok(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cross_tenant_client_id_is_refused_and_never_reaches_the_other_customers_webhook()
-> anyhow::Result<()> {
    let pipeline = Pipeline::start(
        &[],
        SimulatorSettings {
            success_rate: 1.0,
            receipt_delay: Duration::from_millis(5),
        },
    )
    .await?;
    let runtime = &pipeline.stack.runtime;
    switchyard_config::apply(runtime, BETA, false, 1).await?;
    // Let the running stages' config tables see beta.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let mut cross = sample_submission(Some("cross-1"), "beta", "beta names acme's client");
    cross.client_id = Some("acme-web".into());
    runtime
        .publish("test", &[Output::new(ACCEPTED, "beta".to_string(), cross)])
        .await?;

    // The rejection and its final report.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let report = loop {
        let finals: Vec<FinalReport> = decoded(&pipeline, FINAL).await?;
        if let Some(r) = finals.into_iter().find(|r| r.message_id == "cross-1") {
            break r;
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "no final report for cross-1"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(report.status, ResultStatus::Rejected);
    assert_eq!(report.result_code, "client_customer_mismatch");
    assert_eq!(report.customer_id, "beta");
    assert_eq!(report.client_id, None, "the final report names no client");
    let rejections: Vec<Rejection> = decoded(&pipeline, REJECTED).await?;
    let rejection = rejections
        .iter()
        .find(|r| r.message_id == "cross-1")
        .ok_or_else(|| anyhow::anyhow!("no rejection for cross-1"))?;
    assert_eq!(rejection.submission.client_id, None);

    // A message of acme's own reaches acme's webhook; the cross-tenant one never does.
    let response = reqwest::Client::new()
        .post(format!("{}/v1/messages", pipeline.ingress_url))
        .bearer_auth(API_KEY)
        .json(&json!({"channel": "sms", "to": "01012345678", "text": "acme's own"}))
        .send()
        .await?;
    assert_eq!(response.status().as_u16(), 202);
    let own_id = response.json::<serde_json::Value>().await?["message_id"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("no message_id"))?
        .to_string();
    let ids = || -> Vec<String> {
        pipeline
            .inbox
            .all()
            .into_iter()
            .filter_map(|w| w.body.map(|b| b.message_id))
            .collect()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !ids().contains(&own_id) {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "acme's own message never reached its webhook"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        !ids().contains(&"cross-1".to_string()),
        "beta's rejection reached acme's webhook: {:?}",
        ids()
    );
    pipeline.stop().await;
    Ok(())
}
