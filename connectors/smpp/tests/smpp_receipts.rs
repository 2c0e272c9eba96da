//! Receipts and the link against the simulator: deliver_sm_resp only after the report is
//! written, a failed write makes the SMSC send the receipt again, the carrier-id index carries
//! receipts across a restart of the sender, and enquire_link keeps an idle bind alive.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Reports, Smsc, message, settings};
use futures::future::BoxFuture;
use switchyard_smpp::{
    BindState, MemoryIndex, ReceiptReport, ReportSink, SinkError, SmppSender, SubmitOutcome,
};
use tokio::sync::Semaphore;

/// A sink whose writes wait for a permit, and fail while `failures` > 0.
struct Gated {
    permits: Semaphore,
    failures: AtomicUsize,
    written: Mutex<Vec<ReceiptReport>>,
}

impl ReportSink for Gated {
    fn write(&self, report: ReceiptReport) -> BoxFuture<'_, Result<(), SinkError>> {
        Box::pin(async move {
            let permit = self.permits.acquire().await.unwrap();
            permit.forget();
            if self
                .failures
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
            {
                return Err(SinkError {
                    reason: "store down".into(),
                    retriable: true,
                });
            }
            self.written.lock().unwrap().push(report);
            Ok(())
        })
    }
}

fn resp_statuses(smsc: &Smsc) -> Vec<i64> {
    smsc.events()
        .iter()
        .filter(|e| e["event"] == "deliver_sm_resp")
        .map(|e| e["status"].as_i64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliver_sm_resp_waits_for_the_written_report_and_a_failed_write_is_redelivered() {
    let smsc = Smsc::start(&[("RECEIPT_RETRY_MS", "100")]);
    let sink = Arc::new(Gated {
        permits: Semaphore::new(0),
        failures: AtomicUsize::new(3),
        written: Mutex::new(Vec::new()),
    });
    let sender = SmppSender::start(
        settings(smsc.port),
        Arc::new(MemoryIndex::default()),
        sink.clone(),
    )
    .unwrap();
    for i in 0..5 {
        assert!(matches!(
            sender.submit(message(i)).await,
            SubmitOutcome::Accepted { .. }
        ));
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        resp_statuses(&smsc).is_empty(),
        "no deliver_sm_resp before the report is written"
    );
    sink.permits.add_permits(1_000);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while sink.written.lock().unwrap().len() < 5 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let written: HashSet<String> = sink
        .written
        .lock()
        .unwrap()
        .iter()
        .map(|r| r.context.message_id.clone())
        .collect();
    assert_eq!(written.len(), 5);
    let ok = |events: &[serde_json::Value]| {
        events
            .iter()
            .filter(|e| e["event"] == "deliver_sm_resp" && e["status"] == 0)
            .count()
    };
    smsc.wait_until(Duration::from_secs(5), |e| ok(e) >= 5)
        .await;
    let statuses = resp_statuses(&smsc);
    assert_eq!(
        statuses.iter().filter(|&&s| s == 0x64).count(),
        3,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|&&s| s == 0).count(),
        5,
        "{statuses:?}"
    );
    sender.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_after_a_restart_match_through_the_index() {
    let smsc = Smsc::start(&[("RECEIPT_DELAY_MS", "800")]);
    let index = Arc::new(MemoryIndex::default());
    let first = Reports::new();
    let sender = SmppSender::start(settings(smsc.port), index.clone(), first.clone()).unwrap();
    for i in 0..10 {
        assert!(matches!(
            sender.submit(message(i)).await,
            SubmitOutcome::Accepted { .. }
        ));
    }
    sender.shutdown().await;
    assert_eq!(first.len(), 0, "receipts come later");
    // A new process, the same index: the receipts still find their messages.
    let second = Reports::new();
    let sender = SmppSender::start(settings(smsc.port), index, second.clone()).unwrap();
    let got = second.wait_for(10, Duration::from_secs(10)).await;
    let ids: HashSet<String> = got.iter().map(|r| r.context.message_id.clone()).collect();
    assert_eq!(ids.len(), 10, "{got:?}");
    for r in &got {
        let i: usize = r.context.message_id[2..].parse().unwrap();
        assert_eq!(r.context.reference, message(i).reference);
    }
    sender.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enquire_link_keeps_an_idle_bind() {
    let smsc = Smsc::start(&[]);
    let mut s = settings(smsc.port);
    s.enquire_link_interval_ms = 100;
    let sender = SmppSender::start(s, Arc::new(MemoryIndex::default()), Reports::new()).unwrap();
    let links = |events: &[serde_json::Value]| -> Vec<i64> {
        events
            .iter()
            .filter(|e| e["event"] == "enquire_link")
            .map(|e| e["t"].as_i64().unwrap())
            .collect()
    };
    let times = links(
        &smsc
            .wait_until(Duration::from_secs(5), |e| links(e).len() >= 4)
            .await,
    );
    assert!(times.len() >= 4, "{times:?}");
    for pair in times.windows(2) {
        assert!(
            pair[1] - pair[0] >= 90,
            "enquire_link every 100 ms: {times:?}"
        );
    }
    assert_eq!(*sender.state().borrow(), BindState::Bound);
    assert_eq!(
        smsc.events()
            .iter()
            .filter(|e| e["event"] == "bind")
            .count(),
        1,
        "no reconnect"
    );
    sender.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_sink_is_a_stream_of_receipts_answered_once_confirmed() {
    let smsc = Smsc::start(&[("RECEIPT_RETRY_MS", "100")]);
    let (sink, mut receipts) = switchyard_smpp::ChannelSink::new(16);
    let sender = SmppSender::start(
        settings(smsc.port),
        Arc::new(MemoryIndex::default()),
        Arc::new(sink),
    )
    .unwrap();
    assert!(matches!(
        sender.submit(message(7)).await,
        SubmitOutcome::Accepted { .. }
    ));
    // The first delivery of the receipt: refuse it (the store is down).
    let first = tokio::time::timeout(Duration::from_secs(5), receipts.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.report.context.message_id, message(7).message_id);
    first.written.send(Err("store down".into())).unwrap();
    // The SMSC sends it again; this time it is written.
    let second = tokio::time::timeout(Duration::from_secs(5), receipts.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(second.report.context.message_id, message(7).message_id);
    second.written.send(Ok(())).unwrap();
    let events = smsc
        .wait_until(Duration::from_secs(5), |e| {
            e.iter()
                .any(|e| e["event"] == "deliver_sm_resp" && e["status"] == 0)
        })
        .await;
    let statuses: Vec<i64> = events
        .iter()
        .filter(|e| e["event"] == "deliver_sm_resp")
        .map(|e| e["status"].as_i64().unwrap())
        .collect();
    assert_eq!(statuses, vec![0x64, 0]);
    sender.shutdown().await;
}
