//! The shared runner's permanent-error path and stuck watch on the real broker, once per kind
//! of runner (transactional, at least once, unordered): an input whose output can never be
//! written is dead-lettered with its reason and reported by the stage, everything behind it
//! flows; a stage failing the same batch past its limits says so on `/healthz`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rdkafka::Message;
use switchyard_runtime::dead_letter::{KIND_HEADER, REASON_HEADER, STAGE_HEADER, header_text};
use switchyard_runtime::{
    CancellationToken, Origin, Output, Processor, RunnerOptions, StageError, StuckLimits,
    health_router, names,
};
use switchyard_schemas::Submission;
use switchyard_tests::{Stack, produce_raw, read_topic, sample_submission};

const OUT: &str = "fixture.out.a";
const REPORTED: &str = "fixture.out.b";

/// Copies each submission to `OUT`; the one whose text is "huge" makes a 2 MB output. Its
/// report of a poison input goes to `REPORTED`. Its flush fails while `fail_flush` is set.
struct Fixture {
    fail_flush: Arc<AtomicBool>,
}

impl Processor for Fixture {
    type Input = Submission;

    fn process(&self, input: Submission, _: Origin<'_>) -> Result<Vec<Output>, StageError> {
        let id = input.message_id.clone().unwrap_or_default();
        let output = if input.text == "huge" {
            Submission {
                text: "x".repeat(2_000_000),
                ..input
            }
        } else {
            input
        };
        Ok(vec![Output::new(OUT, id, output)])
    }

    fn unproducible(&self, input: Submission, _: Origin<'_>, reason: &str) -> Vec<Output> {
        let id = input.message_id.clone().unwrap_or_default();
        let report = Submission {
            text: reason.to_string(),
            ..input
        };
        vec![Output::new(REPORTED, id, report)]
    }

    fn flush(&self) -> Result<(), StageError> {
        if self.fail_flush.load(Ordering::SeqCst) {
            return Err(StageError::Unavailable("the store is down".into()));
        }
        Ok(())
    }
}

async fn produce(stack: &Stack, ids: &[&str]) -> anyhow::Result<()> {
    for id in ids {
        let text = if id.starts_with("huge") { "huge" } else { "hi" };
        let bytes = stack
            .runtime
            .codec
            .encode(names::ACCEPTED, &sample_submission(Some(id), "acme", text))
            .await?;
        produce_raw(&stack.runtime, names::ACCEPTED, "acme", &bytes).await?;
    }
    Ok(())
}

fn keys(messages: &[rdkafka::message::OwnedMessage]) -> Vec<String> {
    let mut keys: Vec<String> = messages
        .iter()
        .map(|m| String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned())
        .collect();
    keys.sort();
    keys
}

