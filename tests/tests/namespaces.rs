//! Namespaces (`--topic-prefix`): two environments on one cluster do not see each other's
//! records, and the binary names every topic it creates with the prefix.

use std::process::Command;

use switchyard_runtime::{Output, names};
use switchyard_tests::{Stack, read_all, sample_submission};

#[tokio::test(flavor = "multi_thread")]
async fn two_namespaces_on_one_broker_are_apart() -> anyhow::Result<()> {
    let staging = Stack::start(&[]).await?;
    let production = Stack::start(&[]).await?;
    assert_eq!(staging.env.brokers(), production.env.brokers());
    let submission = sample_submission(Some("m-staging"), "acme", "only in staging");
    staging
        .runtime
        .publish(
            "test",
            &[Output::new(names::ACCEPTED, "acme", submission.clone())],
        )
        .await?;
    let seen_in_staging = read_all(&staging.runtime.kafka, names::ACCEPTED).await?;
    assert_eq!(seen_in_staging.len(), 1);
    let seen_in_production = read_all(&production.runtime.kafka, names::ACCEPTED).await?;
    assert!(seen_in_production.is_empty(), "production sees nothing");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn topics_apply_with_a_prefix_creates_prefixed_topics_only() -> anyhow::Result<()> {
    let stack = Stack::start(&[]).await?;
    let prefix = format!("{}other.", stack.env.namespace.prefix());
    let bin = switchyard_tests::processes::switchyard_bin()?;
    let output = tokio::task::spawn_blocking({
        let brokers = stack.env.brokers();
        let prefix = prefix.clone();
        move || {
            Command::new(bin)
                .args(["--brokers", &brokers, "--topic-prefix", &prefix])
                .args(["topics", "apply", "--sender", "skt-1"])
                .output()
        }
    })
    .await??;
    assert!(output.status.success(), "{output:?}");
    let report = String::from_utf8(output.stdout)?;
    let created: Vec<&str> = report
        .lines()
        .filter_map(|l| l.strip_prefix("created"))
        .map(str::trim)
        .collect();
    assert!(created.contains(&format!("{prefix}messages.accepted").as_str()));
    assert!(created.contains(&format!("{prefix}sender.skt-1").as_str()));
    assert!(created.contains(&format!("{prefix}_schemas").as_str()));
    assert!(
        created.iter().all(|name| name.starts_with(&prefix)),
        "{report}"
    );
    Ok(())
}
