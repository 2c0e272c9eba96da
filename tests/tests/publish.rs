//! `publish_atomic` (the ingress's batches) is all or nothing: when one record of a batch
//! cannot be written, none becomes visible to read_committed readers — where a plain
//! `publish` leaves the acknowledged ones behind.

use switchyard_runtime::{Output, names};
use switchyard_tests::{Stack, read_all, sample_submission};

/// Three good records and one to a topic that does not exist (the broker refuses it).
fn batch() -> Vec<Output> {
    let mut outputs: Vec<Output> = (0..3)
        .map(|i| {
            let id = format!("m-{i}");
            Output::new(
                names::ACCEPTED,
                "acme",
                sample_submission(Some(&id), "acme", "hello"),
            )
        })
        .collect();
    outputs.push(Output::new(
        "no.such.topic",
        "acme",
        sample_submission(Some("m-3"), "acme", "lost"),
    ));
    outputs
}

#[tokio::test(flavor = "multi_thread")]
async fn an_atomic_publish_that_fails_leaves_nothing_visible() -> anyhow::Result<()> {
    let stack = Stack::start(&[]).await?;
    let result = stack.runtime.publish_atomic("test", &batch()).await;
    assert!(result.is_err(), "the missing topic fails the publish");
    assert!(
        read_all(&stack.runtime.kafka, names::ACCEPTED)
            .await?
            .is_empty(),
        "none of the batch is visible"
    );

    // The same producer slot works again afterwards: a good batch is written whole.
    let good: Vec<Output> = batch().into_iter().take(3).collect();
    stack.runtime.publish_atomic("test", &good).await?;
    assert_eq!(
        read_all(&stack.runtime.kafka, names::ACCEPTED).await?.len(),
        3
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plain_publish_that_fails_leaves_what_was_acknowledged() -> anyhow::Result<()> {
    let stack = Stack::start(&[]).await?;
    let result = stack.runtime.publish("test", &batch()).await;
    assert!(result.is_err());
    assert_eq!(
        read_all(&stack.runtime.kafka, names::ACCEPTED).await?.len(),
        3,
        "why the ingress uses publish_atomic for batches"
    );
    Ok(())
}