async fn poison_is_dead_lettered_and_the_rest_flows(
    options: RunnerOptions,
    exactly_once: bool,
) -> anyhow::Result<()> {
    let stack = Stack::start(&[OUT, REPORTED]).await?;
    produce(&stack, &["a-1", "a-2", "huge-1", "b-1", "b-2"]).await?;
    let shutdown = CancellationToken::new();
    let runtime = stack.runtime.clone();
    let fixture = Arc::new(Fixture {
        fail_flush: Arc::default(),
    });
    let stop = shutdown.clone();
    let task =
        tokio::spawn(
            async move { switchyard_runtime::run(&runtime, fixture, options, stop).await },
        );
    let kafka = &stack.runtime.kafka;
    let out = read_topic(kafka, OUT, 4, Duration::from_secs(30)).await?;
    let reported = read_topic(kafka, REPORTED, 1, Duration::from_secs(30)).await?;
    let dead = read_topic(
        kafka,
        &names::dead_letter(names::ACCEPTED),
        1,
        Duration::from_secs(30),
    )
    .await?;
    let expected = vec!["a-1", "a-2", "b-1", "b-2"];
    if !exactly_once {
        // At least once may repeat a record, never lose one.
        let mut unique = keys(&out);
        unique.dedup();
        assert_eq!(unique, expected);
    } else {
        assert_eq!(keys(&out), expected);
    }
    assert_eq!(keys(&reported), vec!["huge-1"]);
    let report: Submission = stack
        .runtime
        .codec
        .decode(reported[0].payload().unwrap_or_default())
        .await?;
    assert!(report.text.contains("too large"), "{}", report.text);
    assert_eq!(keys(&dead), vec!["acme"]);
    let headers = dead[0].headers().expect("headers");
    assert_eq!(header_text(headers, KIND_HEADER), Some("unproducible"));
    assert_eq!(header_text(headers, STAGE_HEADER), Some("fixture"));
    assert!(
        header_text(headers, REASON_HEADER)
            .unwrap_or_default()
            .contains("fixture.out.a is too large")
    );
    // Nothing stuck: the poison was handled, not retried.
    assert_eq!(stack.runtime.health.report().status, "ok");
    shutdown.cancel();
    task.await??;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn transactional_runner_dead_letters_a_poison_input() -> anyhow::Result<()> {
    let options = RunnerOptions::new("fixture", &[names::ACCEPTED]).exactly_once();
    poison_is_dead_lettered_and_the_rest_flows(options, true).await
}

#[tokio::test(flavor = "multi_thread")]
async fn at_least_once_runner_dead_letters_a_poison_input() -> anyhow::Result<()> {
    let options = RunnerOptions::new("fixture", &[names::ACCEPTED]).at_least_once();
    poison_is_dead_lettered_and_the_rest_flows(options, false).await
}

#[tokio::test(flavor = "multi_thread")]
async fn unordered_runner_dead_letters_a_poison_input() -> anyhow::Result<()> {
    let options = RunnerOptions::new("fixture", &[names::ACCEPTED]).unordered();
    poison_is_dead_lettered_and_the_rest_flows(options, false).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stage_stuck_on_one_batch_turns_healthz_unhealthy_within_the_set_time()
-> anyhow::Result<()> {
    let mut stack = Stack::start(&[OUT, REPORTED]).await?;
    let after = Duration::from_secs(2);
    stack.runtime.stuck = StuckLimits {
        after,
        attempts: 1000,
    };
    let shutdown = CancellationToken::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let healthz = format!("http://{}/healthz", listener.local_addr()?);
    let router = health_router(stack.runtime.health.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    let fail_flush = Arc::new(AtomicBool::new(true));
    let fixture = Arc::new(Fixture {
        fail_flush: fail_flush.clone(),
    });
    let (runtime, stop) = (stack.runtime.clone(), shutdown.clone());
    let options = RunnerOptions::new("fixture", &[names::ACCEPTED]).exactly_once();
    let task =
        tokio::spawn(
            async move { switchyard_runtime::run(&runtime, fixture, options, stop).await },
        );
    produce(&stack, &["s-1"]).await?;
    let http = reqwest::Client::new();
    assert_eq!(http.get(&healthz).send().await?.status(), 200);

    // The batch fails from its first attempt on; within the set time /healthz says so.
    let started = Instant::now();
    let body = loop {
        let response = http.get(&healthz).send().await?;
        if response.status() == 503 {
            break response.json::<serde_json::Value>().await?;
        }
        assert!(
            started.elapsed() < after + Duration::from_secs(5),
            "not unhealthy {:?} after the record was produced",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    println!("stuck after {:?}: {body}", started.elapsed());
    assert_eq!(body["status"], "stuck");
    assert!(
        body["stuck"]["fixture"]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("the store is down"),
        "{body}"
    );
    // The gauge follows at the next failed attempt past the limit (backoff at most 6.4 s).
    let deadline = Instant::now() + Duration::from_secs(10);
    while !stack
        .runtime
        .metrics
        .encode()
        .contains(r#"switchyard_stage_stuck{stage="fixture"} 1"#)
    {
        assert!(Instant::now() < deadline, "switchyard_stage_stuck not 1");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        stack
            .runtime
            .metrics
            .encode()
            .contains(r#"switchyard_stage_stuck_episodes_total{stage="fixture"} 1"#)
    );

    // Mended: the batch commits and the stage is healthy again.
    fail_flush.store(false, Ordering::SeqCst);
    let out = read_topic(&stack.runtime.kafka, OUT, 1, Duration::from_secs(30)).await?;
    assert_eq!(keys(&out), vec!["s-1"]);
    let deadline = Instant::now() + Duration::from_secs(15);
    while http.get(&healthz).send().await?.status() != 200 {
        assert!(
            Instant::now() < deadline,
            "still unhealthy after the batch committed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        stack
            .runtime
            .metrics
            .encode()
            .contains(r#"switchyard_stage_stuck{stage="fixture"} 0"#)
    );
    shutdown.cancel();
    task.await??;
    Ok(())
}
