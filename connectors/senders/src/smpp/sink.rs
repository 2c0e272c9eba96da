//! Where an SMPP sender's reports go: `messages.reports`, through the shared `publish`, so
//! the SMSC's deliver_sm_resp waits until Kafka acknowledged the report. The report is built
//! (pure: [`report_of`]) from the reference stored with the carrier id. Once a final receipt's
//! report is written, its `state.receipts` entries are tombstoned (`TopicIndex::tombstones`).

use futures::future::BoxFuture;
use switchyard_carrier_http::reference::Reference;
use switchyard_runtime::names::{RECEIPT_INDEX, REPORTS};
use switchyard_runtime::{Output, Runtime};
use switchyard_schemas::{DeliveryReport, event_id, now_millis};
use switchyard_smpp::{ReceiptReport, ReportKind, ReportSink, SinkError};

/// Writes one sender's reports to `messages.reports`.
#[derive(Debug, Clone)]
pub struct KafkaSink {
    runtime: Runtime,
    sender: String,
    /// The receipt index whose settled entries are tombstoned, if any.
    index: Option<std::sync::Arc<super::TopicIndex>>,
}

impl KafkaSink {
    pub fn new(runtime: Runtime, sender: &str) -> Self {
        KafkaSink {
            runtime,
            sender: sender.to_string(),
            index: None,
        }
    }

    /// The same sink, tombstoning the entries of `index` that final receipts settle.
    pub fn tombstoning(mut self, index: std::sync::Arc<super::TopicIndex>) -> Self {
        self.index = Some(index);
        self
    }

    /// Delete the `state.receipts` entries `report` settled. A failure is only logged: the
    /// entry then lives until its TTL, as before.
    async fn settle(&self, report: &ReceiptReport) {
        let Some(index) = &self.index else { return };
        let tombstones = index.tombstones(report);
        if tombstones.is_empty() {
            return;
        }
        let message_id = &report.context.message_id;
        match self.runtime.publish("dispatch", &tombstones).await {
            Ok(_) => {
                tracing::debug!(stage = "dispatch", topic = RECEIPT_INDEX, %message_id, sender = %self.sender, keys = tombstones.len(), "receipt index entries tombstoned")
            }
            Err(e) => {
                tracing::warn!(stage = "dispatch", topic = RECEIPT_INDEX, %message_id, sender = %self.sender, error = %e, "receipt index entries not tombstoned; they expire at their TTL")
            }
        }
    }
}

/// The `DeliveryReport` of `report`; an error when its context is not one of ours.
pub fn report_of(report: &ReceiptReport, now: i64) -> Result<DeliveryReport, String> {
    let reference = Reference::decode(&report.context.reference)?;
    let kind = match report.kind {
        ReportKind::Receipt => "receipt",
        ReportKind::Unknown => "unknown",
        ReportKind::LateRefusal => "late_refusal",
    };
    let part = report.context.part.to_string();
    Ok(DeliveryReport {
        event_id: event_id(&[
            &reference.message_id,
            kind,
            report.carrier_id.as_deref().unwrap_or(""),
            &part,
            &report.carrier_code,
        ]),
        message_id: reference.message_id.clone(),
        customer_id: reference.customer_id,
        client_id: reference.client_id,
        client_message_id: reference.client_message_id,
        channel: reference.channel,
        to: reference.to,
        carrier: reference.carrier,
        sender: reference.sender,
        carrier_message_id: report.carrier_id.clone(),
        status: report.status,
        carrier_code: report.carrier_code.clone(),
        result_code: report.result_code.into(),
        result_text: report.result_text.into(),
        attempt: reference.attempt,
        submitted_at: Some(report.context.submitted_at),
        reported_at: now,
        trail: reference.trail,
    })
}

impl ReportSink for KafkaSink {
    fn write(&self, report: ReceiptReport) -> BoxFuture<'_, Result<(), SinkError>> {
        Box::pin(async move {
            let delivery = report_of(&report, now_millis()).map_err(|reason| SinkError {
                reason,
                retriable: false,
            })?;
            let message_id = delivery.message_id.clone();
            let status = delivery.status;
            let output = Output::new(REPORTS, message_id.clone(), delivery);
            match self.runtime.publish("dispatch", &[output]).await {
                Ok(_) => {
                    tracing::debug!(stage = "dispatch", topic = REPORTS, %message_id, sender = %self.sender, ?status, "smpp report written");
                    self.settle(&report).await;
                    Ok(())
                }
                Err(e) => Err(SinkError {
                    reason: e.to_string(),
                    retriable: true,
                }),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_schemas::ResultStatus;
    use switchyard_smpp::MessageContext;

    #[test]
    fn a_receipt_becomes_the_message_report() {
        let request = crate::outcome::tests::request();
        let reference = Reference::of(&request, 7).encode();
        let report = ReceiptReport {
            kind: ReportKind::Receipt,
            context: MessageContext {
                message_id: "m-1".into(),
                to: "01012345678".into(),
                part: 1,
                parts: 1,
                submitted_at: 7,
                reference,
            },
            carrier_id: Some("6699".into()),
            status: ResultStatus::Delivered,
            result_code: "0000",
            result_text: "delivered",
            carrier_code: "DELIVRD err:000".into(),
        };
        let d = report_of(&report, 9).expect("ours");
        assert_eq!(d.message_id, "m-1");
        assert_eq!(d.client_message_id.as_deref(), Some("order-1"));
        assert_eq!(d.sender, "skt-a");
        assert_eq!(d.carrier_message_id.as_deref(), Some("6699"));
        assert_eq!(d.result_code, "0000");
        assert_eq!(d.submitted_at, Some(7));
        let mut foreign = report;
        foreign.context.reference = "not json".into();
        assert!(report_of(&foreign, 9).is_err());
    }
}
