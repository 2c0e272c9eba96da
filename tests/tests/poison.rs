//! Poison records on the real broker (issue 19): records whose outputs the broker can never
//! take, or whose fields are unbounded, never stop anyone else's messages. Each ends with one
//! final report saying why, its input dead-lettered with the reason — in validate and route
//! (transactional, with state) and dispatch (at least once, a connector).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rdkafka::Message;
use switchyard_carrier_http::simulator::SimulatorSettings;
use switchyard_runtime::dead_letter::{
    KIND_HEADER, PAYLOAD_OMITTED_HEADER, REASON_HEADER, STAGE_HEADER, header_text,
};
use switchyard_runtime::names::{NORMAL_LANE, sender_lane};
use switchyard_runtime::{Runtime, names};
use switchyard_schemas::{
    DispatchRequest, FinalReport, ResultStatus, Submission, ValidatedMessage, now_millis,
};
use switchyard_tests::pipeline::{Pipeline, post_batch};
use switchyard_tests::{TestEnv, produce_raw, read_all, sample_submission};

/// The pipeline's record limit in this test: small enough that a direct producer (held only to
/// the broker's own 1 MB) can hand it records whose outputs will never fit.
const LIMIT: usize = 300_000;

const MALLORY: &str = r#"
[[customers]]
id = "mallory"
channels = ["sms", "lms"]
"#;

fn fast_carrier() -> SimulatorSettings {
    SimulatorSettings {
        success_rate: 1.0,
        receipt_delay: Duration::from_millis(5),
    }
}

