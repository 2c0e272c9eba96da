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
