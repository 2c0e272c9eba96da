//! Confluent's own Python client registers the Submission schema with our registry and produces
//! to `messages.accepted`; switchyard's codec decodes every record.

use std::process::Command;

use rdkafka::Message;
use std::time::Duration;

use switchyard_schemas::{Channel, Priority, Record, Submission};
use switchyard_tests::{Stack, read_topic, repo_root};

#[tokio::test(flavor = "multi_thread")]
async fn records_from_the_python_confluent_client_decode() -> anyhow::Result<()> {
    let stack = Stack::start(&[]).await?;
    let schema_file = tempfile::NamedTempFile::new()?;
    std::fs::write(schema_file.path(), &Submission::schema()?.json)?;
    let python = std::env::var("SWITCHYARD_PYTHON")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| repo_root().join(".venv/bin/python"));
    let output = Command::new(&python)
        .arg(repo_root().join("tests/python/produce_submission.py"))
        .arg(stack.env.brokers())
        .arg(stack.registry.url())
        .arg(schema_file.path())
        .arg("5")
        .arg(stack.env.topic("messages.accepted"))
        .output()
        .map_err(|e| anyhow::anyhow!("running {} (run `make setup`): {e}", python.display()))?;
    assert!(
        output.status.success(),
        "python producer failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );

    let messages = read_topic(
        &stack.runtime.kafka,
        "messages.accepted",
        5,
        Duration::from_secs(20),
    )
    .await?;
    assert_eq!(messages.len(), 5);
    let mut decoded = Vec::new();
    for message in &messages {
        assert_eq!(message.key(), Some(&b"acme"[..]));
        decoded.push(
            stack
                .runtime
                .codec
                .decode::<Submission>(message.payload().unwrap_or_default())
                .await?,
        );
    }
    decoded.sort_by_key(|s| s.accepted_at);
    let first = &decoded[0];
    assert_eq!(first.message_id.as_deref(), Some("py-0"));
    assert_eq!(first.channel, Channel::Kakao);
    assert_eq!(first.priority, Priority::Bulk);
    assert_eq!(
        first.text,
        "(광고) 주문 0 배송 시작\n무료수신거부 080-000-0000"
    );
    assert_eq!(
        first.fallback.as_ref().map(|f| f.channel),
        Some(Channel::Lms)
    );
    assert_eq!(first.expires_at, Some(1_900_000_000_000));
    assert_eq!(
        first.metadata.get("campaign").map(String::as_str),
        Some("fall")
    );
    assert_eq!(decoded[4].client_message_id.as_deref(), Some("order-4"));

    // The Python client registered the very schema switchyard uses: one version, our id.
    let bytes = stack
        .runtime
        .codec
        .encode("messages.accepted", first)
        .await?;
    let ours = u32::from_be_bytes(bytes[1..5].try_into()?);
    let theirs = u32::from_be_bytes(messages[0].payload().unwrap_or_default()[1..5].try_into()?);
    assert_eq!(ours, theirs);
    Ok(())
}
