//! Opening a history store: URLs name the engine, a wrong one is a clear error, and a CQL
//! cluster that does not answer is a retriable error (waited for, not a crash).

use std::time::{Duration, Instant};

use switchyard_history::{HistoryError, HistoryStore, Retention};
use switchyard_runtime::CancellationToken;

#[tokio::test]
async fn an_unknown_engine_is_named_and_not_retried() {
    let e = HistoryStore::open("mysql://db/history")
        .await
        .expect_err("unknown engine");
    assert!(matches!(e, HistoryError::BadUrl(_)), "{e}");
    assert!(e.to_string().contains("\"mysql\""), "{e}");
    assert!(!e.is_retriable());
}

#[tokio::test]
async fn a_bare_path_and_a_sqlite_url_open_the_same_file() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("sub/history.db");
    let first = HistoryStore::open(&path.display().to_string()).await?;
    assert_eq!(first.engine(), "sqlite");
    first
        .record(&switchyard_tests::history_scenarios::final_event(
            "m", "acme", None, 1, "failed",
        ))
        .await?;
    let second = HistoryStore::open(&format!("sqlite://{}", path.display())).await?;
    assert!(second.message("m").await?.is_some(), "same file");
    Ok(())
}

#[tokio::test]
async fn an_unreachable_cql_cluster_is_a_retriable_error() {
    // Nothing listens on port 1.
    let started = Instant::now();
    let e = HistoryStore::open("cql://127.0.0.1:1/history")
        .await
        .expect_err("nothing listens");
    assert!(e.is_retriable(), "{e}");
    assert!(e.to_string().contains("127.0.0.1:1"), "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );

    // Waiting for it ends with the shutdown, without an error.
    let shutdown = CancellationToken::new();
    let waiting = tokio::spawn({
        let shutdown = shutdown.clone();
        async move {
            HistoryStore::open_waiting("cql://127.0.0.1:1/history", Retention::default(), &shutdown)
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    shutdown.cancel();
    let outcome = tokio::time::timeout(Duration::from_secs(15), waiting)
        .await
        .expect("stops at shutdown")
        .expect("no panic");
    assert!(matches!(outcome, Ok(None)), "{outcome:?}");
}

/// A keyspace from an older version (only some of today's tables, with data) is migrated at
/// start: the missing tables are created, the data stays, and opening again changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cql_keyspace_of_an_older_version_is_migrated_at_start() -> anyhow::Result<()> {
    let Some(node) = switchyard_tests::shared_cql()? else {
        return Ok(());
    };
    let keyspace = format!("old{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let session = scylla::client::session_builder::SessionBuilder::new()
        .known_node(&node)
        .build()
        .await?;
    for statement in [
        format!(
            "CREATE KEYSPACE {keyspace} WITH replication = \
             {{'class': 'SimpleStrategy', 'replication_factor': 1}}"
        ),
        format!(
            "CREATE TABLE {keyspace}.messages (message_id text PRIMARY KEY, customer_id text, \
             client_id text, client_message_id text, channel text, recipient text, status text, \
             stage int, result_code text, result_text text, carrier text, sender text, \
             accepted_at bigint, done_at bigint, updated_at bigint, callback_state text, \
             callback_rank int)"
        ),
        format!(
            "INSERT INTO {keyspace}.messages (message_id, customer_id, status, stage) \
             VALUES ('old-1', 'acme', 'routed', 3)"
        ),
    ] {
        session.query_unpaged(statement, &[]).await?;
    }
    session.await_schema_agreement().await?;

    let url = format!("cql://{node}/{keyspace}");
    let store = HistoryStore::open(&url).await?;
    let old = store.message("old-1").await?.expect("kept");
    assert_eq!((old.status.as_str(), old.events.len()), ("routed", 0));
    store
        .record(&switchyard_tests::history_scenarios::final_event(
            "new-1", "acme", None, 5, "failed",
        ))
        .await?;
    let again = HistoryStore::open(&url).await?;
    assert_eq!(again.failure_summary("acme", 0, 10).await?.len(), 1);
    assert!(
        again
            .undelivered("acme", "any", None, 10)
            .await?
            .reports
            .len()
            == 1
    );
    session
        .query_unpaged(format!("DROP KEYSPACE {keyspace}"), &[])
        .await?;
    Ok(())
}
