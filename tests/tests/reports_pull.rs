//! Pulling reports over HTTP on the real broker: with no webhook role running, every final
//! report is listed as undelivered, page by page; an ack removes exactly the acknowledged ones;
//! another customer sees none; the day's summary counts the failed ones by result code. Run
//! with the history on each engine (SQLite, CQL).

use std::time::Duration;

use serde_json::{Value, json};
use switchyard::pipeline::Role;
use switchyard_carrier_http::simulator::SimulatorSettings;
use switchyard_runtime::Processing;
use switchyard_tests::TestEnv;
use switchyard_tests::history_scenarios::Engine;
use switchyard_tests::pipeline::{API_KEY, Pipeline, post_batch};

async fn get(http: &reqwest::Client, url: &str) -> anyhow::Result<(u16, Value)> {
    let response = http.get(url).bearer_auth(API_KEY).send().await?;
    Ok((response.status().as_u16(), response.json().await?))
}

/// Every undelivered report id, following cursors with pages of `limit`.
async fn all_undelivered(
    http: &reqwest::Client,
    base: &str,
    limit: usize,
) -> anyhow::Result<(Vec<String>, usize)> {
    let (mut ids, mut pages, mut cursor) = (Vec::new(), 0, None::<String>);
    loop {
        let mut url = format!("{base}/v1/reports?status=undelivered&limit={limit}");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let (status, page) = get(http, &url).await?;
        anyhow::ensure!(status == 200, "{status} {page}");
        pages += 1;
        for report in page["reports"].as_array().into_iter().flatten() {
            ids.push(
                report["message_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            );
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => return Ok((ids, pages)),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn undelivered_reports_are_listed_by_page_and_an_ack_clears_them() -> anyhow::Result<()> {
    pull_reports(Engine::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn undelivered_reports_are_listed_by_page_and_an_ack_clears_them_on_cql() -> anyhow::Result<()>
{
    pull_reports(Engine::Cql).await
}

async fn pull_reports(engine: Engine) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let Some(history_url) = engine.fresh_url(dir.path())? else {
        return Ok(());
    };
    let pipeline = Pipeline::start_configured(
        TestEnv::new()?,
        &[Role::Callback],
        SimulatorSettings {
            success_rate: 0.5,
            receipt_delay: Duration::from_millis(10),
        },
        Processing::default(),
        "",
        |settings| settings.history_url = history_url,
    )
    .await?;
    let http = reqwest::Client::new();
    let base = pipeline.ingress_url.clone();
    let started = switchyard_schemas::now_millis() - 1;
    let mut sent = post_batch(&http, &base, "pull", 0, 25).await?;
    sent.sort();

    // Wait until all 25 have their final report.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut listed = Vec::new();
    while tokio::time::Instant::now() < deadline {
        listed = all_undelivered(&http, &base, 1000).await?.0;
        if listed.len() == 25 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    listed.sort();
    assert_eq!(listed, sent, "every final report is pullable");
    let (paged, pages) = all_undelivered(&http, &base, 10).await?;
    assert_eq!(pages, 3, "25 reports in pages of 10");
    let mut paged_sorted = paged.clone();
    paged_sorted.sort();
    assert_eq!(paged_sorted, sent, "pages neither repeat nor skip");

    // Ack ten (and one id this client cannot see).
    let acked: Vec<String> = paged[..10].to_vec();
    let mut ids = acked.clone();
    ids.push("not-mine".into());
    let response = http
        .post(format!("{base}/v1/reports/ack"))
        .bearer_auth(API_KEY)
        .json(&json!({ "message_ids": ids }))
        .send()
        .await?;
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await?;
    assert_eq!(
        answer["acked"].as_array().map(Vec::len),
        Some(10),
        "{answer}"
    );
    assert_eq!(answer["not_found"], json!(["not-mine"]));
    let (left, _) = all_undelivered(&http, &base, 1000).await?;
    assert_eq!(left.len(), 15);
    assert!(left.iter().all(|id| !acked.contains(id)));
    let (_, message) = get(&http, &format!("{base}/v1/messages/{}", acked[0])).await?;
    assert_eq!(message["callback_state"], "acked", "{message}");

    // Today's summary counts the failed ones by result code.
    let (status, summary) = get(&http, &format!("{base}/v1/reports/summary")).await?;
    assert_eq!(status, 200, "{summary}");
    let failed = summary["failed"].as_i64().unwrap_or(-1);
    assert!((0..=25).contains(&failed), "{summary}");
    let by_code: i64 = summary["by_result_code"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| c["count"].as_i64().unwrap_or(0))
        .sum();
    assert_eq!(by_code, failed);

    // Search: by the client's own message id, and by time page by page; per-sender rates.
    let (status, found) = get(
        &http,
        &format!("{base}/v1/messages?client_message_id=pull-3"),
    )
    .await?;
    assert_eq!(status, 200, "{found}");
    assert_eq!(
        found["messages"].as_array().map(Vec::len),
        Some(1),
        "{found}"
    );
    assert_eq!(
        found["messages"][0]["client_message_id"], "pull-3",
        "{found}"
    );
    let (mut searched, mut cursor) = (Vec::new(), None::<String>);
    loop {
        let mut url = format!("{base}/v1/messages?from={started}&limit=10");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let (status, page) = get(&http, &url).await?;
        assert_eq!(status, 200, "{page}");
        for m in page["messages"].as_array().into_iter().flatten() {
            searched.push(m["message_id"].as_str().unwrap_or_default().to_string());
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    searched.sort();
    assert_eq!(searched, sent, "every message found by time, once");
    let (status, delivered) = get(
        &http,
        &format!("{base}/v1/messages?from={started}&status=delivered&limit=1000"),
    )
    .await?;
    assert_eq!(status, 200, "{delivered}");
    let delivered = delivered["messages"].as_array().map_or(0, Vec::len) as i64;
    assert_eq!(
        delivered + failed,
        25,
        "delivered {delivered} + failed {failed}"
    );
    let (status, stats) = get(&http, &format!("{base}/v1/stats/senders?from={started}")).await?;
    assert_eq!(status, 200, "{stats}");
    let senders = stats["senders"].as_array().cloned().unwrap_or_default();
    let total: i64 = senders
        .iter()
        .map(|s| s["total"].as_i64().unwrap_or(0))
        .sum();
    let ok: i64 = senders
        .iter()
        .map(|s| s["delivered"].as_i64().unwrap_or(0))
        .sum();
    assert_eq!((total, ok), (25, delivered), "{stats}");

    // Bad input is a 422 naming the field.
    let (status, problem) = get(&http, &format!("{base}/v1/reports?cursor=nonsense")).await?;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "cursor");
    let (status, _) = get(&http, &format!("{base}/v1/reports/summary?date=2026-02-30")).await?;
    assert_eq!(status, 422);
    pipeline.stop().await;
    Ok(())
}
