//! report: `messages.reports` and `messages.rejected` → exactly one `reports.final` per message.
//! A receipt with a final status (or a rejection) becomes the message's FinalReport unless one
//! was already emitted: the stage remembers emitted message ids in a `KeySet` over
//! `reports.final` itself (durable, survives restarts) plus the ids in flight.

use std::collections::HashMap;
use std::sync::Mutex;

use switchyard_runtime::names::BALANCE_COMMANDS;
use switchyard_runtime::{KeySet, Origin, Output, Processor, StageError};
use switchyard_schemas::{
    BalanceCommand, BalanceKind, DeliveryReport, FinalReport, Rejection, ResultStatus, event_id,
    limits, now_millis, unproducible,
};

/// Output topic.
pub use switchyard_runtime::names::FINAL;

/// The stable event id of a message's final report (`X-Switchyard-Event-Id`).
pub fn final_event_id(message_id: &str) -> String {
    event_id(&[message_id, "final"])
}

/// The final report a receipt makes, if its status is final.
pub fn from_delivery(report: &DeliveryReport, now: i64) -> Option<FinalReport> {
    report.status.is_final().then(|| FinalReport {
        event_id: final_event_id(&report.message_id),
        message_id: report.message_id.clone(),
        customer_id: report.customer_id.clone(),
        client_id: report.client_id.clone(),
        client_message_id: report.client_message_id.clone(),
        channel: report.channel,
        to: report.to.clone(),
        status: report.status,
        result_code: report.result_code.clone(),
        result_text: report.result_text.clone(),
        carrier: Some(report.carrier.clone()).filter(|c| !c.is_empty()),
        sender: Some(report.sender.clone()).filter(|s| !s.is_empty()),
        attempt: report.attempt,
        submitted_at: report.submitted_at,
        done_at: now,
        trail: report.trail.clone(),
    })
}

/// The final report of a rejected submission.
pub fn from_rejection(rejection: &Rejection, now: i64) -> FinalReport {
    let s = &rejection.submission;
    FinalReport {
        event_id: final_event_id(&rejection.message_id),
        message_id: rejection.message_id.clone(),
        customer_id: rejection.customer_id.clone(),
        client_id: s.client_id.clone(),
        client_message_id: s.client_message_id.clone(),
        channel: s.channel,
        to: s.to.clone(),
        // An expired message ends `expired`, every other refusal `rejected`.
        status: if rejection.code == crate::validate::codes::EXPIRED {
            ResultStatus::Expired
        } else {
            ResultStatus::Rejected
        },
        result_code: rejection.code.clone(),
        result_text: rejection.detail.clone(),
        carrier: None,
        sender: None,
        attempt: 0,
        submitted_at: None,
        done_at: now,
        trail: Vec::new(),
    }
}

/// Which of report's runners put a final report in flight: a runner whose transaction failed
/// forgets only its own, not those in the other runner's open transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Runner {
    Deliveries,
    Rejections,
}

/// What report remembers: ids in `reports.final` and ids whose report is in flight (with the
/// runner whose transaction holds it).
#[derive(Debug)]
pub struct Emitted {
    done: KeySet,
    in_flight: Mutex<HashMap<String, Runner>>,
}

impl Emitted {
    pub fn new(done: KeySet) -> Self {
        Emitted {
            done,
            in_flight: Mutex::default(),
        }
    }

    /// Whether this message has its final report (written, or in flight).
    pub fn has_final(&self, message_id: &str) -> bool {
        self.done.contains(message_id)
            || self
                .in_flight
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .contains_key(message_id)
    }

    /// The output for `report`, unless this message already has its final report.
    fn emit_once(&self, report: FinalReport, runner: Runner) -> Vec<Output> {
        let mut in_flight = self
            .in_flight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if self.done.contains(&report.message_id)
            || in_flight
                .insert(report.message_id.clone(), runner)
                .is_some()
        {
            tracing::debug!(stage = "report", message_id = %report.message_id, "final report already emitted");
            return Vec::new();
        }
        tracing::debug!(stage = "report", message_id = %report.message_id, status = report.status.as_str(), "final");
        vec![Output::new(FINAL, report.message_id.clone(), report)]
    }

    /// Forget that `message_id`'s report is in flight: it was never written (its record did not
    /// fit), and its compact copy takes its place.
    fn forget(&self, message_id: &str) {
        self.in_flight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(message_id);
    }

    fn produced(&self, topic: &str, key: &str) {
        if topic == FINAL {
            self.done.insert(key);
            self.in_flight
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .remove(key);
        }
    }

    /// `runner`'s transaction failed: its reports in flight were not written.
    fn batch_failed(&self, runner: Runner) {
        self.in_flight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|_, by| *by != runner);
    }
}

/// report over `messages.reports`.
#[derive(Debug, Clone)]
pub struct ReportDeliveries(pub std::sync::Arc<Emitted>);

