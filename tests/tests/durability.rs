//! The durable single-machine setup (`make up`'s sqlite broker): topics, registered schemas,
//! records and committed offsets all survive a broker restart.

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
async fn a_sqlite_broker_keeps_topics_schemas_records_and_commits_across_restarts()
-> anyhow::Result<()> {
    let mut broker = Broker::start_sqlite()?;
    apply_topics(&broker, &[]).await?;
    let registry = TestRegistry::start(&broker).await?;
    let submission = sample_submission(Some("m-durable"), "acme", "kept");
    let bytes = Codec::new(&registry.url())?
        .encode("messages.accepted", &submission)
        .await?;
    let runtime = switchyard_runtime::Runtime::new(broker.kafka(), &registry.url())?;
    produce_raw(&runtime, "messages.accepted", "acme", &bytes).await?;
    {
        let consumer = broker.kafka().group_consumer("durable")?;
        consumer.subscribe(&["messages.accepted"])?;
        let message = tokio::time::timeout(Duration::from_secs(20), consumer.recv()).await??;
        consumer.commit_message(&message, CommitMode::Sync)?;
    }
    drop(runtime);
    registry.stop().await;

    broker.restart()?;

    let report = apply(
        &Catalog::builtin()?.topics(&[]),
        &ApplyOptions {
            brokers: broker.brokers(),
            replication_factor: 1,
        },
    )
    .await?;
    assert!(report.is_clean(), "every topic is still there: {report}");
    let registry = TestRegistry::start(&broker).await?;
    let latest: Value = reqwest::get(format!(
        "{}/subjects/messages.accepted-value/versions/latest",
        registry.url()
    ))
    .await?
    .json()
    .await?;
    assert_eq!(
        latest["id"].as_u64(),
        Some(u64::from(u32::from_be_bytes(bytes[1..5].try_into()?)))
    );
    let records = read_all(&broker.kafka(), "messages.accepted").await?;
    assert_eq!(records.len(), 1);
    let decoded: Submission = Codec::new(&registry.url())?
        .decode(records[0].payload().unwrap_or_default())
        .await?;
    assert_eq!(decoded, submission);
    assert_eq!(
        committed_total(&broker.kafka(), "durable", "messages.accepted")?,
        1
    );
    Ok(())
}
