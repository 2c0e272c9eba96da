//! The history role on the real broker: input it cannot decode, or a record naming no message
//! (which no store can key), goes to the topic's dead-letter topic with the reason (original
//! bytes and key kept, the history stage named), and the history goes on with the records
//! after it.

use std::time::{Duration, Instant};

use rdkafka::Message;
use switchyard_history::{HistoryStore, run_history};
use switchyard_runtime::dead_letter::{
    KIND_HEADER, REASON_HEADER, SOURCE_TOPIC_HEADER, STAGE_HEADER, header_text,
};
use switchyard_runtime::{CancellationToken, names};
use switchyard_schemas::ReportAck;
use switchyard_tests::{Stack, produce_raw, read_topic, sample_submission};

/// The one dead letter of `topic`, checked: its bytes, key and headers (`kind`, a reason
/// containing `reason`).
async fn dead_letter_of(
    stack: &Stack,
    topic: &str,
    key: &str,
    payload: &[u8],
    (kind, reason): (&str, &str),
) -> anyhow::Result<()> {
    let dead = read_topic(
        &stack.runtime.kafka,
        &format!("deadletter.{topic}"),
        1,
        Duration::from_secs(60),
    )
    .await?;
    anyhow::ensure!(dead.len() == 1, "{topic}: {} dead letters", dead.len());
    let letter = &dead[0];
    anyhow::ensure!(letter.payload() == Some(payload), "{topic}: original bytes");
    anyhow::ensure!(
        letter.key() == Some(key.as_bytes()),
        "{topic}: original key"
    );
    let headers = letter
        .headers()
        .ok_or_else(|| anyhow::anyhow!("{topic}: no headers"))?;
    let header = |name| header_text(headers, name).unwrap_or_default();
    anyhow::ensure!(header(KIND_HEADER) == kind, "{}", header(KIND_HEADER));
    anyhow::ensure!(
        header(REASON_HEADER).contains(reason),
        "{topic}: reason {:?}",
        header(REASON_HEADER)
    );
    // One history stage reads every history topic.
    anyhow::ensure!(
        header(STAGE_HEADER) == "history",
        "{}",
        header(STAGE_HEADER)
    );
    anyhow::ensure!(header(SOURCE_TOPIC_HEADER).ends_with(topic));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_history_input_is_dead_lettered_with_its_reason() -> anyhow::Result<()> {
    let stack = Stack::start(&[]).await?;
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}", dir.path().join("history.db").display());
    let store = HistoryStore::open(&url).await?;

    // Not the wire format at all, and a wire-format header cut short; then a good record.
    let garbage = b"this is not avro".to_vec();
    let truncated = vec![0u8, 0, 0];
    produce_raw(&stack.runtime, names::ACCEPTED, "acme", &garbage).await?;
    produce_raw(&stack.runtime, names::FINAL, "m-final", &truncated).await?;
    // Well formed, but naming no message.
    let no_id = stack
        .runtime
        .codec
        .encode(
            names::REPORT_ACKS,
            &ReportAck {
                message_id: String::new(),
                customer_id: "acme".into(),
                client_id: "acme-web".into(),
                acked_at: 1,
            },
        )
        .await?;
    produce_raw(&stack.runtime, names::REPORT_ACKS, "acme", &no_id).await?;
    let good = stack
        .runtime
        .codec
        .encode(
            names::ACCEPTED,
            &sample_submission(Some("good-1"), "acme", "hello"),
        )
        .await?;
    produce_raw(&stack.runtime, names::ACCEPTED, "acme", &good).await?;

    let shutdown = CancellationToken::new();
    let history = tokio::spawn(run_history(
        stack.runtime.clone(),
        store.clone(),
        shutdown.clone(),
    ));
    let outcome = async {
        let undecodable = ("undecodable", "wire format");
        dead_letter_of(&stack, names::ACCEPTED, "acme", &garbage, undecodable).await?;
        dead_letter_of(&stack, names::FINAL, "m-final", &truncated, undecodable).await?;
        let no_message = ("invalid", "acked record without a message id");
        dead_letter_of(&stack, names::REPORT_ACKS, "acme", &no_id, no_message).await?;
        // The record after the bad one is kept: the role did not stop at it.
        let started = Instant::now();
        loop {
            if let Some(view) = store.message("good-1").await? {
                anyhow::ensure!(view.status == "accepted", "{view:?}");
                break;
            }
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(60),
                "good-1 never reached the history"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(())
    }
    .await;
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(30), history).await??;
    outcome
}
