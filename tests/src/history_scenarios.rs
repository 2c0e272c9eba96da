//! History scenarios written once and run on every engine (`tests/tests/history_parity.rs`):
//! each takes an empty store and checks what the ingress and the pull API rely on. Here the
//! message and pull-list scenarios; search, retention, the stores they run on (`stores`), the
//! events they feed (`events`) and the comparison of two stores (`answers`) in submodules.

mod answers;
mod events;
mod retention;
mod search;
mod stores;

use anyhow::ensure;
use switchyard_history::{CallbackState, FailureCount, HistoryStore, Stage};

pub use answers::{Answers, answers};
pub use events::{T0, accepted_event, callback_event, final_event, stage_event};
pub use retention::{messages_past_their_customers_retention_leave_every_query, short_retention};
pub use search::{
    searching_lists_a_clients_messages_by_time_and_filters,
    sender_statistics_count_final_outcomes_per_sender,
};
pub use stores::{Engine, PipelineHistory, TestHistory};

const DAY_MS: i64 = 86_400_000;

async fn ids(
    store: &HistoryStore,
    client: &str,
    cursor: Option<&str>,
    limit: usize,
) -> anyhow::Result<(Vec<String>, Option<String>)> {
    let page = store.undelivered("acme", client, cursor, limit).await?;
    Ok((
        page.reports.into_iter().map(|r| r.message_id).collect(),
        page.next_cursor,
    ))
}

/// Replayed events are kept once; a late, earlier-stage event does not move the status back.
pub async fn events_are_kept_once_and_status_only_moves_forward(
    store: &HistoryStore,
) -> anyhow::Result<()> {
    let accepted = stage_event("t/0/1", "m-1", Stage::Accepted, Some("accepted"), T0 + 1);
    store.record(&accepted).await?;
    store
        .record(&stage_event(
            "t/0/9",
            "m-1",
            Stage::Final,
            Some("delivered"),
            T0 + 9,
        ))
        .await?;
    store
        .record(&stage_event(
            "t/0/5",
            "m-1",
            Stage::Routed,
            Some("routed"),
            T0 + 5,
        ))
        .await?;
    store.record_all(&[accepted.clone(), accepted]).await?;
    let view = store
        .message("m-1")
        .await?
        .ok_or_else(|| anyhow::anyhow!("m-1 kept"))?;
    ensure!(view.status == "delivered", "{view:?}");
    ensure!(view.customer_id.as_deref() == Some("acme"), "{view:?}");
    let kinds: Vec<&str> = view.events.iter().map(|e| e.kind.as_str()).collect();
    ensure!(kinds == ["accepted", "routed", "final"], "{kinds:?}");
    ensure!(view.events[1].at == T0 + 5);
    ensure!(view.events[1].detail == serde_json::json!({"k": "t/0/5"}));
    ensure!(store.message("nope").await?.is_none(), "unknown id");
    Ok(())
}

/// Within a stage the later event wins (a failed dispatch, then a failover's submit), and the
/// summary keeps what the message's first events said about it.
pub async fn the_summary_keeps_identity_and_the_latest_event_of_the_furthest_stage(
    store: &HistoryStore,
) -> anyhow::Result<()> {
    let mut accepted = stage_event("a/0/1", "m-2", Stage::Accepted, Some("accepted"), T0);
    accepted.summary.client_message_id = Some("mine-2".into());
    accepted.summary.to = Some("01099998888".into());
    accepted.summary.accepted_at = Some(T0);
    let mut failed = stage_event(
        "d/0/1",
        "m-2",
        Stage::Submitted,
        Some("dispatch_failed"),
        T0 + 10,
    );
    failed.summary.customer_id = None;
    failed.summary.sender = Some("skt-a".into());
    let mut submitted = stage_event("d/0/2", "m-2", Stage::Submitted, Some("submitted"), T0 + 20);
    submitted.summary.customer_id = None;
    submitted.summary.sender = Some("skt-b".into());
    store.record_all(&[accepted, failed, submitted]).await?;
    let view = store
        .message("m-2")
        .await?
        .ok_or_else(|| anyhow::anyhow!("m-2 kept"))?;
    ensure!(view.status == "submitted", "{view:?}");
    ensure!(view.sender.as_deref() == Some("skt-b"), "{view:?}");
    ensure!(
        view.client_message_id.as_deref() == Some("mine-2"),
        "{view:?}"
    );
    ensure!(view.to.as_deref() == Some("01099998888"), "{view:?}");
    ensure!(view.accepted_at == Some(T0), "{view:?}");
    ensure!(
        view.done_at.is_none() && view.callback_state.is_none(),
        "{view:?}"
    );
    Ok(())
}

