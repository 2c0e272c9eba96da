//! The dispatch role on the real broker against a carrier that accepts (200) with an answer the
//! dispatcher cannot read: the message is submitted exactly once and recorded as submitted with
//! its carrier id unknown, never retried into a second SMS.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::routing::post;
use rdkafka::Message;
use switchyard::pipeline::{Role, start};
use switchyard_runtime::names::{DISPATCHED, sender};
use switchyard_runtime::{CancellationToken, Output};
use switchyard_schemas::{DispatchOutcome, DispatchRequest, DispatchStatus, ValidatedMessage};
use switchyard_tests::{Stack, read_all, sample_submission};

/// A carrier that accepts every submit with a body that is not JSON, counting the submits.
async fn garbage_carrier() -> anyhow::Result<(String, Arc<AtomicUsize>)> {
    let hits = Arc::new(AtomicUsize::new(0));
    let seen = hits.clone();
    let app = Router::new().route(
        "/submit",
        post(move || {
            let seen = seen.clone();
            async move {
                seen.fetch_add(1, Ordering::SeqCst);
                "OK, thanks! <b>queued</b>"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/submit", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((url, hits))
}

fn request() -> DispatchRequest {
    let submission = sample_submission(Some("m-once"), "acme", "hello once");
    DispatchRequest {
        message_id: "m-once".into(),
        customer_id: "acme".into(),
        carrier: "skt".into(),
        sender_group: "skt-direct".into(),
        sender: "skt-a".into(),
        attempt: 1,
        message: ValidatedMessage {
            message_id: "m-once".into(),
            customer_id: "acme".into(),
            submission,
            encoding: "euc-kr".into(),
            segments: 1,
            validated_at: 2,
            upgraded_from: None,
        },
        trail: vec![],
        routed_at: 3,
        prefer_group: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_submit_accepted_with_an_unreadable_answer_is_sent_once_and_recorded_submitted()
-> anyhow::Result<()> {
    let stack = Stack::start(&[]).await?;
    let runtime = &stack.runtime;
    let (endpoint, hits) = garbage_carrier().await?;
    let config = format!(
        r#"
[[customers]]
id = "acme"
channels = ["sms"]

[[senders]]
name = "skt-a"
group = "skt-direct"
channel = "sms"
carriers = ["skt"]
endpoint = "{endpoint}"
"#
    );
    switchyard_config::apply(runtime, &config, false, 1).await?;
    runtime
        .publish("test", &[Output::new(sender("skt-a"), "m-once", request())])
        .await?;

    let shutdown = CancellationToken::new();
    let history = tempfile::tempdir()?;
    let settings = switchyard_tests::pipeline::local_settings(history.path());
    let running = start(runtime, &[Role::Dispatch], &settings, &shutdown).await?;

    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while read_all(&runtime.kafka, DISPATCHED).await?.is_empty() {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "no outcome after 30 s; the carrier saw {} submits",
            hits.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A retry would show up as a second submit: give it time to.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(hits.load(Ordering::SeqCst), 1, "exactly one submit");

    let outcomes = read_all(&runtime.kafka, DISPATCHED).await?;
    assert_eq!(outcomes.len(), 1);
    let outcome: DispatchOutcome = runtime
        .codec
        .decode(outcomes[0].payload().unwrap_or_default())
        .await?;
    assert_eq!(outcome.message_id, "m-once");
    assert_eq!(outcome.status, DispatchStatus::Submitted);
    assert_eq!(outcome.failure_class, None);
    assert_eq!(outcome.carrier_message_id, None);

    shutdown.cancel();
    running.wait().await;
    Ok(())
}
