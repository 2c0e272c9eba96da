//! One customer's dead webhook endpoint does not hold up another's, on the real broker: with
//! customer A's receiver never answering (each call would time out after 10 s), every one of
//! customer B's webhooks arrives before any call to A has even timed out; A never has more than
//! the per-endpoint limit of calls in flight, and A's other reports are not lost but wait in
//! retry tier 1.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;
use switchyard::pipeline::{Role, start};
use switchyard_callback::GuardSettings;
use switchyard_callback::receiver::serve;
use switchyard_runtime::names::{FINAL, callback_retry};
use switchyard_runtime::{CancellationToken, Output};
use switchyard_tests::bench_callbacks::{final_report, two_customer_config};
use switchyard_tests::pipeline::{SECRET, local_settings};
use switchyard_tests::{Stack, read_all};

/// Calls in flight and the most seen at once, at a receiver that never answers.
#[derive(Default)]
struct Hanging {
    now: AtomicUsize,
    most: AtomicUsize,
    total: AtomicUsize,
    ended: AtomicUsize,
}

async fn hanging_receiver(state: Arc<Hanging>) -> anyhow::Result<String> {
    let app = Router::new().fallback(post(move || {
        let state = state.clone();
        async move {
            let now = state.now.fetch_add(1, Ordering::SeqCst) + 1;
            state.most.fetch_max(now, Ordering::SeqCst);
            state.total.fetch_add(1, Ordering::SeqCst);
            // Dropped when the caller gives up: count that as the end of the call.
            struct End(Arc<Hanging>);
            impl Drop for End {
                fn drop(&mut self) {
                    self.0.now.fetch_sub(1, Ordering::SeqCst);
                    self.0.ended.fetch_add(1, Ordering::SeqCst);
                }
            }
            let _end = End(state.clone());
            tokio::time::sleep(Duration::from_secs(120)).await;
            StatusCode::NO_CONTENT
        }
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dead_endpoint_does_not_hold_up_another_customers_webhooks() -> anyhow::Result<()> {
    let stack = Stack::start(&[]).await?;
    let shutdown = CancellationToken::new();
    let hanging = Arc::new(Hanging::default());
    let a_url = hanging_receiver(hanging.clone()).await?;
    let (b_addr, b_inbox) = serve("127.0.0.1:0".parse()?, SECRET, false, shutdown.clone()).await?;
    switchyard_config::apply(
        &stack.runtime,
        &two_customer_config(&a_url, &format!("http://{b_addr}/")),
        false,
        1,
    )
    .await?;
    let dir = tempfile::tempdir()?;
    let mut settings = local_settings(dir.path());
    // A real minute: nothing is retried during the test.
    settings.callback_minute = Duration::from_secs(60);
    settings.webhooks.timeout = Some(Duration::from_secs(10));
    let limit = GuardSettings::default().limit;
    let running = start(&stack.runtime, &[Role::Callback], &settings, &shutdown).await?;

    // A's reports first, then B's, interleaved at the end: 100 for A, 50 for B.
    let mut outputs = Vec::new();
    for i in 0..100 {
        outputs.push(final_report("acme", i));
        if i >= 50 {
            outputs.push(final_report("beta", i - 50));
        }
    }
    let sent_at = std::time::Instant::now();
    let outputs: Vec<Output> = outputs
        .into_iter()
        .map(|r| Output::new(FINAL, r.message_id.clone(), r))
        .collect();
    stack.runtime.publish("test", &outputs).await?;

    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while b_inbox.len() < 50 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let b_done = sent_at.elapsed();
    let a_calls_ended = hanging.ended.load(Ordering::SeqCst);
    assert_eq!(b_inbox.len(), 50, "B's webhooks all arrived");
    assert!(b_inbox.all().iter().all(|r| r.status == 204));
    assert_eq!(
        a_calls_ended, 0,
        "B finished ({b_done:?}) before any call to A timed out"
    );
    let most = hanging.most.load(Ordering::SeqCst);
    assert!(
        most <= limit && most > 0,
        "A had {most} calls in flight (limit {limit})"
    );
    // A's other reports were not sent now but not lost either: they wait in retry tier 1.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut waiting = 0;
    while tokio::time::Instant::now() < deadline {
        waiting = read_all(&stack.runtime.kafka, &callback_retry(1))
            .await?
            .len();
        if waiting >= 100 - most {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(waiting >= 100 - most, "{waiting} of A's reports in tier 1");
    eprintln!(
        "B's 50 webhooks done {b_done:?} after sending; A: {} calls made, at most {most} at once",
        hanging.total.load(Ordering::SeqCst)
    );
    shutdown.cancel();
    running.wait().await;
    Ok(())
}
