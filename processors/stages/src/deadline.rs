//! deadline: `reports.deadlines` → `messages.reports`, each record when it comes due (its
//! `switchyard.due-at` header: submit + the sender's receipt deadline). The record is the
//! unknown-outcome report (3006) dispatch wrote next to a submitted outcome; it is passed on
//! only for a message with no final report yet (the report role's `Emitted`), and report turns
//! it into the one final report (decision 0020). At least once: a second copy meets the same
//! exactly-one-final rule in report.

use std::sync::Arc;

use switchyard_runtime::names::REPORTS;
use switchyard_runtime::{Origin, Output, Processor, StageError};
use switchyard_schemas::{DeliveryReport, now_millis};

use crate::report::Emitted;

/// Input topic.
pub use switchyard_runtime::names::DEADLINES;

/// The deadline stage, run by the report role over the same `Emitted` as report.
#[derive(Debug, Clone)]
pub struct Deadline(pub Arc<Emitted>);

/// What a due deadline record becomes (pure): nothing when the message already has its final
/// report, else the unknown report, stamped `now`, for `messages.reports`.
pub fn settle(mut report: DeliveryReport, has_final: bool, now: i64) -> Option<Output> {
    if has_final {
        tracing::debug!(stage = "deadline", topic = DEADLINES, message_id = %report.message_id, "final report already there; deadline dropped");
        return None;
    }
    tracing::info!(stage = "deadline", topic = DEADLINES, message_id = %report.message_id, sender = %report.sender, result_code = %report.result_code, "no final report by the receipt deadline: unknown outcome");
    report.reported_at = now;
    Some(Output::new(REPORTS, report.message_id.clone(), report))
}

impl Processor for Deadline {
    type Input = DeliveryReport;

    fn process(
        &self,
        input: DeliveryReport,
        _origin: Origin<'_>,
    ) -> Result<Vec<Output>, StageError> {
        let has_final = self.0.has_final(&input.message_id);
        Ok(settle(input, has_final, now_millis()).into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{FINAL, ReportDeliveries};
    use switchyard_runtime::KeySet;
    use switchyard_schemas::{Channel, FinalReport, ResultStatus};

    fn report(id: &str, status: ResultStatus, code: &str) -> DeliveryReport {
        DeliveryReport {
            event_id: format!("e-{id}-{code}"),
            message_id: id.into(),
            customer_id: "acme".into(),
            client_id: Some("acme-web".into()),
            client_message_id: Some("c-1".into()),
            channel: Channel::Sms,
            to: "01012345678".into(),
            carrier: "skt".into(),
            sender: "skt-a".into(),
            carrier_message_id: None,
            status,
            carrier_code: "no receipt by the deadline".into(),
            result_code: code.into(),
            result_text: "unknown: no answer to the submit and no receipt".into(),
            attempt: 1,
            submitted_at: Some(10),
            reported_at: 10,
            trail: Vec::new(),
        }
    }

    fn origin() -> Origin<'static> {
        Origin {
            topic: DEADLINES,
            partition: 0,
            offset: 0,
            timestamp: None,
            key: None,
        }
    }

    #[test]
    fn a_due_deadline_without_a_final_becomes_the_unknown_report() {
        let out = settle(report("m-1", ResultStatus::Failed, "3006"), false, 99).expect("out");
        assert_eq!((out.topic.as_str(), out.key.as_str()), (REPORTS, "m-1"));
        let r = out.value::<DeliveryReport>().expect("report");
        assert_eq!((r.result_code.as_str(), r.reported_at), ("3006", 99));
        assert!(settle(report("m-1", ResultStatus::Failed, "3006"), true, 99).is_none());
    }

    #[test]
    fn the_deadline_and_report_make_exactly_one_final_whatever_comes_first() {
        let emitted = Arc::new(Emitted::new(KeySet::in_memory(FINAL)));
        let (deadline, report_stage) =
            (Deadline(emitted.clone()), ReportDeliveries(emitted.clone()));
        // m-1: its receipt made the final first; the deadline then passes nothing on.
        let first = report_stage
            .process(report("m-1", ResultStatus::Delivered, "0000"), origin())
            .expect("ok");
        assert_eq!(first.len(), 1);
        report_stage.produced(FINAL, "m-1");
        assert!(
            deadline
                .process(report("m-1", ResultStatus::Failed, "3006"), origin())
                .expect("ok")
                .is_empty()
        );
        // m-2: no receipt; the deadline's report becomes the final (and a refund), and the
        // receipt arriving late afterwards is dropped by the exactly-one-final rule.
        let passed = deadline
            .process(report("m-2", ResultStatus::Failed, "3006"), origin())
            .expect("ok");
        assert_eq!(passed.len(), 1);
        let unknown = passed[0].value::<DeliveryReport>().expect("report").clone();
        let finals = report_stage.process(unknown, origin()).expect("ok");
        let fin = finals[0].value::<FinalReport>().expect("final");
        assert_eq!(
            (fin.status, fin.result_code.as_str()),
            (ResultStatus::Failed, "3006")
        );
        report_stage.produced(FINAL, "m-2");
        let late = report_stage
            .process(report("m-2", ResultStatus::Delivered, "0000"), origin())
            .expect("ok");
        assert!(late.is_empty(), "a late receipt makes no second final");
        // A second copy of the deadline record (at least once) passes nothing either.
        assert!(
            deadline
                .process(report("m-2", ResultStatus::Failed, "3006"), origin())
                .expect("ok")
                .is_empty()
        );
    }
}