/// A message first seen through an event without a status (a carrier report) shows as
/// accepted, and a later status still applies.
pub async fn a_message_first_seen_without_a_status_is_accepted_until_one_comes(
    store: &HistoryStore,
) -> anyhow::Result<()> {
    let mut report = stage_event("r/0/1", "m-3", Stage::Reported, None, T0 + 50);
    report.summary.customer_id = None;
    store.record(&report).await?;
    let view = store
        .message("m-3")
        .await?
        .ok_or_else(|| anyhow::anyhow!("m-3 kept"))?;
    ensure!(
        view.status == "accepted" && view.customer_id.is_none(),
        "{view:?}"
    );
    store
        .record(&stage_event(
            "r/0/0",
            "m-3",
            Stage::Routed,
            Some("routed"),
            T0 + 40,
        ))
        .await?;
    let view = store
        .message("m-3")
        .await?
        .ok_or_else(|| anyhow::anyhow!("m-3 kept"))?;
    ensure!(view.status == "routed", "{view:?}");
    let kinds: Vec<&str> = view.events.iter().map(|e| e.kind.as_str()).collect();
    ensure!(kinds == ["routed", "report"], "{kinds:?}");
    Ok(())
}

/// The pull list pages through undelivered reports and skips delivered and acked ones; a late
/// failure does not undo an ack; another customer sees none; bad cursors are refused.
pub async fn undelivered_pages_skip_delivered_and_acked_reports(
    store: &HistoryStore,
) -> anyhow::Result<()> {
    for (i, id) in ["a", "b", "c", "d", "e"].iter().enumerate() {
        store
            .record(&final_event(
                id,
                "acme",
                Some("acme-web"),
                T0 + i as i64,
                "delivered",
            ))
            .await?;
    }
    store
        .record(&callback_event("b", 1, CallbackState::Delivered))
        .await?;
    store
        .record(&callback_event("c", 1, CallbackState::Exhausted))
        .await?;
    store
        .record(&callback_event("d", 1, CallbackState::Acked))
        .await?;
    store
        .record(&callback_event("d", 2, CallbackState::Retrying))
        .await?;

    let first = store.undelivered("acme", "acme-web", None, 2).await?;
    let listed: Vec<&str> = first
        .reports
        .iter()
        .map(|r| r.message_id.as_str())
        .collect();
    ensure!(listed == ["a", "c"], "{listed:?}");
    ensure!(first.reports[1].callback_state.as_deref() == Some("exhausted"));
    ensure!(first.reports[0].callback_state.is_none());
    ensure!(first.reports[0].client_message_id.as_deref() == Some("c-a"));
    ensure!(first.reports[0].done_at == Some(T0));
    let cursor = first
        .next_cursor
        .ok_or_else(|| anyhow::anyhow!("a next page"))?;
    let (second, next) = ids(store, "acme-web", Some(&cursor), 2).await?;
    ensure!(second == ["e"] && next.is_none(), "{second:?} {next:?}");
    ensure!(
        store
            .undelivered("beta", "beta-web", None, 10)
            .await?
            .reports
            .is_empty()
    );
    for bad in ["x", "1.abc"] {
        let e = store.undelivered("acme", "acme-web", Some(bad), 1).await;
        ensure!(
            matches!(e, Err(switchyard_history::HistoryError::BadQuery(_))),
            "{bad}: {e:?}"
        );
    }
    ensure!(store.ackable("acme", "acme-web", "a").await?);
    ensure!(
        !store.ackable("acme", "acme-batch", "a").await?,
        "another client's"
    );
    ensure!(
        !store.ackable("beta", "beta-web", "a").await?,
        "another customer's"
    );
    ensure!(!store.ackable("acme", "acme-web", "zz").await?, "unknown");
    let view = store
        .message("d")
        .await?
        .ok_or_else(|| anyhow::anyhow!("d kept"))?;
    ensure!(view.callback_state.as_deref() == Some("acked"), "{view:?}");
    Ok(())
}

