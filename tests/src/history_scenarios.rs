//! History scenarios written once and run on every engine (`tests/tests/history_parity.rs`):
//! each takes an empty store and checks what the ingress and the pull API rely on. Plus the
//! stores the tests run them on: SQLite in a temporary directory, CQL in a keyspace of the
//! test's own on the run's server (`SWITCHYARD_TEST_CQL`).

use std::time::Duration;

use anyhow::ensure;
use switchyard_history::{
    CallbackState, Event, FailureCount, HistoryStore, Retention, Stage, Summary,
};

use crate::shared_cql;

/// 2026-11-22 15:00 UTC: scenario times are realistic milliseconds from here.
pub const T0: i64 = 1_795_359_600_000;
const DAY_MS: i64 = 86_400_000;

/// A history engine the tests run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Cql,
}

/// A store of one test: its URL and what keeps it alive (a temporary directory).
#[derive(Debug)]
pub struct TestHistory {
    pub url: String,
    pub store: HistoryStore,
    _dir: tempfile::TempDir,
}

impl Engine {
    /// A fresh store URL on this engine (`dir` holds SQLite files); `None` for CQL when the
    /// run skips CQL (`SWITCHYARD_SKIP_CQL=1`), an error when it has no server otherwise.
    pub fn fresh_url(self, dir: &std::path::Path) -> anyhow::Result<Option<String>> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        Ok(match self {
            Engine::Sqlite => Some(format!(
                "sqlite://{}",
                dir.join(format!("history-{}.db", &id[..8])).display()
            )),
            Engine::Cql => shared_cql()?.map(|node| format!("cql://{node}/h{}", &id[..12])),
        })
    }

    /// A fresh, empty store on this engine (`None`: CQL skipped).
    pub async fn fresh(self) -> anyhow::Result<Option<TestHistory>> {
        self.fresh_with(Retention::default()).await
    }

    /// The same with a retention.
    pub async fn fresh_with(self, retention: Retention) -> anyhow::Result<Option<TestHistory>> {
        let dir = tempfile::tempdir()?;
        let Some(url) = self.fresh_url(dir.path())? else {
            eprintln!("CQL history tests skipped (SWITCHYARD_SKIP_CQL=1)");
            return Ok(None);
        };
        let store = HistoryStore::open_with(&url, retention).await?;
        Ok(Some(TestHistory {
            url,
            store,
            _dir: dir,
        }))
    }
}

impl TestHistory {
    /// Let `time` pass for the retention: SQLite purges as of now + `time` (an injected
    /// clock); CQL waits for the TTLs (keep `time` to seconds: retention days of a second).
    pub async fn let_pass(&self, time: Duration) -> anyhow::Result<()> {
        match &self.store {
            HistoryStore::Sqlite(_) => {
                let now = switchyard_schemas::now_millis() + i64::try_from(time.as_millis())?;
                self.store.purge_expired(now).await?;
            }
            HistoryStore::Cql(_) => tokio::time::sleep(time).await,
        }
        Ok(())
    }

    /// Drop a CQL keyspace (SQLite files go with the directory).
    pub async fn cleanup(self) -> anyhow::Result<()> {
        if let HistoryStore::Cql(cql) = &self.store {
            cql.drop_keyspace().await?;
        }
        Ok(())
    }
}

/// An event of message `id` at stage `stage`, setting `status` (if any) for customer acme.
pub fn stage_event(key: &str, id: &str, stage: Stage, status: Option<&str>, at: i64) -> Event {
    Event {
        event_key: key.into(),
        message_id: id.into(),
        kind: match stage {
            Stage::Accepted => "accepted",
            Stage::Validated => "validated",
            Stage::Routed => "routed",
            Stage::Submitted => "submitted",
            Stage::Reported => "report",
            Stage::Final => "final",
        },
        at,
        stage,
        summary: Summary {
            customer_id: Some("acme".into()),
            status: status.map(str::to_string),
            ..Summary::default()
        },
        detail: serde_json::json!({"k": key}),
    }
}

/// The final report of `id` for `customer` (sent by `client`), failed with 3001 or delivered.
pub fn final_event(
    id: &str,
    customer: &str,
    client: Option<&str>,
    done_at: i64,
    status: &str,
) -> Event {
    Event {
        event_key: format!("final/{id}"),
        message_id: id.into(),
        kind: "final",
        at: done_at,
        stage: Stage::Final,
        summary: Summary {
            customer_id: Some(customer.into()),
            client_id: client.map(str::to_string),
            client_message_id: Some(format!("c-{id}")),
            channel: Some("sms".into()),
            to: Some("01012345678".into()),
            status: Some(status.into()),
            result_code: Some(
                if status == "delivered" {
                    "0000"
                } else {
                    "3001"
                }
                .into(),
            ),
            result_text: Some(status.into()),
            carrier: Some("skt".into()),
            sender: Some("skt-a".into()),
            done_at: Some(done_at),
            ..Summary::default()
        },
        detail: serde_json::json!({"attempt": 1}),
    }
}

/// The `n`th webhook result (or ack) of `id`.
pub fn callback_event(id: &str, n: i64, state: CallbackState) -> Event {
    Event {
        event_key: format!("cb/{id}/{n}"),
        message_id: id.into(),
        kind: if state == CallbackState::Acked {
            "acked"
        } else {
            "callback"
        },
        at: T0 + 1_000 + n,
        stage: Stage::Accepted,
        summary: Summary {
            callback: Some(state),
            ..Summary::default()
        },
        detail: serde_json::json!({"n": n}),
    }
}

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