/// Wait until every id in `ids` has a final report; the reports by id.
async fn wait_for_finals(
    pipeline: &Pipeline,
    ids: &[String],
    timeout: Duration,
) -> anyhow::Result<HashMap<String, Vec<FinalReport>>> {
    let deadline = Instant::now() + timeout;
    loop {
        let reports = pipeline.final_reports().await?;
        let missing: Vec<&String> = ids.iter().filter(|id| !reports.contains_key(*id)).collect();
        if missing.is_empty() {
            return Ok(reports);
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{} of {} without a final report after {timeout:?}: {missing:?}",
            missing.len(),
            ids.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn validated(id: &str, submission: Submission) -> ValidatedMessage {
    ValidatedMessage {
        message_id: id.into(),
        customer_id: submission.customer_id.clone(),
        submission,
        encoding: "utf-8".into(),
        segments: 1,
        validated_at: now_millis(),
        upgraded_from: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn poison_records_never_stop_another_customers_messages() -> anyhow::Result<()> {
    let pipeline = Pipeline::start_tuned(
        TestEnv::new()?,
        &[],
        fast_carrier(),
        |config| config + MALLORY,
        |_| {},
        |runtime| runtime.kafka.max_record_bytes = LIMIT,
    )
    .await?;
    // A direct producer, held only to the broker's limit.
    let outside = Runtime::new(pipeline.stack.env.kafka(), &pipeline.stack.registry.url())?;
    let big_text = "😀".repeat(87_000); // 348 kB, within the text bound, over the limit
    let mut long_to = sample_submission(Some("poison-to"), "mallory", "hi");
    long_to.to = "1".repeat(500_000);
    let mut long_bill = sample_submission(Some("poison-bill"), "mallory", "hi");
    long_bill.bill_code = Some("b".repeat(600_000));
    // Valid but for its length: its rejection (which repeats it) can never be written.
    let big_rejection = sample_submission(Some("poison-rejection"), "mallory", &big_text);
    for submission in [long_to, long_bill, big_rejection] {
        let bytes = outside.codec.encode(names::ACCEPTED, &submission).await?;
        produce_raw(&outside, names::ACCEPTED, "mallory", &bytes).await?;
    }
    // Route's and dispatch's outputs carry the message: over the limit for these.
    let mut big = sample_submission(Some("poison-validated"), "acme", &big_text);
    big.to = "01010000001".into();
    let bytes = outside
        .codec
        .encode(
            names::VALIDATED,
            &validated("poison-validated", big.clone()),
        )
        .await?;
    produce_raw(&outside, names::VALIDATED, "poison-validated", &bytes).await?;
    big.message_id = Some("poison-dispatch".into());
    let request = DispatchRequest {
        message_id: "poison-dispatch".into(),
        customer_id: "acme".into(),
        carrier: "skt".into(),
        sender_group: "skt-direct".into(),
        sender: "skt-a".into(),
        attempt: 1,
        message: validated("poison-dispatch", big),
        trail: Vec::new(),
        routed_at: now_millis(),
        prefer_group: None,
    };
    let lane = sender_lane("skt-a", NORMAL_LANE);
    let bytes = outside.codec.encode(&lane, &request).await?;
    produce_raw(&outside, &lane, "poison-dispatch", &bytes).await?;

    // Another customer's 20 messages, right after: all finish within 10 s.
    let http = reqwest::Client::new();
    let posted = Instant::now();
    let ids = post_batch(&http, &pipeline.ingress_url, "after", 0, 20).await?;
    let reports = wait_for_finals(&pipeline, &ids, Duration::from_secs(10)).await?;
    println!(
        "20 messages behind the poison finished in {:?}",
        posted.elapsed()
    );
    for id in &ids {
        assert_eq!(reports[id].len(), 1, "one final for {id}");
        assert_eq!(reports[id][0].status, ResultStatus::Delivered, "{id}");
    }

    // Each poison ends with one final report saying why.
    let poison: Vec<String> = [
        "poison-to",
        "poison-bill",
        "poison-rejection",
        "poison-validated",
        "poison-dispatch",
    ]
    .map(String::from)
    .to_vec();
    let reports = wait_for_finals(&pipeline, &poison, Duration::from_secs(30)).await?;
    let ended = |id: &str| {
        let r = &reports[id];
        assert_eq!(r.len(), 1, "one final for {id}: {r:?}");
        (
            r[0].status,
            r[0].result_code.as_str(),
            r[0].result_text.clone(),
        )
    };
    let (status, code, text) = ended("poison-to");
    assert_eq!((status, code), (ResultStatus::Rejected, "field_too_long"));
    assert!(text.contains("to is 500000 characters long"), "{text}");
    let (status, code, text) = ended("poison-bill");
    assert_eq!((status, code), (ResultStatus::Rejected, "field_too_long"));
    assert!(
        text.contains("bill_code is 600000 characters long"),
        "{text}"
    );
    let (status, code, text) = ended("poison-rejection");
    assert_eq!((status, code), (ResultStatus::Rejected, "unproducible"));
    assert!(text.contains("too large"), "{text}");
    assert_eq!(ended("poison-validated").0, ResultStatus::Failed);
    assert_eq!(ended("poison-validated").1, "unproducible");
    // Dispatch gave the request to the carrier before its outcome was refused: the final is
    // the carrier's receipt if it came first, else the failed report — one either way.
    let (status, code, _) = ended("poison-dispatch");
    assert!(
        matches!(
            (status, code),
            (ResultStatus::Failed, "unproducible") | (ResultStatus::Delivered, _)
        ),
        "{status:?} {code}"
    );
    // The final reports stay small: nothing of the 500 kB `to` or the 348 kB text.
    for id in &poison {
        let bytes = switchyard_schemas::to_datum(&reports[id][0])?.len();
        assert!(bytes < 5_000, "{id}: {bytes} bytes");
    }

    // The inputs whose outputs could not be written are dead letters, with the reason; the
    // rejected ones (bounded at validate) are not.
    let runtime = &pipeline.stack.runtime;
    for (topic, key, stage) in [
        (names::ACCEPTED.to_string(), "mallory", "validate"),
        (names::VALIDATED.to_string(), "poison-validated", "route"),
        (lane.clone(), "poison-dispatch", "dispatch.skt-a"),
    ] {
        let dead = read_all(&runtime.kafka, &names::dead_letter(&topic)).await?;
        assert_eq!(dead.len(), 1, "one dead letter of {topic}");
        let letter = &dead[0];
        let headers = letter.headers().expect("headers");
        assert_eq!(letter.key(), Some(key.as_bytes()), "{topic}");
        assert_eq!(header_text(headers, KIND_HEADER), Some("unproducible"));
        assert_eq!(header_text(headers, STAGE_HEADER), Some(stage), "{topic}");
        let reason = header_text(headers, REASON_HEADER).unwrap_or_default();
        assert!(reason.contains("too large"), "{topic}: {reason}");
        // Over the limit itself, the input stays at its source position instead.
        assert!(
            header_text(headers, PAYLOAD_OMITTED_HEADER).is_some(),
            "{topic}"
        );
    }
    pipeline.stop().await;
    Ok(())
}