/// Webhook results and acks that reach the history before the final report still count.
pub async fn webhook_results_before_the_final_report_still_count(
    store: &HistoryStore,
) -> anyhow::Result<()> {
    store
        .record(&callback_event("x", 1, CallbackState::Delivered))
        .await?;
    store
        .record(&callback_event("y", 1, CallbackState::Retrying))
        .await?;
    store
        .record(&callback_event("z", 1, CallbackState::Acked))
        .await?;
    ensure!(
        !store.ackable("acme", "acme-web", "x").await?,
        "not final yet"
    );
    ensure!(
        store
            .undelivered("acme", "acme-web", None, 10)
            .await?
            .reports
            .is_empty()
    );
    for (i, id) in ["x", "y", "z"].iter().enumerate() {
        store
            .record(&final_event(
                id,
                "acme",
                Some("acme-web"),
                T0 + i as i64,
                "failed",
            ))
            .await?;
    }
    store
        .record(&callback_event("z", 2, CallbackState::Retrying))
        .await?;
    let page = store.undelivered("acme", "acme-web", None, 10).await?;
    let listed: Vec<(&str, Option<&str>)> = page
        .reports
        .iter()
        .map(|r| (r.message_id.as_str(), r.callback_state.as_deref()))
        .collect();
    ensure!(listed == [("y", Some("retrying"))], "{listed:?}");
    ensure!(store.ackable("acme", "acme-web", "x").await?);
    Ok(())
}

/// A client sees its own reports and its customer's reports that name no client.
pub async fn clients_see_their_own_and_customer_wide_reports(
    store: &HistoryStore,
) -> anyhow::Result<()> {
    store
        .record(&final_event(
            "w",
            "acme",
            Some("acme-web"),
            T0 + 1,
            "failed",
        ))
        .await?;
    store
        .record(&final_event(
            "b",
            "acme",
            Some("acme-batch"),
            T0 + 2,
            "failed",
        ))
        .await?;
    store
        .record(&final_event("n", "acme", None, T0 + 3, "failed"))
        .await?;
    store
        .record(&final_event("o", "beta", None, T0 + 4, "failed"))
        .await?;
    let (web, _) = ids(store, "acme-web", None, 10).await?;
    ensure!(web == ["w", "n"], "{web:?}");
    let (batch, _) = ids(store, "acme-batch", None, 10).await?;
    ensure!(batch == ["b", "n"], "{batch:?}");
    // Pages of one still neither repeat nor skip when other clients' rows lie between.
    let (mut all, mut cursor) = (Vec::new(), None);
    loop {
        let (page, next) = ids(store, "acme-batch", cursor.as_deref(), 1).await?;
        all.extend(page);
        match next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    ensure!(all == ["b", "n"], "{all:?}");
    ensure!(store.ackable("acme", "acme-batch", "n").await?);
    ensure!(!store.ackable("acme", "acme-batch", "w").await?);
    Ok(())
}

/// The failure summary counts failed, expired and rejected messages by result code within the
/// range, across day boundaries, for the customer asked only.
pub async fn the_failure_summary_counts_by_result_code_within_the_range(
    store: &HistoryStore,
) -> anyhow::Result<()> {
    let day = T0.div_euclid(DAY_MS) * DAY_MS + DAY_MS;
    store
        .record(&final_event("a", "acme", None, T0 + 10, "failed"))
        .await?;
    store
        .record(&final_event("b", "acme", None, T0 + 20, "failed"))
        .await?;
    store
        .record(&final_event("c", "acme", None, T0 + 30, "delivered"))
        .await?;
    store
        .record(&final_event("d", "acme", None, T0 + 99, "failed"))
        .await?;
    let mut expired = final_event("e", "acme", None, T0 + 40, "expired");
    expired.summary.result_code = Some("4000".into());
    store.record(&expired).await?;
    store
        .record(&final_event("o", "beta", None, T0 + 15, "failed"))
        .await?;
    store
        .record(&final_event("f", "acme", None, day - 5, "failed"))
        .await?;
    store
        .record(&final_event("g", "acme", None, day + 5, "failed"))
        .await?;
    let count = |code: &str, count| FailureCount {
        result_code: code.into(),
        count,
    };
    let summary = store.failure_summary("acme", T0, T0 + 50).await?;
    ensure!(
        summary == [count("3001", 2), count("4000", 1)],
        "{summary:?}"
    );
    let across = store.failure_summary("acme", day - 10, day + 10).await?;
    ensure!(across == [count("3001", 2)], "{across:?}");
    ensure!(
        store
            .failure_summary("acme", T0 + 50, T0 + 50)
            .await?
            .is_empty()
    );
    Ok(())
}
