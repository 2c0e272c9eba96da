//! The schema registry against the real broker: Rust's schema_registry_converter registers and
//! decodes through it, ids survive a restart, two instances agree, compatibility is enforced.

use std::time::Duration;

use serde_json::{Value, json};
use switchyard_schemas::{Channel, Codec, FinalReport, Record, ResultStatus, Submission};
use switchyard_tests::{TestEnv, TestRegistry, apply_topics, sample_submission};

fn submission(id: &str) -> Submission {
    let mut s = sample_submission(Some(id), "acme", "인증번호 123456");
    s.client_message_id = Some("c-1".into());
    s.from = Some("0212345678".into());
    s.accepted_at = 1_700_000_000_000;
    s
}

fn report() -> FinalReport {
    FinalReport {
        event_id: "e".into(),
        message_id: "m".into(),
        customer_id: "acme".into(),
        client_id: None,
        client_message_id: None,
        channel: Channel::Sms,
        to: "010".into(),
        status: ResultStatus::Delivered,
        result_code: "0000".into(),
        result_text: "delivered".into(),
        carrier: Some("skt".into()),
        sender: None,
        attempt: 1,
        submitted_at: None,
        done_at: 1,
        trail: Vec::new(),
    }
}

async fn latest(http: &reqwest::Client, url: &str, subject: &str) -> anyhow::Result<Value> {
    Ok(http
        .get(format!("{url}/subjects/{subject}/versions/latest"))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?)
}

