//! One contract for every sender kind, written once and run for each (`http` against the HTTP
//! carrier simulator, `smpp` against the SMSC simulator on the npm `smpp` package): the
//! dispatch role on the real broker, a sender of the kind configured through `config apply`,
//! requests on its topic, and what ends up on `messages.dispatched` / `messages.reports` and
//! at the peer.
//!
//! - accepted: submitted once with the carrier id; the receipt becomes a delivered report.
//! - refused: failed for good with the unified code 2001, `failure_class = permanent`.
//! - throttled: the busy answer is never a failure; the message is sent again and taken.
//! - outage: nothing is written while the peer is down; once it is back the message is taken.
//! - ambiguous: no answer in time → recorded submitted with no carrier id, never sent again;
//!   the receipt still reports it (decision 0017).
//!
//! Needs Kafka (`SWITCHYARD_TEST_BROKERS`), node and `tests/smsc/node_modules`.

use std::time::Duration;

use rdkafka::Message;
use switchyard::pipeline::{Role, Running, start};
use switchyard_runtime::names::{DISPATCHED, REPORTS, sender};
use switchyard_runtime::{CancellationToken, Output};
use switchyard_schemas::{
    DeliveryReport, DispatchOutcome, DispatchRequest, DispatchStatus, FailureClass, ResultStatus,
    ValidatedMessage,
};
use switchyard_tests::senders::{Behaviour, Kind, Peer, REFUSED_PREFIX, endpoint, settings};
use switchyard_tests::{Stack, free_port, read_all, sample_submission};

/// How long any outcome may take to show up.
const PATIENCE: Duration = Duration::from_secs(45);

/// The cases of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    Accepted,
    Refused,
    Throttled,
    Outage,
    Ambiguous,
}

fn request(sender_name: &str, message_id: &str, to: &str) -> DispatchRequest {
    let mut submission = sample_submission(Some(message_id), "acme", "contract test");
    submission.to = to.into();
    submission.client_message_id = Some(format!("c-{message_id}"));
    DispatchRequest {
        message_id: message_id.into(),
        customer_id: "acme".into(),
        carrier: "skt".into(),
        sender_group: "contract".into(),
        sender: sender_name.into(),
        attempt: 1,
        message: ValidatedMessage {
            message_id: message_id.into(),
            customer_id: "acme".into(),
            submission,
            encoding: "euc-kr".into(),
            segments: 1,
            validated_at: 2,
            upgraded_from: None,
        },
        trail: vec![],
        routed_at: 3,
        prefer_group: None,
    }
}

/// A stack with one sender of `kind` (named after the kind and case) pointing at `port`.
struct Harness {
    stack: Stack,
    name: String,
    shutdown: CancellationToken,
    running: Option<Running>,
    _history: tempfile::TempDir,
}

impl Harness {
    async fn start(kind: Kind, case: &str, port: u16) -> anyhow::Result<Harness> {
        let name = format!("{}-{case}", kind.name());
        let stack = Stack::start(&[&sender(&name)]).await?;
        let config = format!(
            r#"
[[customers]]
id = "acme"
channels = ["sms"]

[[senders]]
name = "{name}"
group = "contract"
channel = "sms"
carriers = ["skt"]
kind = "{kind}"
endpoint = "{endpoint}"
settings = {settings}
"#,
            kind = kind.name(),
            endpoint = endpoint(kind, port),
            settings = settings(kind),
        );
        switchyard_config::apply(&stack.runtime, &config, false, 1).await?;
        Ok(Harness {
            stack,
            name,
            shutdown: CancellationToken::new(),
            running: None,
            _history: tempfile::tempdir()?,
        })
    }

    async fn send(&self, message_id: &str, to: &str) -> anyhow::Result<()> {
        let output = Output::new(
            sender(&self.name),
            message_id,
            request(&self.name, message_id, to),
        );
        self.stack.runtime.publish("test", &[output]).await?;
        Ok(())
    }

    async fn start_dispatch(&mut self) -> anyhow::Result<()> {
        self.shutdown = CancellationToken::new();
        let settings = switchyard_tests::pipeline::local_settings(self._history.path());
        self.running = Some(
            start(
                &self.stack.runtime,
                &[Role::Dispatch],
                &settings,
                &self.shutdown,
            )
            .await?,
        );
        Ok(())
    }

    async fn stop_dispatch(&mut self) {
        self.shutdown.cancel();
        if let Some(running) = self.running.take() {
            running.wait().await;
        }
    }

