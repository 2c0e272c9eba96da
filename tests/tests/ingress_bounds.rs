//! Poison requests at the ingress on the real broker: a field over its bound (`to` of 500,000
//! digits, a 600 kB `bill_code` or `from`), a control character, a template alone on an SMS, a
//! key given twice: each is a 422 problem+json naming the field, and nothing is produced, not
//! even the valid messages of the same batch.

use std::time::Duration;

use serde_json::Value;
use switchyard::pipeline::Role;
use switchyard_carrier_http::simulator::SimulatorSettings;
use switchyard_runtime::names::ACCEPTED;
use switchyard_tests::pipeline::{API_KEY, Pipeline};
use switchyard_tests::read_all;

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

/// POST `body` as is; the status, content type and JSON body of the answer.
async fn post(pipeline: &Pipeline, body: String) -> anyhow::Result<(u16, String, Value)> {
    let response = reqwest::Client::new()
        .post(format!("{}/v1/messages", pipeline.ingress_url))
        .bearer_auth(API_KEY)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await?;
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let text = response.text().await?;
    Ok((
        status,
        content_type,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    ))
}

/// The (index, field) pairs a problem names.
fn fields(problem: &Value) -> Vec<(u64, String)> {
    problem["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            (
                e["index"].as_u64().unwrap_or(u64::MAX),
                e["field"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// What a request is, its body, and the (index, field) pairs its 422 names.
type Case = (&'static str, String, Vec<(u64, &'static str)>);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn poison_messages_get_422_naming_the_field_and_nothing_is_produced() -> anyhow::Result<()> {
    let pipeline = ingress_only().await?;
    let ok = r#"{"channel":"sms","to":"01012345678","text":"fine"}"#;
    let cases: Vec<Case> = vec![
        (
            "a to of 500,000 digits",
            format!(
                r#"{{"channel":"sms","to":"{}","text":"hi"}}"#,
                "1".repeat(500_000)
            ),
            vec![(0, "to")],
        ),
        (
            "a 600 kB bill_code",
            format!(
                r#"{{"channel":"sms","to":"01012345678","text":"hi","bill_code":"{}"}}"#,
                "B".repeat(600_000)
            ),
            vec![(0, "bill_code")],
        ),
        (
            "a 600 kB from",
            format!(
                r#"{{"channel":"sms","to":"01012345678","text":"hi","from":"{}"}}"#,
                "0".repeat(600_000)
            ),
            vec![(0, "from")],
        ),
        (
            "a text of one NUL",
            r#"{"channel":"sms","to":"01012345678","text":"\u0000"}"#.to_string(),
            vec![(0, "text")],
        ),
        (
            "an SMS of only a template",
            r#"{"channel":"sms","to":"01012345678","text":"","template_code":"T1"}"#.to_string(),
            vec![(0, "text")],
        ),
        (
            "to given twice",
            r#"{"channel":"sms","to":"+1","to":"01012345678","text":"hi"}"#.to_string(),
            vec![(0, "to")],
        ),
        (
            "a metadata key given twice, in a batch after a valid message",
            format!(
                r#"{{"messages":[{ok},{{"channel":"sms","to":"010","text":"x","metadata":{{"k":"1","k":"2"}}}}]}}"#
            ),
            vec![(1, "metadata.k")],
        ),
        (
            "an over-long fallback text after a valid message",
            format!(
                r#"{{"messages":[{ok},{{"channel":"kakao","to":"010","template_code":"T","fallback":{{"channel":"sms","text":"{}"}}}}]}}"#,
                "x".repeat(100_001)
            ),
            vec![(1, "fallback.text")],
        ),
    ];
    for (what, body, expected) in cases {
        let (status, content_type, problem) = post(&pipeline, body).await?;
        assert_eq!(status, 422, "{what}: {problem}");
        assert_eq!(content_type, "application/problem+json", "{what}");
        let expected: Vec<(u64, String)> = expected
            .into_iter()
            .map(|(i, f)| (i, f.to_string()))
            .collect();
        assert_eq!(fields(&problem), expected, "{what}: {problem}");
    }
    let kafka = &pipeline.stack.runtime.kafka;
    assert_eq!(
        read_all(kafka, ACCEPTED).await?.len(),
        0,
        "a refused request produced something"
    );
    // The same ingress accepts the valid message alone (so the zero above is not a dead
    // ingress), and a kakao message of only its template.
    let (status, _, answer) = post(&pipeline, ok.to_string()).await?;
    assert_eq!(status, 202, "{answer}");
    let kakao = r#"{"channel":"kakao","to":"01012345678","template_code":"T1"}"#;
    let (status, _, answer) = post(&pipeline, kakao.to_string()).await?;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(read_all(kafka, ACCEPTED).await?.len(), 2);
    pipeline.stop().await;
    Ok(())
}