/// report over `messages.rejected`.
#[derive(Debug, Clone)]
pub struct ReportRejections(pub std::sync::Arc<Emitted>);

/// The refund a final report asks for: every message that did not end delivered gets back
/// what it was charged (validate ignores it for a message never charged, and applies it once).
pub fn refund_of(report: &FinalReport) -> Option<Output> {
    (report.status != ResultStatus::Delivered).then(|| {
        Output::new(
            BALANCE_COMMANDS,
            report.customer_id.clone(),
            BalanceCommand {
                request_id: format!("refund:{}", report.message_id),
                customer_id: report.customer_id.clone(),
                kind: BalanceKind::Refund,
                amount: 0,
                message_id: Some(report.message_id.clone()),
                reason: format!("{} {}", report.status.as_str(), report.result_code),
                requested_at: report.done_at,
            },
        )
    })
}

impl Processor for ReportDeliveries {
    type Input = DeliveryReport;

    fn process(
        &self,
        input: DeliveryReport,
        _origin: Origin<'_>,
    ) -> Result<Vec<Output>, StageError> {
        let Some(report) = from_delivery(&input, now_millis()) else {
            return Ok(Vec::new());
        };
        let refund = refund_of(&report);
        let mut outputs = self.0.emit_once(report, Runner::Deliveries);
        if !outputs.is_empty() {
            outputs.extend(refund);
        }
        Ok(outputs)
    }

    fn unproducible(&self, input: DeliveryReport, origin: Origin<'_>, reason: &str) -> Vec<Output> {
        // The message's status stands; only what made its final report too large is cut.
        self.0.forget(&input.message_id);
        let mut compact = input;
        compact.message_id = unproducible::detail(&compact.message_id);
        compact.customer_id = unproducible::detail(&compact.customer_id);
        compact.to = limits::truncate(&compact.to, limits::TO_MAX).to_string();
        compact.client_message_id = compact
            .client_message_id
            .map(|c| limits::truncate(&c, limits::CLIENT_MESSAGE_ID_MAX).to_string());
        compact.result_text = unproducible::detail(&compact.result_text);
        compact.trail = unproducible::last_hops(&compact.trail);
        tracing::warn!(stage = "report", message_id = %compact.message_id, reason, "final report cut to fit the broker");
        self.process(compact, origin).unwrap_or_default()
    }

    fn produced(&self, topic: &str, key: &str) {
        self.0.produced(topic, key);
    }

    fn batch_failed(&self) {
        self.0.batch_failed(Runner::Deliveries);
    }
}

impl Processor for ReportRejections {
    type Input = Rejection;

    fn process(&self, input: Rejection, _origin: Origin<'_>) -> Result<Vec<Output>, StageError> {
        Ok(self
            .0
            .emit_once(from_rejection(&input, now_millis()), Runner::Rejections))
    }

    fn unproducible(&self, input: Rejection, origin: Origin<'_>, reason: &str) -> Vec<Output> {
        self.0.forget(&input.message_id);
        let compact = Rejection {
            message_id: unproducible::detail(&input.message_id),
            customer_id: unproducible::detail(&input.customer_id),
            detail: unproducible::detail(&input.detail),
            submission: unproducible::compact_submission(&input.submission),
            ..input
        };
        tracing::warn!(stage = "report", message_id = %compact.message_id, reason, "final report cut to fit the broker");
        self.process(compact, origin).unwrap_or_default()
    }

    fn produced(&self, topic: &str, key: &str) {
        self.0.produced(topic, key);
    }

