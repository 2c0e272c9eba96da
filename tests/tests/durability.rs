//! The durable single-machine setup (`make up`'s Kafka log under .data/): topics, registered
//! schemas, records and committed offsets all survive a broker crash (kill -9) and restart.

use std::time::Duration;

use rdkafka::Message;
use rdkafka::consumer::{CommitMode, Consumer};
use serde_json::Value;
use switchyard_schemas::{Codec, Submission};
use switchyard_tests::{
    Broker, TestRegistry, apply_topics, committed_total, produce_raw, read_all, sample_submission,
};
use switchyard_topics::{ApplyOptions, Catalog, apply};

#[tokio::test(flavor = "multi_thread")]
async fn a_crashed_broker_keeps_topics_schemas_records_and_commits() -> anyhow::Result<()> {
    let broker = Broker::start()?;
    let env = broker.env();
    apply_topics(&env, &[]).await?;
    let registry = TestRegistry::start(&env).await?;
    let submission = sample_submission(Some("m-durable"), "acme", "kept");
    let bytes = Codec::new(&registry.url())?
        .encode(&env.topic("messages.accepted"), &submission)
        .await?;
    let runtime = switchyard_runtime::Runtime::new(env.kafka(), &registry.url())?;
    produce_raw(&runtime, "messages.accepted", "acme", &bytes).await?;
    {
        let consumer = env.kafka().group_consumer("durable")?;
        consumer.subscribe(&[env.topic("messages.accepted").as_str()])?;
        let message = tokio::time::timeout(Duration::from_secs(20), consumer.recv()).await??;
        consumer.commit_message(&message, CommitMode::Sync)?;
    }
    drop(runtime);
    registry.stop().await;

    broker.restart()?;

    let report = apply(
        &Catalog::in_namespace(Catalog::builtin()?.topics(&[]), &env.namespace),
        &ApplyOptions {
            brokers: env.brokers(),
            replication_factor: 1,
        },
    )
    .await?;
    assert!(report.is_clean(), "every topic is still there: {report}");
    let registry = TestRegistry::start(&env).await?;
    let latest: Value = reqwest::get(format!(
        "{}/subjects/{}-value/versions/latest",
        registry.url(),
        env.topic("messages.accepted")
    ))
    .await?
    .json()
    .await?;
    assert_eq!(
        latest["id"].as_u64(),
        Some(u64::from(u32::from_be_bytes(bytes[1..5].try_into()?)))
    );
    let records = read_all(&env.kafka(), "messages.accepted").await?;
    assert_eq!(records.len(), 1);
    let decoded: Submission = Codec::new(&registry.url())?
        .decode(records[0].payload().unwrap_or_default())
        .await?;
    assert_eq!(decoded, submission);
    assert_eq!(
        committed_total(&env.kafka(), "durable", "messages.accepted")?,
        1
    );
    Ok(())
}
