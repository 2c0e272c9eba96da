//! Search and statistics scenarios: a client's messages by time or by its own id, filtered and
//! paged; per-sender delivery statistics.

use anyhow::ensure;
use switchyard_history::HistoryStore;

use super::events::{T0, accepted_event, final_event};

const DAY_MS: i64 = 86_400_000;

pub(crate) fn query(from: i64, to: i64) -> switchyard_history::MessageQuery {
    switchyard_history::MessageQuery {
        customer_id: "acme".into(),
        client_id: "acme-web".into(),
        from,
        to,
        client_message_id: None,
        status: None,
        channel: None,
        recipient: None,
    }
}

async fn search_ids(
    store: &HistoryStore,
    query: &switchyard_history::MessageQuery,
    page: usize,
) -> anyhow::Result<Vec<String>> {
    let (mut ids, mut cursor) = (Vec::new(), None::<String>);
    loop {
        let found = store.search(query, cursor.as_deref(), page).await?;
        ensure!(found.messages.len() <= page, "{found:?}");
        ids.extend(found.messages.into_iter().map(|m| m.message_id));
        match found.next_cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(ids),
        }
    }
}

/// A client finds its messages (and its customer's that name no client) by time, page by
/// page, narrowed by status, channel, recipient or its own message id; never another
/// customer's or client's.
pub async fn searching_lists_a_clients_messages_by_time_and_filters(
    store: &HistoryStore,
) -> anyhow::Result<()> {
    let day = T0.div_euclid(DAY_MS) * DAY_MS + DAY_MS;
    store
        .record_all(&[
            accepted_event("s1", "acme", Some("acme-web"), "sms", "0101", T0 + 1),
            accepted_event("s2", "acme", None, "lms", "0102", T0 + 2),
            accepted_event("s3", "acme", Some("acme-web"), "sms", "0102", T0 + 3),
            accepted_event("s4", "acme", Some("acme-batch"), "sms", "0101", T0 + 4),
            accepted_event("s5", "beta", Some("beta-web"), "sms", "0101", T0 + 5),
            accepted_event("s6", "acme", Some("acme-web"), "sms", "0101", day + 1),
            accepted_event("s7", "acme", Some("acme-web"), "sms", "0101", day - 1),
        ])
        .await?;
    let mut done = final_event("s3", "acme", Some("acme-web"), T0 + 100, "delivered");
    done.summary.to = Some("0102".into());
    store.record(&done).await?;

    let all = search_ids(store, &query(T0, day + DAY_MS), 2).await?;
    ensure!(all == ["s1", "s2", "s3", "s7", "s6"], "{all:?}");
    let first_day = search_ids(store, &query(T0, day), 10).await?;
    ensure!(first_day == ["s1", "s2", "s3", "s7"], "{first_day:?}");
    let mut q = query(T0, day + DAY_MS);
    q.status = Some("delivered".into());
    ensure!(search_ids(store, &q, 10).await? == ["s3"]);
    let mut q = query(T0, day + DAY_MS);
    q.channel = Some("lms".into());
    ensure!(search_ids(store, &q, 10).await? == ["s2"]);
    let mut q = query(T0, day + DAY_MS);
    q.recipient = Some("0102".into());
    ensure!(search_ids(store, &q, 1).await? == ["s2", "s3"]);
    let mut q = query(i64::MIN, i64::MAX);
    q.client_message_id = Some("c-s3".into());
    let found = store.search(&q, None, 10).await?;
    ensure!(
        found.messages.len() == 1 && found.next_cursor.is_none(),
        "{found:?}"
    );
    let s3 = &found.messages[0];
    ensure!(
        s3.status == "delivered" && s3.done_at == Some(T0 + 100),
        "{s3:?}"
    );
    ensure!(
        s3.accepted_at == Some(T0 + 3) && s3.to.as_deref() == Some("0102"),
        "{s3:?}"
    );
    q.client_message_id = Some("c-s4".into());
    ensure!(
        store.search(&q, None, 10).await?.messages.is_empty(),
        "another client's"
    );
    q.client_message_id = Some("c-s5".into());
    ensure!(
        store.search(&q, None, 10).await?.messages.is_empty(),
        "another customer's"
    );
    let bad = store.search(&query(T0, day), Some("nonsense"), 10).await;
    ensure!(
        matches!(bad, Err(switchyard_history::HistoryError::BadQuery(_))),
        "{bad:?}"
    );
    Ok(())
}

/// Per-sender statistics count a customer's final outcomes in the period by result code.
pub async fn sender_statistics_count_final_outcomes_per_sender(
    store: &HistoryStore,
) -> anyhow::Result<()> {
    let outcome = |id: &str, sender: &str, status: &str, at: i64| {
        let mut e = final_event(id, "acme", None, at, status);
        e.summary.sender = Some(sender.into());
        e
    };
    store
        .record_all(&[
            outcome("a", "skt-a", "delivered", T0 + 1),
            outcome("b", "skt-a", "delivered", T0 + 2),
            outcome("c", "skt-a", "failed", T0 + 3),
            outcome("d", "skt-b", "failed", T0 + 4),
            outcome("e", "skt-b", "delivered", T0 + 500),
            final_event("f", "beta", None, T0 + 5, "delivered"),
        ])
        .await?;
    let stats = store.sender_stats("acme", T0, T0 + 100).await?;
    type Line<'a> = (&'a str, i64, i64, Vec<(&'a str, i64)>);
    let summary: Vec<Line<'_>> = stats
        .iter()
        .map(|s| {
            (
                s.sender.as_str(),
                s.total,
                s.delivered,
                s.by_result_code
                    .iter()
                    .map(|c| (c.result_code.as_str(), c.count))
                    .collect(),
            )
        })
        .collect();
    ensure!(
        summary
            == [
                ("skt-a", 3, 2, vec![("0000", 2), ("3001", 1)]),
                ("skt-b", 1, 0, vec![("3001", 1)]),
            ],
        "{summary:?}"
    );
    ensure!((stats[0].delivery_rate - 2.0 / 3.0).abs() < 1e-9);
    ensure!(
        store
            .sender_stats("acme", T0 + 100, T0 + 100)
            .await?
            .is_empty()
    );
    Ok(())
}
