//! `topics apply` against the real broker: creates everything once, then changes nothing.

use switchyard_tests::TestEnv;
use switchyard_topics::{ApplyOptions, Catalog, apply};

#[tokio::test(flavor = "multi_thread")]
async fn applying_twice_changes_nothing_the_second_time() -> anyhow::Result<()> {
    let env = TestEnv::new()?;
    let specs = Catalog::in_namespace(
        Catalog::builtin()?.topics(&["skt-1".to_string()]),
        &env.namespace,
    );
    let options = ApplyOptions {
        brokers: env.brokers(),
        replication_factor: 1,
    };

    let first = apply(&specs, &options).await?;
    assert_eq!(
        first.created.len(),
        specs.len(),
        "first apply creates every topic: {first}"
    );
    assert!(first.created.contains(&env.topic("sender.skt-1")));
    assert!(first.created.contains(&env.topic("callbacks.retry.10")));

    let second = apply(&specs, &options).await?;
    assert!(second.is_clean(), "second apply: {second}");
    assert_eq!(second.unchanged.len(), specs.len());
    assert!(
        second.settings_unchecked.is_empty(),
        "the broker describes settings: {second}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn drift_is_reported_not_changed() -> anyhow::Result<()> {
    let env = TestEnv::new()?;
    let options = ApplyOptions {
        brokers: env.brokers(),
        replication_factor: 1,
    };
    let catalog = Catalog::builtin()?;
    let mut accepted = catalog.topic("messages.accepted").expect("declared");
    accepted.name = env.topic(&accepted.name);
    let mut customers = catalog.topic("config.customers").expect("declared");
    customers.name = env.topic(&customers.name);
    apply(&[accepted.clone(), customers.clone()], &options).await?;

    let mut wider = accepted.clone();
    wider.partitions += 2;
    let mut not_compacted = customers.clone();
    not_compacted.cleanup = switchyard_topics::Cleanup::Delete;
    not_compacted.retention_ms = Some(1000);
    let report = apply(&[wider, not_compacted], &options).await?;
    let drifted: Vec<(&str, &str)> = report
        .drift
        .iter()
        .map(|d| (env.namespace.logical(&d.topic), d.setting.as_str()))
        .collect();
    assert!(
        drifted.contains(&("messages.accepted", "partitions")),
        "{report}"
    );
    assert!(
        drifted.contains(&("config.customers", "cleanup.policy")),
        "{report}"
    );

    // Nothing was altered: the original catalog still matches.
    let again = apply(&[accepted, customers], &options).await?;
    assert!(again.is_clean(), "{again}");
    Ok(())
}
