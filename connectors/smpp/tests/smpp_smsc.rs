//! The SMPP sender against a real SMSC nobody on the team wrote: the npm `smpp` package's
//! server, scripted by `tests/smsc/smsc.js` (bind refusal, throttling, a dropped connection
//! with a full window, receipts before responses, ids in another base, 10,000 messages).
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Reports, Smsc, message, settings, taken_texts};
use futures::StreamExt;
use switchyard_schemas::ResultStatus;
use switchyard_smpp::{
    BindState, Class, MemoryIndex, ReportKind, SmppSender, SmppSettings, SubmitOutcome,
};

fn start(s: SmppSettings, reports: &Arc<Reports>) -> SmppSender {
    SmppSender::start(s, Arc::new(MemoryIndex::default()), reports.clone()).unwrap()
}

/// Submit messages `range` at once (as many in flight as the sender takes).
async fn submit_all(
    sender: &SmppSender,
    range: std::ops::Range<usize>,
) -> Vec<(usize, SubmitOutcome)> {
    futures::stream::iter(range)
        .map(|i| async move { (i, sender.submit(message(i)).await) })
        .buffer_unordered(200)
        .collect()
        .await
}

/// Every message id got exactly one delivered receipt report.
fn assert_one_delivered_each(reports: &[switchyard_smpp::ReceiptReport], n: usize) {
    let ids: Vec<&str> = reports
        .iter()
        .map(|r| r.context.message_id.as_str())
        .collect();
    let unique: HashSet<&str> = ids.iter().copied().collect();
    assert_eq!(ids.len(), n, "one report per message");
    assert_eq!(unique.len(), n, "no message reported twice");
    for r in reports {
        assert_eq!(r.kind, ReportKind::Receipt, "{r:?}");
        assert_eq!(r.status, ResultStatus::Delivered, "{r:?}");
        assert_eq!(r.result_code, "0000");
        let i: usize = r.context.message_id[2..].parse().unwrap();
        assert_eq!(
            r.context.to,
            message(i).to,
            "the receipt found its own message"
        );
        assert_eq!(r.context.reference, message(i).reference);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_bind_fails_submits_for_another_sender_and_sends_nothing() {
    let smsc = Smsc::start(&[("REFUSE_BIND", "1")]);
    let reports = Reports::new();
    let mut s = settings(smsc.port);
    s.bind_wait_ms = 500;
    let sender = start(s, &reports);
    let mut state = sender.state();
    let refused = tokio::time::timeout(
        Duration::from_secs(5),
        state.wait_for(|s| matches!(s, BindState::Refused { .. })),
    )
    .await
    .unwrap()
    .unwrap()
    .clone();
    assert!(
        matches!(&refused, BindState::Refused { status } if status.contains("ESME_RBINDFAIL")),
        "{refused:?}"
    );
    let outcome = sender.submit(message(1)).await;
    assert!(
        matches!(
            &outcome,
            SubmitOutcome::Failed {
                class: Class::TryAnotherSender,
                code: "2002",
                ..
            }
        ),
        "{outcome:?}"
    );
    assert!(smsc.submits().is_empty());
    // It keeps trying, with backoff.
    let count = |events: &[serde_json::Value]| {
        events
            .iter()
            .filter(|e| e["event"] == "bind_refused")
            .count()
    };
    let binds = count(
        &smsc
            .wait_until(Duration::from_secs(5), |e| count(e) >= 2)
            .await,
    );
    assert!(binds >= 2, "bind retried: {binds}");
    sender.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_submits_pause_the_bind_and_are_sent_again_not_failed() {
    let smsc = Smsc::start(&[("THROTTLE_EVERY", "4")]);
    let reports = Reports::new();
    let sender = start(settings(smsc.port), &reports);
    let outcomes = submit_all(&sender, 0..40).await;
    for (i, outcome) in &outcomes {
        assert!(
            matches!(outcome, SubmitOutcome::Accepted { .. }),
            "message {i}: {outcome:?}"
        );
    }
    let submits = smsc.submits();
    let throttled: Vec<_> = submits
        .iter()
        .filter(|s| s["status"] == "throttled")
        .collect();
    assert!(throttled.len() >= 10, "{} throttled", throttled.len());
    let taken = taken_texts(&submits);
    assert_eq!(taken.len(), 40);
    assert!(
        taken.values().all(|&n| n == 1),
        "one accepted submit_sm per message"
    );
    // Each throttled message came again only after the pause (200 ms, some slack).
    for t in &throttled {
        let again = submits
            .iter()
            .find(|s| s["status"] == "ok" && s["text"] == t["text"])
            .unwrap();
        let waited = again["t"].as_i64().unwrap() - t["t"].as_i64().unwrap();
        assert!(waited >= 150, "resent after {waited} ms");
    }
    let reports = reports.wait_for(40, Duration::from_secs(10)).await;
    assert_one_delivered_each(&reports, 40);
    sender.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_with_a_full_window_sends_nothing_twice_and_receipts_reconcile() {
    // 5 answered, then 10 taken but unanswered (the whole window), then the connection drops;
    // their receipts come on the next bind.
    let smsc = Smsc::start(&[
        ("DROP_AFTER", "5"),
        ("DROP_HELD", "10"),
        ("RECEIPTS", "text"),
    ]);
    let reports = Reports::new();
    let sender = start(settings(smsc.port), &reports);
    let outcomes = submit_all(&sender, 0..30).await;
    let ambiguous: Vec<usize> = outcomes
        .iter()
        .filter(|(_, o)| matches!(o, SubmitOutcome::Ambiguous { .. }))
        .map(|(i, _)| *i)
        .collect();
    let accepted = outcomes
        .iter()
        .filter(|(_, o)| matches!(o, SubmitOutcome::Accepted { .. }))
        .count();
    assert_eq!(
        ambiguous.len(),
        10,
        "the full window is ambiguous: {outcomes:?}"
    );
    assert_eq!(accepted, 20, "{outcomes:?}");
    let submits = smsc.submits();
    assert_eq!(submits.len(), 30, "no submit_sm sent twice");
    let taken = taken_texts(&submits);
    assert_eq!(taken.len(), 30);
    assert!(taken.values().all(|&n| n == 1));
    let held: HashSet<String> = submits
        .iter()
        .filter(|s| s["status"] == "held")
        .map(|s| s["dest"].as_str().unwrap().to_string())
        .collect();
    let ambiguous_to: HashSet<String> = ambiguous.iter().map(|&i| message(i).to).collect();
    assert_eq!(
        held, ambiguous_to,
        "exactly the unanswered ones are ambiguous"
    );
    // Every message, the ambiguous ones too, gets its receipt.
    let reports = reports.wait_for(30, Duration::from_secs(10)).await;
    assert_one_delivered_each(&reports, 30);
    assert!(
        smsc.events()
            .iter()
            .filter(|e| e["event"] == "bind")
            .count()
            >= 2
    );
    sender.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ambiguous_submits_without_receipts_fail_as_unknown_after_the_deadline() {
    let smsc = Smsc::start(&[
        ("DROP_AFTER", "2"),
        ("DROP_HELD", "3"),
        ("RECEIPTS", "none"),
    ]);
    let reports = Reports::new();
    let mut s = settings(smsc.port);
    s.window = 3;
    s.ambiguous_deadline_ms = 500;
    let sender = start(s, &reports);
    let outcomes = submit_all(&sender, 0..5).await;
    let ambiguous = outcomes
        .iter()
        .filter(|(_, o)| matches!(o, SubmitOutcome::Ambiguous { .. }))
        .count();
    assert_eq!(ambiguous, 3, "{outcomes:?}");
    let reports = reports.wait_for(3, Duration::from_secs(5)).await;
    assert_eq!(reports.len(), 3);
    for r in &reports {
        assert_eq!(r.kind, ReportKind::Unknown);
        assert_eq!(r.result_code, "3006");
        assert_eq!(r.status, ResultStatus::Failed);
    }
    assert_eq!(smsc.submits().len(), 5, "nothing resent");
    sender.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_before_their_responses_are_held_and_matched() {
    let smsc = Smsc::start(&[("RECEIPT_ORDER", "before"), ("DELAY_MS", "30")]);
    let reports = Reports::new();
    let sender = start(settings(smsc.port), &reports);
    let outcomes = submit_all(&sender, 0..50).await;
    assert!(
        outcomes
            .iter()
            .all(|(_, o)| matches!(o, SubmitOutcome::Accepted { .. }))
    );
    let reports = reports.wait_for(50, Duration::from_secs(10)).await;
    assert_one_delivered_each(&reports, 50);
    sender.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipt_ids_in_another_base_match() {
    for (resp, receipt, form) in [("dec", "hex", "text"), ("hex", "dec", "tlv")] {
        let smsc = Smsc::start(&[
            ("ID_BASE", resp),
            ("RECEIPT_ID_BASE", receipt),
            ("RECEIPTS", form),
        ]);
        let reports = Reports::new();
        let sender = start(settings(smsc.port), &reports);
        let outcomes = submit_all(&sender, 0..20).await;
        let resp_ids: HashSet<String> = outcomes
            .iter()
            .map(|(_, o)| o.carrier_id().unwrap().to_string())
            .collect();
        let got = reports.wait_for(20, Duration::from_secs(10)).await;
        assert_one_delivered_each(&got, 20);
        // The receipts really carried the other base.
        for r in &got {
            let id = r.carrier_id.clone().unwrap();
            assert!(
                !resp_ids.contains(&id),
                "{resp}→{receipt}: {id} is a response id"
            );
        }
        sender.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn separate_transmitter_and_receiver_binds() {
    // Receipts after and before the responses: the receiver bind learns the ids from the
    // transmitter bind.
    for order in ["after", "before"] {
        let smsc = Smsc::start(&[("RECEIPT_ORDER", order), ("DELAY_MS", "20")]);
        let reports = Reports::new();
        let mut s = settings(smsc.port);
        s.bind_mode = switchyard_smpp::BindMode::TransmitterReceiver;
        let sender = start(s, &reports);
        let outcomes = submit_all(&sender, 0..20).await;
        assert!(
            outcomes
                .iter()
                .all(|(_, o)| matches!(o, SubmitOutcome::Accepted { .. }))
        );
        let reports = reports.wait_for(20, Duration::from_secs(10)).await;
        assert_one_delivered_each(&reports, 20);
        let kinds: HashSet<String> = smsc
            .events()
            .iter()
            .filter(|e| e["event"] == "bind")
            .map(|e| e["kind"].as_str().unwrap().to_string())
            .collect();
        assert!(kinds.contains("bind_transmitter") && kinds.contains("bind_receiver"));
        sender.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_messages_none_lost_none_sent_twice() {
    const N: usize = 10_000;
    let smsc = Smsc::start(&[]);
    let reports = Reports::new();
    let sender = start(settings(smsc.port), &reports);
    let started = Instant::now();
    let outcomes = submit_all(&sender, 0..N).await;
    let submitted = started.elapsed();
    let reports = reports.wait_for(N, Duration::from_secs(60)).await;
    let all = started.elapsed();
    let accepted = outcomes
        .iter()
        .filter(|(_, o)| matches!(o, SubmitOutcome::Accepted { .. }))
        .count();
    assert_eq!(accepted, N);
    let submits = smsc.submits();
    assert_eq!(submits.len(), N, "one submit_sm per message");
    let taken = taken_texts(&submits);
    assert_eq!(taken.len(), N);
    assert!(taken.values().all(|&n| n == 1));
    assert_one_delivered_each(&reports, N);
    println!(
        "SMPP rate: {N} messages submitted in {:.2} s ({:.0}/s), all receipts in {:.2} s ({:.0}/s), window 10",
        submitted.as_secs_f64(),
        N as f64 / submitted.as_secs_f64(),
        all.as_secs_f64(),
        N as f64 / all.as_secs_f64()
    );
    sender.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_response_settles_an_ambiguous_submit_and_its_receipt_matches_by_id() {
    // Every answer comes after 1.2 s; the sender gives up waiting after 0.4 s.
    let smsc = Smsc::start(&[("DELAY_MS", "1200")]);
    let reports = Reports::new();
    let mut s = settings(smsc.port);
    s.submit_timeout_ms = 400;
    s.enquire_link_interval_ms = 60_000;
    let sender = start(s, &reports);
    let outcomes = submit_all(&sender, 0..3).await;
    assert!(
        outcomes
            .iter()
            .all(|(_, o)| matches!(o, SubmitOutcome::Ambiguous { .. })),
        "{outcomes:?}"
    );
    let got = reports.wait_for(3, Duration::from_secs(5)).await;
    assert_one_delivered_each(&got, 3);
    // The receipts carried the ids of the late responses.
    let ids: HashSet<String> = smsc
        .submits()
        .iter()
        .map(|s| s["message_id"].as_str().unwrap().to_string())
        .collect();
    for r in &got {
        assert!(ids.contains(r.carrier_id.as_deref().unwrap()));
    }
    assert_eq!(smsc.submits().len(), 3, "nothing resent");
    sender.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_texts_go_in_udh_parts_and_korean_in_ks_c_5601() {
    let smsc = Smsc::start(&[]);
    let reports = Reports::new();
    let sender = start(settings(smsc.port), &reports);
    let mut long = message(1);
    long.text = "x".repeat(200);
    let outcome = sender.submit(long).await;
    let SubmitOutcome::Accepted { carrier_ids } = &outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(carrier_ids.len(), 2);
    let submits = smsc.submits();
    assert_eq!(submits.len(), 2);
    // IE 0x00, length 3, reference, 2 parts, part number.
    let udh: Vec<&str> = submits
        .iter()
        .map(|s| s["udh"][0].as_str().unwrap())
        .collect();
    assert!(
        udh[0].starts_with("0003") && udh[0].ends_with("0201"),
        "{udh:?}"
    );
    assert!(
        udh[1].starts_with(&udh[0][..6]) && udh[1].ends_with("0202"),
        "{udh:?}"
    );
    let got = reports.wait_for(2, Duration::from_secs(5)).await;
    let parts: HashSet<u8> = got.iter().map(|r| r.context.part).collect();
    assert_eq!(parts, HashSet::from([1, 2]));
    sender.shutdown().await;

    let smsc = Smsc::start(&[]);
    let mut s = settings(smsc.port);
    s.data_coding = switchyard_smpp::DataCoding::Ksc5601;
    let sender = start(s, &Reports::new());
    let mut korean = message(2);
    korean.text = "안녕하세요".into();
    assert!(matches!(
        sender.submit(korean).await,
        SubmitOutcome::Accepted { .. }
    ));
    let submit = &smsc.submits()[0];
    assert_eq!(submit["data_coding"], 14);
    let (bytes, _, _) = encoding_rs::EUC_KR.encode("안녕하세요");
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(submit["hex"].as_str().unwrap_or_default(), hex, "{submit}");
    sender.shutdown().await;

    let smsc = Smsc::start(&[]);
    let mut s = settings(smsc.port);
    s.data_coding = switchyard_smpp::DataCoding::Ucs2;
    let sender = start(s, &Reports::new());
    let mut ucs2 = message(3);
    ucs2.text = "안녕 😀".into();
    assert!(matches!(
        sender.submit(ucs2).await,
        SubmitOutcome::Accepted { .. }
    ));
    let submit = &smsc.submits()[0];
    assert_eq!(submit["data_coding"], 8);
    assert_eq!(
        submit["text"], "안녕 😀",
        "the SMSC decoded our UCS-2: {submit}"
    );
    sender.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_classified_and_never_resent() {
    let smsc = Smsc::start(&[("STATUS_FOR", "01090000000:11,01090000001:8,01090000002:20")]);
    let reports = Reports::new();
    let mut s = settings(smsc.port);
    s.max_throttle_retries = 2;
    s.throttle_pause_ms = 50;
    let sender = start(s, &reports);
    let mut outcomes = submit_all(&sender, 0..4).await;
    outcomes.sort_by_key(|(i, _)| *i);
    assert!(
        matches!(
            &outcomes[0].1,
            SubmitOutcome::Failed { class: Class::Permanent, code: "2001", detail }
                if detail.contains("0x0000000B")
        ),
        "{outcomes:?}"
    );
    assert!(
        matches!(
            &outcomes[1].1,
            SubmitOutcome::Failed {
                class: Class::TryAnotherSender,
                code: "2002",
                ..
            }
        ),
        "{outcomes:?}"
    );
    assert_eq!(outcomes[2].1, SubmitOutcome::Throttled, "{outcomes:?}");
    assert!(matches!(outcomes[3].1, SubmitOutcome::Accepted { .. }));
    let per_dest = |to: &str| smsc.submits().iter().filter(|s| s["dest"] == to).count();
    assert_eq!(
        per_dest(&message(0).to),
        1,
        "a permanent refusal is not resent"
    );
    assert_eq!(
        per_dest(&message(1).to),
        1,
        "nor a system error (another sender's job)"
    );
    assert_eq!(
        per_dest(&message(2).to),
        3,
        "a queue-full answer: sent again twice, then handed back"
    );
    sender.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn never_more_than_the_window_unanswered() {
    let smsc = Smsc::start(&[("DELAY_MS", "40")]);
    let reports = Reports::new();
    let mut s = settings(smsc.port);
    s.window = 3;
    let sender = start(s, &reports);
    let outcomes = submit_all(&sender, 0..24).await;
    assert!(
        outcomes
            .iter()
            .all(|(_, o)| matches!(o, SubmitOutcome::Accepted { .. }))
    );
    let (mut open, mut most) = (0i64, 0i64);
    for e in smsc.events() {
        if e["event"] == "submit_sm" {
            open += 1;
        } else if e["event"] == "submit_sm_resp" {
            open -= 1;
        }
        most = most.max(open);
    }
    assert_eq!(most, 3, "the window fills up and never overflows");
    sender.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_waits_for_answers_then_unbinds() {
    let smsc = Smsc::start(&[("DELAY_MS", "300")]);
    let reports = Reports::new();
    let sender = Arc::new(start(settings(smsc.port), &reports));
    let submitting = {
        let sender = sender.clone();
        tokio::spawn(async move { submit_all(&sender, 0..5).await })
    };
    smsc.wait_until(Duration::from_secs(5), |e| {
        e.iter().filter(|e| e["event"] == "submit_sm").count() == 5
    })
    .await;
    sender.shutdown().await;
    let outcomes = submitting.await.unwrap();
    assert!(
        outcomes
            .iter()
            .all(|(_, o)| matches!(o, SubmitOutcome::Accepted { .. })),
        "answered before the unbind: {outcomes:?}"
    );
    assert_eq!(*sender.state().borrow(), BindState::Stopped);
    let after = sender.submit(message(9)).await;
    assert!(matches!(
        after,
        SubmitOutcome::Failed {
            class: Class::TryAnotherSender,
            ..
        }
    ));
    let events = smsc.events();
    let unbind = events.iter().position(|e| e["event"] == "unbind");
    let last_resp = events.iter().rposition(|e| e["event"] == "submit_sm_resp");
    assert!(unbind.is_some() && last_resp < unbind, "{events:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconciled_submit_matches_its_later_receipts_by_id() {
    // Each message gets an intermediate and a final receipt; the unanswered ones' receipts
    // come after the drop: the first reconciles by recipient, the second must match by id.
    let smsc = Smsc::start(&[
        ("DROP_AFTER", "2"),
        ("DROP_HELD", "4"),
        ("RECEIPTS", "tlv"),
        ("RECEIPT_STATS", "ENROUTE,DELIVRD"),
    ]);
    let reports = Reports::new();
    let mut s = settings(smsc.port);
    s.window = 4;
    let sender = start(s, &reports);
    let outcomes = submit_all(&sender, 0..8).await;
    let ambiguous = outcomes
        .iter()
        .filter(|(_, o)| matches!(o, SubmitOutcome::Ambiguous { .. }))
        .count();
    assert_eq!(ambiguous, 4, "{outcomes:?}");
    let got = reports.wait_for(16, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 16, "{got:?}");
    for i in 0..8 {
        let id = message(i).message_id;
        let mine: Vec<_> = got.iter().filter(|r| r.context.message_id == id).collect();
        assert_eq!(mine.len(), 2, "{id}: {mine:?}");
        assert!(mine.iter().any(|r| r.status == ResultStatus::Delivered));
        assert!(mine.iter().any(|r| r.result_code == "1000"));
        assert_eq!(mine[0].carrier_id, mine[1].carrier_id);
    }
    sender.shutdown().await;
}
