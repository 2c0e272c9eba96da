//! `history rebuild`: a pipeline runs (history on SQLite) with failures, acks and webhook
//! results; then stores rebuilt from the topics — SQLite and CQL — answer every query kind
//! exactly as the store the history stage filled.

use std::time::Duration;

use switchyard::pipeline::Role;
use switchyard_carrier_http::simulator::SimulatorSettings;
use switchyard_history::HistoryStore;
use switchyard_runtime::Output;
use switchyard_runtime::names::CALLBACK_RESULTS;
use switchyard_schemas::{CallbackResult, now_millis};
use switchyard_tests::history_scenarios::{Answers, Engine, answers};
use switchyard_tests::pipeline::{API_KEY, Pipeline, post_batch};

const MESSAGES: usize = 30;

async fn answers_of(
    store: &HistoryStore,
    ids: &[String],
    range: (i64, i64),
) -> anyhow::Result<Answers> {
    answers(store, "acme", &["acme-web", "acme-other"], ids, range, 7).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stores_rebuilt_from_the_topics_answer_as_the_original() -> anyhow::Result<()> {
    switchyard_tests::init_logging();
    let started = now_millis();
    // No webhook role: reports stay pullable, and the test writes webhook results itself.
    let pipeline = Pipeline::start(
        &[Role::Callback],
        SimulatorSettings {
            success_rate: 0.5,
            receipt_delay: Duration::from_millis(10),
        },
    )
    .await?;
    let http = reqwest::Client::new();
    let base = pipeline.ingress_url.clone();
    let ids = post_batch(&http, &base, "rebuild", 0, MESSAGES).await?;
    let original = HistoryStore::open(&pipeline.settings.history_url).await?;

    // Every message final in the history.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let mut done = 0;
        for id in &ids {
            if original
                .message(id)
                .await?
                .is_some_and(|m| m.done_at.is_some())
            {
                done += 1;
            }
        }
        if done == MESSAGES {
            break;
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "{done} of {MESSAGES} final"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Acks for five, webhook results for five others (delivered, retrying, exhausted).
    let response = http
        .post(format!("{base}/v1/reports/ack"))
        .bearer_auth(API_KEY)
        .json(&serde_json::json!({ "message_ids": ids[..5] }))
        .send()
        .await?;
    anyhow::ensure!(
        response.status() == 200,
        "ack answered {}",
        response.status()
    );
    let results: Vec<Output> = ids[5..10]
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let result = CallbackResult {
                event_id: format!("ev-{id}"),
                message_id: id.clone(),
                customer_id: "acme".into(),
                client_id: Some("acme-web".into()),
                attempt: 1,
                at: now_millis(),
                delivered: i % 3 == 0,
                http_status: Some(if i % 3 == 0 { 200 } else { 503 }),
                failure: (i % 3 != 0).then(|| "503".to_string()),
                next_due_at: None,
                exhausted: i % 3 == 2,
            };
            Output::new(CALLBACK_RESULTS, id.clone(), result)
        })
        .collect();
    pipeline.stack.runtime.publish("test", &results).await?;

    // Wait until the history stage has written everything: the answers stop changing and
    // show the acks and webhook results.
    let range = (started - 1, now_millis() + 60_000);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut before = answers_of(&original, &ids, range).await?;
    let expected = loop {
        tokio::time::sleep(Duration::from_millis(700)).await;
        let now = answers_of(&original, &ids, range).await?;
        let states: Vec<Option<&str>> = now.messages[..10]
            .iter()
            .map(|m| m.as_ref().and_then(|m| m.callback_state.as_deref()))
            .collect();
        let settled = states[..5].iter().all(|s| *s == Some("acked"))
            && states[5..].iter().all(Option::is_some);
        if settled && now == before {
            break now;
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "history never settled: {states:?}"
        );
        before = now;
    };
    let listed: usize = expected.pages[0].iter().map(|p| p.reports.len()).sum();
    assert!(listed >= MESSAGES - 5 - 2, "{listed} pullable");
    assert!(
        expected.ackable[0].iter().all(|a| *a),
        "acme-web may ack its own"
    );
    assert!(
        expected.ackable[1].iter().all(|a| !*a),
        "another client may not"
    );

    for engine in [Engine::Sqlite, Engine::Cql] {
        let Some(target) = engine.fresh().await? else {
            continue;
        };
        let started = std::time::Instant::now();
        let report =
            switchyard_history::rebuild::rebuild(&pipeline.stack.runtime, &target.store).await?;
        eprintln!(
            "rebuilt {engine:?}: {} events in {:?}",
            report.events(),
            started.elapsed()
        );
        assert!(report.events() >= (MESSAGES * 6) as u64, "{report:?}");
        let rebuilt = answers_of(&target.store, &ids, range).await?;
        assert_eq!(
            rebuilt, expected,
            "{engine:?} store rebuilt from the topics"
        );
        // Once more into the same store: nothing changes (writes are idempotent).
        switchyard_history::rebuild::rebuild(&pipeline.stack.runtime, &target.store).await?;
        assert_eq!(
            answers_of(&target.store, &ids, range).await?,
            expected,
            "{engine:?} again"
        );
        target.cleanup().await?;
    }
    // The command does the same; a target it cannot use is refused naming why.
    let dir = tempfile::tempdir()?;
    let into = format!("sqlite://{}", dir.path().join("cli.db").display());
    let rebuild = |into: String| {
        let stack = &pipeline.stack;
        std::process::Command::new(switchyard_tests::processes::switchyard_bin()?)
            .args(["--brokers", &stack.env.brokers()])
            .args(["--topic-prefix", stack.env.namespace.prefix()])
            .args(["--schema-registry-url", &stack.registry.url()])
            .args(["history", "rebuild", "--into", &into])
            .output()
            .map_err(anyhow::Error::from)
    };
    let output = rebuild(into.clone())?;
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{printed}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(printed.contains("190 events into"), "{printed}");
    let cli = HistoryStore::open(&into).await?;
    assert_eq!(
        answers_of(&cli, &ids, range).await?,
        expected,
        "rebuilt by the command"
    );
    let output = rebuild("mongodb://db/history".into())?;
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(said.contains("\"mongodb\""), "{said}");

    pipeline.stop().await;
    Ok(())
}