/// A store whose "days" last three seconds (long enough to see a message before it expires on
/// a loaded machine), keeping `acme` 1 day and everyone else 30.
pub fn short_retention() -> Retention {
    let retention = Retention::new(Some(30)).with_day(Duration::from_secs(3));
    retention.set_customer("acme", Some(1));
    retention
}

/// With `short_retention`: once a customer's retention has passed its messages leave every
/// query; another customer's stay.
pub async fn messages_past_their_customers_retention_leave_every_query(
    history: &TestHistory,
) -> anyhow::Result<()> {
    let store = &history.store;
    let now = switchyard_schemas::now_millis();
    store
        .record(&final_event("old", "acme", None, now, "failed"))
        .await?;
    store
        .record(&final_event("kept", "beta", None, now, "failed"))
        .await?;
    store
        .record(&callback_event("old", 1, CallbackState::Retrying))
        .await?;
    ensure!(
        store.message("old").await?.is_some(),
        "kept until its retention passes"
    );
    ensure!(
        store
            .undelivered("acme", "acme-web", None, 10)
            .await?
            .reports
            .len()
            == 1
    );
    // CQL expires by whole seconds: a TTL of 3 s ends within 4 s of the write.
    history.let_pass(Duration::from_millis(4_500)).await?;
    ensure!(store.message("old").await?.is_none(), "acme keeps 1 day");
    ensure!(
        store
            .undelivered("acme", "acme-web", None, 10)
            .await?
            .reports
            .is_empty()
    );
    ensure!(
        store
            .failure_summary("acme", now - 1, now + 1)
            .await?
            .is_empty()
    );
    ensure!(!store.ackable("acme", "acme-web", "old").await?);
    let kept = store
        .message("kept")
        .await?
        .ok_or_else(|| anyhow::anyhow!("beta keeps 30"))?;
    ensure!(kept.events.len() == 1, "{kept:?}");
    ensure!(store.failure_summary("beta", now - 1, now + 1).await?.len() == 1);
    Ok(())
}

/// Every query kind's answer for a set of messages of `customer`: each message (with its
/// events), each client's whole pull list and search by time in pages of `page`, whether each
/// client may ack each message, the failure summary and per-sender statistics of [`from`,
/// `to`).
#[derive(Debug, PartialEq)]
pub struct Answers {
    pub messages: Vec<Option<switchyard_history::MessageView>>,
    pub pages: Vec<Vec<switchyard_history::ReportPage>>,
    pub searches: Vec<Vec<switchyard_history::MessagePage>>,
    pub ackable: Vec<Vec<bool>>,
    pub summary: Vec<FailureCount>,
    pub senders: Vec<switchyard_history::SenderStats>,
}

/// The answers of `store` (see `Answers`).
pub async fn answers(
    store: &HistoryStore,
    customer: &str,
    clients: &[&str],
    ids: &[String],
    (from, to): (i64, i64),
    page: usize,
) -> anyhow::Result<Answers> {
    let mut messages = Vec::new();
    for id in ids {
        messages.push(store.message(id).await?);
    }
    let (mut pages, mut searches, mut ackable) = (Vec::new(), Vec::new(), Vec::new());
    for client in clients {
        let (mut list, mut cursor) = (Vec::new(), None::<String>);
        loop {
            let next = store
                .undelivered(customer, client, cursor.as_deref(), page)
                .await?;
            cursor = next.next_cursor.clone();
            list.push(next);
            if cursor.is_none() {
                break;
            }
        }
        pages.push(list);
        let mut query = query(from, to);
        (query.customer_id, query.client_id) = (customer.to_string(), client.to_string());
        let (mut list, mut cursor) = (Vec::new(), None::<String>);
        loop {
            let next = store.search(&query, cursor.as_deref(), page).await?;
            cursor = next.next_cursor.clone();
            list.push(next);
            if cursor.is_none() {
                break;
            }
        }
        searches.push(list);
        let mut mine = Vec::new();
        for id in ids {
            mine.push(store.ackable(customer, client, id).await?);
        }
        ackable.push(mine);
    }
    Ok(Answers {
        messages,
        pages,
        searches,
        ackable,
        summary: store.failure_summary(customer, from, to).await?,
        senders: store.sender_stats(customer, from, to).await?,
    })
}

/// The accepted event of `id` (customer acme unless said), as the ingress records it.
pub fn accepted_event(
    id: &str,
    customer: &str,
    client: Option<&str>,
    channel: &str,
    to: &str,
    at: i64,
) -> Event {
    Event {
        event_key: format!("accepted/{id}"),
        message_id: id.into(),
        kind: "accepted",
        at,
        stage: Stage::Accepted,
        summary: Summary {
            customer_id: Some(customer.into()),
            client_id: client.map(str::to_string),
            client_message_id: Some(format!("c-{id}")),
            channel: Some(channel.into()),
            to: Some(to.into()),
            status: Some("accepted".into()),
            accepted_at: Some(at),
            ..Summary::default()
        },
        detail: serde_json::json!({}),
    }
}

fn query(from: i64, to: i64) -> switchyard_history::MessageQuery {
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