    fn batch_failed(&self) {
        self.0.batch_failed(Runner::Rejections);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    #[test]
    fn a_failed_rejections_transaction_keeps_the_deliveries_runners_reports_in_flight() {
        let emitted = Arc::new(Emitted::new(KeySet::in_memory(FINAL)));
        let deliveries = ReportDeliveries(emitted.clone());
        let rejections = ReportRejections(emitted);
        let origin = Origin {
            topic: "messages.reports",
            partition: 0,
            offset: 1,
            timestamp: None,
            key: None,
        };
        let first = receipt("m-1", ResultStatus::Delivered);
        assert_eq!(
            deliveries.process(first, origin).expect("processed").len(),
            1
        );
        // The other runner's transaction fails: m-1's report is still in this runner's.
        Processor::batch_failed(&rejections);
        let again = receipt("m-1", ResultStatus::Failed);
        assert!(
            deliveries
                .process(again.clone(), origin)
                .expect("processed")
                .is_empty()
        );
        // Its own failure forgets it: the receipt is processed again.
        Processor::batch_failed(&deliveries);
        assert!(
            !deliveries
                .process(again, origin)
                .expect("processed")
                .is_empty()
        );
    }

    #[test]
    fn a_final_report_too_large_to_write_is_written_cut_with_its_refund() {
        let stage = ReportDeliveries(Arc::new(Emitted::new(KeySet::in_memory(FINAL))));
        let origin = Origin {
            topic: "messages.reports",
            partition: 0,
            offset: 1,
            timestamp: None,
            key: None,
        };
        let mut big = receipt("m-big", ResultStatus::Failed);
        big.result_text = "x".repeat(2_000_000);
        // The runner processed it first; its output was over the limit.
        assert_eq!(
            stage.process(big.clone(), origin).expect("processed").len(),
            2
        );
        let outputs = Processor::unproducible(&stage, big, origin, "too large");
        let topics: Vec<&str> = outputs.iter().map(|o| o.topic.as_str()).collect();
        assert_eq!(topics, vec![FINAL, BALANCE_COMMANDS]);
        let report = outputs[0].value::<FinalReport>().expect("final");
        assert_eq!(report.status, ResultStatus::Failed);
        assert!(switchyard_schemas::to_datum(report).expect("encodes").len() < 5_000);
        // Written once: a later receipt of the same message makes nothing.
        stage.produced(FINAL, "m-big");
        let later = receipt("m-big", ResultStatus::Delivered);
        assert!(stage.process(later, origin).expect("processed").is_empty());
    }

    use super::*;
    use crate::fixtures::submission;
    use switchyard_schemas::Channel;

    fn receipt(id: &str, status: ResultStatus) -> DeliveryReport {
        DeliveryReport {
            event_id: format!("e-{id}"),
            message_id: id.into(),
            customer_id: "acme".into(),
            client_id: Some("acme-web".into()),
            client_message_id: Some("c-1".into()),
            channel: Channel::Sms,
            to: "01012345678".into(),
            carrier: "skt".into(),
            sender: "skt-a1".into(),
            carrier_message_id: Some("cm".into()),
            status,
            carrier_code: "DELIVRD".into(),
            result_code: "0000".into(),
            result_text: "delivered".into(),
            attempt: 1,
            submitted_at: Some(10),
            reported_at: 20,
            trail: vec![],
        }
    }

    fn origin() -> Origin<'static> {
        Origin {
            topic: "t",
            partition: 0,
            offset: 0,
            timestamp: None,
            key: None,
        }
    }

    #[test]
    fn one_final_report_per_message_even_when_receipts_repeat() {
        let emitted = Arc::new(Emitted::new(KeySet::in_memory(FINAL)));
        let stage = ReportDeliveries(emitted.clone());
        let first = stage
            .process(receipt("m-1", ResultStatus::Delivered), origin())
            .expect("ok");
        assert_eq!(first.len(), 1);
        let report = first[0].value::<FinalReport>().expect("final");
        assert_eq!(
            (report.status, report.event_id.clone()),
            (ResultStatus::Delivered, final_event_id("m-1"))
        );
        // In flight, then acknowledged: a repeat is dropped either way.
        assert!(
            stage
                .process(receipt("m-1", ResultStatus::Delivered), origin())
                .expect("ok")
                .is_empty()
        );
        stage.produced(FINAL, "m-1");
        assert!(
            stage
                .process(receipt("m-1", ResultStatus::Failed), origin())
                .expect("ok")
                .is_empty()
        );
    }

    #[test]
    fn a_failed_batch_forgets_what_was_in_flight() {
        let emitted = Arc::new(Emitted::new(KeySet::in_memory(FINAL)));
        let stage = ReportDeliveries(emitted);
        assert_eq!(
            stage
                .process(receipt("m-2", ResultStatus::Delivered), origin())
                .expect("ok")
                .len(),
            1
        );
        stage.batch_failed();
        assert_eq!(
            stage
                .process(receipt("m-2", ResultStatus::Delivered), origin())
                .expect("ok")
                .len(),
            1
        );
    }

    #[test]
    fn non_final_receipts_make_no_report() {
        let stage = ReportDeliveries(Arc::new(Emitted::new(KeySet::in_memory(FINAL))));
        assert!(
            stage
                .process(receipt("m-3", ResultStatus::Unknown), origin())
                .expect("ok")
                .is_empty()
        );
    }

    #[test]
    fn a_rejection_becomes_a_rejected_final_report() {
        let rejection = Rejection {
            message_id: "m-4".into(),
            customer_id: "acme".into(),
            code: "unknown_customer".into(),
            detail: "no such customer".into(),
            submission: submission("m-4"),
            rejected_at: 1,
            rule: None,
        };
        let report = from_rejection(&rejection, 5);
        assert_eq!(report.status, ResultStatus::Rejected);
        assert_eq!(report.result_code, "unknown_customer");
        let expired = Rejection {
            code: crate::validate::codes::EXPIRED.into(),
            ..rejection
        };
        let report = from_rejection(&expired, 5);
        assert_eq!(report.status, ResultStatus::Expired);
        assert_eq!(report.result_code, "expired");
        assert_eq!(report.client_message_id.as_deref(), Some("c-1"));
    }
}