    async fn outcomes(&self, message_id: &str) -> anyhow::Result<Vec<DispatchOutcome>> {
        let mut found = Vec::new();
        for record in read_all(&self.stack.runtime.kafka, DISPATCHED).await? {
            let outcome: DispatchOutcome = self
                .stack
                .runtime
                .codec
                .decode(record.payload().unwrap_or_default())
                .await?;
            if outcome.message_id == message_id {
                found.push(outcome);
            }
        }
        Ok(found)
    }

    async fn reports(&self, message_id: &str) -> anyhow::Result<Vec<DeliveryReport>> {
        let mut found = Vec::new();
        for record in read_all(&self.stack.runtime.kafka, REPORTS).await? {
            let report: DeliveryReport = self
                .stack
                .runtime
                .codec
                .decode(record.payload().unwrap_or_default())
                .await?;
            if report.message_id == message_id {
                found.push(report);
            }
        }
        Ok(found)
    }

    /// The message's outcome and first report, once both are there.
    async fn settled(
        &self,
        message_id: &str,
        peer: Option<&Peer>,
    ) -> anyhow::Result<(DispatchOutcome, DeliveryReport)> {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let outcomes = self.outcomes(message_id).await?;
            let reports = self.reports(message_id).await?;
            if let (Some(outcome), Some(report)) = (outcomes.first(), reports.first()) {
                anyhow::ensure!(outcomes.len() == 1, "one outcome: {outcomes:?}");
                return Ok((outcome.clone(), report.clone()));
            }
            if tokio::time::Instant::now() > deadline {
                let seen = match peer {
                    Some(peer) => format!("{:?}", peer.port()),
                    None => "no peer".into(),
                };
                anyhow::bail!(
                    "{message_id} not settled after {PATIENCE:?} (peer {seen}): outcomes {outcomes:?}, reports {reports:?}"
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

async fn contract(kind: Kind, case: Case) -> anyhow::Result<()> {
    switchyard_tests::init_logging();
    let port = free_port();
    let behaviour = match case {
        Case::Accepted | Case::Outage => Behaviour::Normal,
        Case::Refused => Behaviour::Refuse,
        Case::Throttled => Behaviour::ThrottleEverySecond,
        Case::Ambiguous => Behaviour::AnswerLate,
    };
    let mut harness = Harness::start(kind, &format!("{case:?}").to_lowercase(), port).await?;
    let mut peer = if case == Case::Outage {
        None
    } else {
        Some(Peer::start(kind, behaviour, port).await?)
    };
    harness.start_dispatch().await?;
    match case {
        Case::Accepted => {
            let to = "01012340001";
            harness.send("m-accepted", to).await?;
            let (outcome, report) = harness.settled("m-accepted", peer.as_ref()).await?;
            assert_eq!(outcome.status, DispatchStatus::Submitted);
            assert_eq!(outcome.failure_class, None);
            let id = outcome.carrier_message_id.clone().expect("a carrier id");
            assert_eq!(report.status, ResultStatus::Delivered, "{report:?}");
            assert_eq!(report.result_code, "0000");
            assert_eq!(report.carrier_message_id.as_deref(), Some(id.as_str()));
            assert_eq!(report.client_message_id.as_deref(), Some("c-m-accepted"));
            assert_eq!(report.sender, harness.name);
            let peer = peer.as_ref().expect("peer");
            assert_eq!(peer.submits_to(to).await?.len(), 1, "submitted once");
        }
        Case::Refused => {
            let to = format!("{REFUSED_PREFIX}0000001");
            harness.send("m-refused", &to).await?;
            let (outcome, report) = harness.settled("m-refused", peer.as_ref()).await?;
            assert_eq!(outcome.status, DispatchStatus::Failed);
            assert_eq!(outcome.failure_class, Some(FailureClass::Permanent));
            assert_eq!(report.status, ResultStatus::Failed);
            assert_eq!(
                report.result_code, "2001",
                "the one unified code: {report:?}"
            );
            let peer = peer.as_ref().expect("peer");
            assert_eq!(peer.submits_to(&to).await?, vec!["refused"], "never resent");
        }
        Case::Throttled => {
            let (a, b) = ("01012340011", "01012340012");
            harness.send("m-throttled-a", a).await?;
            harness.send("m-throttled-b", b).await?;
            for id in ["m-throttled-a", "m-throttled-b"] {
                let (outcome, report) = harness.settled(id, peer.as_ref()).await?;
                assert_eq!(outcome.status, DispatchStatus::Submitted, "{outcome:?}");
                assert_eq!(outcome.failure_class, None);
                assert_eq!(report.status, ResultStatus::Delivered, "{report:?}");
            }
            let peer = peer.as_ref().expect("peer");
            let mut statuses = peer.submits_to(a).await?;
            statuses.extend(peer.submits_to(b).await?);
            assert_eq!(
                statuses.len(),
                3,
                "one busy answer, sent again once: {statuses:?}"
            );
            assert_eq!(
                statuses.iter().filter(|s| *s == "ok").count(),
                2,
                "{statuses:?}"
            );
            assert_eq!(
                statuses.iter().filter(|s| *s == "throttled").count(),
                1,
                "{statuses:?}"
            );
        }
        Case::Outage => {
            let to = "01012340021";
            harness.send("m-outage", to).await?;
            // The peer is down for a while: the sender keeps failing, nothing is written.
            tokio::time::sleep(Duration::from_secs(2)).await;
            assert!(harness.outcomes("m-outage").await?.is_empty());
            assert!(harness.reports("m-outage").await?.is_empty());
            let back = Peer::start(kind, Behaviour::Normal, port).await?;
            let (outcome, report) = harness.settled("m-outage", Some(&back)).await?;
            assert_eq!(outcome.status, DispatchStatus::Submitted);
            assert!(outcome.carrier_message_id.is_some());
            assert_eq!(report.status, ResultStatus::Delivered);
            assert_eq!(back.submits_to(to).await?.len(), 1);
            peer = Some(back);
        }
        Case::Ambiguous => {
            let to = "01012340031";
            harness.send("m-ambiguous", to).await?;
            let (outcome, report) = harness.settled("m-ambiguous", peer.as_ref()).await?;
            assert_eq!(outcome.status, DispatchStatus::Submitted, "{outcome:?}");
            assert_eq!(outcome.carrier_message_id, None);
            assert!(
                outcome
                    .detail
                    .as_deref()
                    .is_some_and(|d| d.starts_with("ambiguous")),
                "{outcome:?}"
            );
            assert_eq!(report.status, ResultStatus::Delivered, "{report:?}");
            let peer = peer.as_ref().expect("peer");
            assert_eq!(peer.submits_to(to).await?.len(), 1, "never sent again");
        }
    }
    harness.stop_dispatch().await;
    if let Some(peer) = peer.as_mut() {
        peer.stop();
    }
    Ok(())
}

macro_rules! contract {
    ($($name:ident: $kind:expr, $case:expr;)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() -> anyhow::Result<()> {
                contract($kind, $case).await
            }
        )*
    };
}

contract! {
    http_accepted: Kind::Http, Case::Accepted;
    http_refused: Kind::Http, Case::Refused;
    http_throttled: Kind::Http, Case::Throttled;
    http_outage: Kind::Http, Case::Outage;
    http_ambiguous: Kind::Http, Case::Ambiguous;
    smpp_accepted: Kind::Smpp, Case::Accepted;
    smpp_refused: Kind::Smpp, Case::Refused;
    smpp_throttled: Kind::Smpp, Case::Throttled;
    smpp_outage: Kind::Smpp, Case::Outage;
    smpp_ambiguous: Kind::Smpp, Case::Ambiguous;
}

/// SMPP receipts match through the durable index (`state.receipts`): a receipt that comes
/// after the dispatch role restarted — nothing of the first run left in memory — still
/// becomes the message's report.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn smpp_receipts_match_after_a_restart() -> anyhow::Result<()> {
    switchyard_tests::init_logging();
    let port = free_port();
    let mut harness = Harness::start(Kind::Smpp, "restart", port).await?;
    let peer = Peer::start(Kind::Smpp, Behaviour::LateReceipts, port).await?;
    harness.start_dispatch().await?;
    let to = "01012340041";
    harness.send("m-restart", to).await?;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while harness.outcomes("m-restart").await?.is_empty() {
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "never submitted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    harness.stop_dispatch().await;
    assert!(
        harness.reports("m-restart").await?.is_empty(),
        "the receipt is still held back by the SMSC"
    );
    harness.start_dispatch().await?;
    let (outcome, report) = harness.settled("m-restart", Some(&peer)).await?;
    assert_eq!(report.status, ResultStatus::Delivered, "{report:?}");
    assert_eq!(report.carrier_message_id, outcome.carrier_message_id);
    assert_eq!(peer.submits_to(to).await?.len(), 1, "not sent again");
    harness.stop_dispatch().await;
    Ok(())
}
