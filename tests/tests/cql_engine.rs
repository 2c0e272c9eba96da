//! CQL engine smoke test: the `scylla` driver against the run's CQL server (Apache Cassandra 5.0
//! standing in for ScyllaDB, `SWITCHYARD_TEST_CQL`): keyspace, prepared inserts, paged read, LWT.

use futures::TryStreamExt;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::value::{CqlValue, Row};
use switchyard_tests::{SHARED_CQL_ENV, shared_cql};

const ROWS: i32 = 25;
const PAGE: i32 = 7;

#[tokio::test]
async fn prepared_insert_and_paged_read_round_trip() -> anyhow::Result<()> {
    let Some(node) = shared_cql()? else {
        eprintln!("cql_engine: skipped ({SHARED_CQL_ENV} unset, SWITCHYARD_SKIP_CQL=1)");
        return Ok(());
    };
    let session: Session = SessionBuilder::new().known_node(&node).build().await?;

    // A keyspace of this test alone, so runs sharing one server never meet.
    let keyspace = format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    session
        .query_unpaged(
            format!(
                "CREATE KEYSPACE {keyspace} WITH replication = \
                 {{'class': 'SimpleStrategy', 'replication_factor': 1}}"
            ),
            &[],
        )
        .await?;
    session
        .query_unpaged(
            format!(
                "CREATE TABLE {keyspace}.events (client text, seq int, body text, \
                 PRIMARY KEY (client, seq))"
            ),
            &[],
        )
        .await?;
    session.await_schema_agreement().await?;

    let insert = session
        .prepare(format!(
            "INSERT INTO {keyspace}.events (client, seq, body) VALUES (?, ?, ?)"
        ))
        .await?;
    for seq in 0..ROWS {
        session
            .execute_unpaged(&insert, ("acme", seq, format!("body-{seq}")))
            .await?;
    }
    // Another partition, which the read below must not return.
    session
        .execute_unpaged(&insert, ("other", 0, "not mine"))
        .await?;

    // Read back in pages of PAGE rows: the driver fetches the next page as the stream is drained.
    let mut select = session
        .prepare(format!(
            "SELECT seq, body FROM {keyspace}.events WHERE client = ?"
        ))
        .await?;
    select.set_page_size(PAGE);
    let rows: Vec<(i32, String)> = session
        .execute_iter(select.clone(), ("acme",))
        .await?
        .rows_stream::<(i32, String)>()?
        .try_collect()
        .await?;
    let expected: Vec<(i32, String)> = (0..ROWS).map(|seq| (seq, format!("body-{seq}"))).collect();
    assert_eq!(rows, expected, "rows read back in clustering order");

    // The same read one page at a time: the server really pages (ceil(25 / 7) = 4 pages).
    let mut pages = 0;
    let mut paged = Vec::new();
    let mut state = scylla::response::PagingState::start();
    loop {
        let (result, next) = session
            .execute_single_page(&select, ("acme",), state)
            .await?;
        let page: Vec<(i32, String)> = result
            .into_rows_result()?
            .rows::<(i32, String)>()?
            .collect::<Result<_, _>>()?;
        assert!(
            page.len() <= PAGE as usize,
            "a page holds at most {PAGE} rows"
        );
        paged.extend(page);
        pages += 1;
        match next.into_paging_control_flow() {
            std::ops::ControlFlow::Break(()) => break,
            std::ops::ControlFlow::Continue(s) => state = s,
        }
    }
    assert_eq!(paged, expected);
    assert!(
        pages >= 4,
        "{ROWS} rows in pages of {PAGE} came in {pages} page(s)"
    );

    // A lightweight transaction (Paxos), as idempotent history writes may use: the first insert
    // applies, the second finds the row.
    let once = session
        .prepare(format!(
            "INSERT INTO {keyspace}.events (client, seq, body) VALUES (?, ?, ?) IF NOT EXISTS"
        ))
        .await?;
    for (attempt, applied) in [("first", true), ("second", false)] {
        let row = session
            .execute_unpaged(&once, ("lwt", 1, attempt))
            .await?
            .into_rows_result()?
            .first_row::<Row>()?;
        assert_eq!(
            row.columns.first(),
            Some(&Some(CqlValue::Boolean(applied))),
            "[applied] of the {attempt} conditional insert"
        );
    }

    session
        .query_unpaged(format!("DROP KEYSPACE {keyspace}"), &[])
        .await?;
    Ok(())
}