#[tokio::test(flavor = "multi_thread")]
async fn ids_survive_a_restart_and_codec_roundtrips() -> anyhow::Result<()> {
    let broker = TestEnv::new()?;
    apply_topics(&broker, &[]).await?;
    let http = reqwest::Client::new();

    let registry = TestRegistry::start(&broker).await?;
    let codec = Codec::new(&registry.url())?;
    let bytes = codec
        .encode("messages.accepted", &submission("m-1"))
        .await?;
    assert_eq!(bytes[0], 0, "magic byte");
    let id = u32::from_be_bytes(bytes[1..5].try_into()?);
    codec.encode("reports.final", &report()).await?;
    let decoded: Submission = codec.decode(&bytes).await?;
    assert_eq!(decoded, submission("m-1"));
    let before = latest(&http, &registry.url(), "messages.accepted-value").await?;
    assert_eq!(before["id"], json!(id));
    registry.stop().await;

    // A new instance rebuilds the same state from _schemas.
    let restarted = TestRegistry::start(&broker).await?;
    let after = latest(&http, &restarted.url(), "messages.accepted-value").await?;
    assert_eq!(after, before);
    let subjects: Vec<String> = http
        .get(format!("{}/subjects", restarted.url()))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(
        subjects,
        vec!["messages.accepted-value", "reports.final-value"]
    );
    // Decoding by id works on the new instance with a fresh codec (no cache).
    let fresh = Codec::new(&restarted.url())?;
    assert_eq!(fresh.decode::<Submission>(&bytes).await?, submission("m-1"));
    // The same schema registered again keeps its id; a new subject with it reuses the id.
    let again = fresh
        .encode("messages.accepted", &submission("m-2"))
        .await?;
    assert_eq!(u32::from_be_bytes(again[1..5].try_into()?), id);
    let other = fresh.encode("fixture.copy", &submission("m-3")).await?;
    assert_eq!(
        u32::from_be_bytes(other[1..5].try_into()?),
        id,
        "same schema, same id across subjects"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn two_instances_agree() -> anyhow::Result<()> {
    let broker = TestEnv::new()?;
    apply_topics(&broker, &[]).await?;
    let a = TestRegistry::start(&broker).await?;
    let b = TestRegistry::start(&broker).await?;
    let http = reqwest::Client::new();
    let schema = Submission::schema()?.json.clone();
    let mut ids = Vec::new();
    // Alternate instances: each must see the other's writes before assigning numbers.
    for (i, registry) in [&a, &b, &a, &b].into_iter().enumerate() {
        let text = if i == 0 || i == 3 {
            schema.clone()
        } else {
            r#"{"type":"string"}"#.to_string()
        };
        let body = json!({"schema": text});
        let answer: Value = http
            .post(format!("{}/subjects/s{i}-value/versions", registry.url()))
            .header("Content-Type", "application/vnd.schemaregistry.v1+json")
            .body(body.to_string())
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        ids.push(answer["id"].as_u64().expect("id"));
    }
    // A schema keeps its id whichever instance registers it under whichever subject.
    assert_eq!(ids, vec![1, 2, 2, 1]);
    tokio::time::sleep(Duration::from_millis(200)).await;
    for registry in [&a, &b] {
        let schema_2: Value = http
            .get(format!("{}/schemas/ids/2", registry.url()))
            .send()
            .await?
            .json()
            .await?;
        assert_eq!(schema_2["schema"], json!(r#"{"type":"string"}"#));
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn compatibility_is_enforced_and_configurable() -> anyhow::Result<()> {
    let broker = TestEnv::new()?;
    apply_topics(&broker, &[]).await?;
    let registry = TestRegistry::start(&broker).await?;
    let url = registry.url();
    let http = reqwest::Client::new();
    let post = |path: String, schema: &str| {
        http.post(format!("{url}{path}"))
            .header("Content-Type", "application/vnd.schemaregistry.v1+json")
            .body(json!({"schema": schema}).to_string())
            .send()
    };
    let v1 = r#"{"type":"record","name":"R","fields":[{"name":"a","type":"string"}]}"#;
    let v2_ok = r#"{"type":"record","name":"R","fields":[{"name":"a","type":"string"},{"name":"b","type":"int","default":0}]}"#;
    let v2_bad = r#"{"type":"record","name":"R","fields":[{"name":"a","type":"string"},{"name":"c","type":"int"}]}"#;

    let global: Value = http
        .get(format!("{url}/config"))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(global, json!({"compatibilityLevel": "BACKWARD"}));
    assert_eq!(
        post("/subjects/t-value/versions".into(), v1)
            .await?
            .status(),
        200
    );

    let check: Value = post(
        "/compatibility/subjects/t-value/versions/latest?verbose=true".into(),
        v2_bad,
    )
    .await?
    .json()
    .await?;
    assert_eq!(check["is_compatible"], json!(false));
    assert!(
        check["messages"][0]
            .as_str()
            .unwrap_or_default()
            .contains("cannot read"),
        "{check}"
    );
    let refused = post("/subjects/t-value/versions".into(), v2_bad).await?;
    assert_eq!(refused.status(), 409);
    let error: Value = refused.json().await?;
    assert_eq!(error["error_code"], json!(409));

    let check: Value = post(
        "/compatibility/subjects/t-value/versions/latest".into(),
        v2_ok,
    )
    .await?
    .json()
    .await?;
    assert_eq!(check, json!({"is_compatible": true}));
    let registered: Value = post("/subjects/t-value/versions".into(), v2_ok)
        .await?
        .json()
        .await?;
    assert_eq!(registered["version"], json!(2));

    // With NONE on the subject, the incompatible schema registers.
    let put = http
        .put(format!("{url}/config/t-value"))
        .header("Content-Type", "application/vnd.schemaregistry.v1+json")
        .body(r#"{"compatibility":"NONE"}"#)
        .send()
        .await?;
    assert_eq!(put.status(), 200);
    let subject_config: Value = http
        .get(format!("{url}/config/t-value"))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(subject_config, json!({"compatibilityLevel": "NONE"}));
    assert_eq!(
        post("/subjects/t-value/versions".into(), v2_bad)
            .await?
            .status(),
        200
    );
    let versions: Vec<u32> = http
        .get(format!("{url}/subjects/t-value/versions"))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(versions, vec![1, 2, 3]);

    // Errors are Confluent-shaped.
    let missing = http
        .get(format!("{url}/subjects/nope/versions/latest"))
        .send()
        .await?;
    assert_eq!(missing.status(), 404);
    let error: Value = missing.json().await?;
    assert_eq!(error["error_code"], json!(40401));
    let invalid = post("/subjects/t-value/versions".into(), "{not json").await?;
    assert_eq!(invalid.status(), 422);
    let unknown_id = http.get(format!("{url}/schemas/ids/999")).send().await?;
    assert_eq!(unknown_id.status(), 404);
    Ok(())
}
