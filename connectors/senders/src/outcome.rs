//! The records dispatch writes for what a carrier did with a message (pure): accepted →
//! `messages.dispatched` (submitted); never resend → a failed `messages.reports` record and a
//! failed outcome; ambiguous → submitted with no carrier id (never resent: decision 0017);
//! slow down / try another sender → nothing written, the runner offers the input again.

use switchyard_carrier_http::codes::submit_result;
use switchyard_runtime::names::{DISPATCHED, REPORTS};
use switchyard_runtime::{Output, StageError};
use switchyard_schemas::{
    DeliveryReport, DispatchOutcome, DispatchRequest, DispatchStatus, FailureClass, event_id,
};

use crate::failure::{DispatchFailure, Sent};

/// The outputs of `sent` for `request`, or the runner's error for a retriable failure.
pub fn outputs(
    request: DispatchRequest,
    sent: Sent,
    now: i64,
    receipt_deadline_ms: i64,
) -> Result<Vec<Output>, StageError> {
    match sent {
        Sent::Accepted {
            carrier_message_id,
            detail,
        } => Ok(crate::deadline::with_deadline(
            outcome(
                request,
                DispatchStatus::Submitted,
                None,
                carrier_message_id,
                detail,
                now,
            ),
            receipt_deadline_ms,
        )),
        Sent::Failed {
            failure: DispatchFailure::Ambiguous,
            detail,
        } => Ok(crate::deadline::with_deadline(
            outcome(
                request,
                DispatchStatus::Submitted,
                None,
                None,
                Some(format!(
                    "ambiguous: {detail}; not sent again, a receipt reconciles it (decision 0017)"
                )),
                now,
            ),
            receipt_deadline_ms,
        )),
        Sent::Failed {
            failure: failure @ DispatchFailure::NeverResend { code },
            detail,
        } => Ok(refused(request, code, failure.failure_class(), detail, now)),
        Sent::Failed { failure, detail } => Err(failure.stage_error(&request.sender, &detail)),
    }
}

/// The `messages.dispatched` record of what a sender did with `request`.
pub(crate) fn outcome(
    request: DispatchRequest,
    status: DispatchStatus,
    failure_class: Option<FailureClass>,
    carrier_message_id: Option<String>,
    detail: Option<String>,
    now: i64,
) -> Output {
    let key = request.message_id.clone();
    Output::new(
        DISPATCHED,
        key,
        DispatchOutcome {
            message_id: request.message_id.clone(),
            attempt: request.attempt,
            carrier: request.carrier.clone(),
            sender_group: request.sender_group.clone(),
            sender: request.sender.clone(),
            status,
            failure_class,
            carrier_message_id,
            detail,
            request,
            dispatched_at: now,
        },
    )
}

/// The records of a submit refused for good: a failed report with the unified `code` and the
/// failed outcome.
fn refused(
    request: DispatchRequest,
    code: &'static str,
    failure_class: Option<FailureClass>,
    detail: String,
    now: i64,
) -> Vec<Output> {
    let s = &request.message.submission;
    let (status, text) = submit_result(code);
    let report = DeliveryReport {
        event_id: event_id(&[&request.message_id, &request.attempt.to_string(), "refused"]),
        message_id: request.message_id.clone(),
        customer_id: request.customer_id.clone(),
        client_id: s.client_id.clone(),
        client_message_id: s.client_message_id.clone(),
        channel: s.channel,
        to: s.to.clone(),
        carrier: request.carrier.clone(),
        sender: request.sender.clone(),
        carrier_message_id: None,
        status,
        carrier_code: detail.clone(),
        result_code: code.into(),
        result_text: text.into(),
        attempt: request.attempt,
        submitted_at: None,
        reported_at: now,
        trail: switchyard_carrier_http::reference::earlier_hops(&request),
    };
    let key = request.message_id.clone();
    vec![
        Output::new(REPORTS, key, report),
        outcome(
            request,
            DispatchStatus::Failed,
            failure_class,
            None,
            Some(detail),
            now,
        ),
    ]
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use switchyard_schemas::{Channel, Priority, ResultStatus, Submission, ValidatedMessage};

    pub(crate) fn request() -> DispatchRequest {
        let submission = Submission {
            message_id: Some("m-1".into()),
            customer_id: "acme".into(),
            client_id: Some("acme-web".into()),
            client_message_id: Some("order-1".into()),
            channel: Channel::Sms,
            to: "01012345678".into(),
            from: None,
            text: "hi".into(),
            subject: None,
            bill_code: None,
            priority: Priority::Normal,
            template_code: None,
            fallback: None,
            attachments: vec![],
            expires_at: None,
            metadata: Default::default(),
            accepted_at: 1,
        };
        DispatchRequest {
            message_id: "m-1".into(),
            customer_id: "acme".into(),
            carrier: "skt".into(),
            sender_group: "g".into(),
            sender: "skt-a".into(),
            attempt: 1,
            message: ValidatedMessage {
                message_id: "m-1".into(),
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

    fn outcome_of(output: &Output) -> DispatchOutcome {
        output.value::<DispatchOutcome>().cloned().expect("outcome")
    }

    #[test]
    fn accepted_is_submitted_with_the_carrier_id() {
        let out = outputs(request(), Sent::accepted("c-1"), 5, 60_000).expect("ok");
        assert_eq!(out.len(), 2, "the outcome and its receipt deadline");
        assert_eq!(out[1].topic, switchyard_runtime::names::DEADLINES);
        let o = outcome_of(&out[0]);
        assert_eq!(o.status, DispatchStatus::Submitted);
        assert_eq!(o.carrier_message_id.as_deref(), Some("c-1"));
        assert_eq!(o.dispatched_at, 5);
    }

    #[test]
    fn never_resend_fails_with_the_unified_code() {
        let sent = Sent::failed(DispatchFailure::NeverResend { code: "2003" }, "half taken");
        let out = outputs(request(), sent, 5, 60_000).expect("ok");
        assert_eq!(out[0].topic, REPORTS);
        let report = out[0].value::<DeliveryReport>().expect("report");
        assert_eq!(report.status, ResultStatus::Failed);
        assert_eq!(report.result_code, "2003");
        assert_eq!(report.client_message_id.as_deref(), Some("order-1"));
        let o = outcome_of(&out[1]);
        assert_eq!(o.status, DispatchStatus::Failed);
        assert_eq!(o.failure_class, Some(FailureClass::Permanent));
    }

    #[test]
    fn ambiguous_is_submitted_without_an_id_and_says_so() {
        let sent = Sent::failed(DispatchFailure::Ambiguous, "no answer in 30 s");
        let out = outputs(request(), sent, 5, 60_000).expect("ok");
        assert_eq!(out.len(), 2, "the outcome and its receipt deadline");
        assert_eq!(out[1].topic, switchyard_runtime::names::DEADLINES);
        let o = outcome_of(&out[0]);
        assert_eq!(o.status, DispatchStatus::Submitted);
        assert_eq!(o.carrier_message_id, None);
        assert!(o.detail.unwrap_or_default().starts_with("ambiguous"));
    }

    #[test]
    fn slow_down_and_try_another_sender_write_nothing_and_retry() {
        for failure in [DispatchFailure::SlowDown, DispatchFailure::TryAnotherSender] {
            let result = outputs(request(), Sent::failed(failure, "busy"), 5, 60_000);
            assert!(
                matches!(&result, Err(e) if e.is_retriable()),
                "{failure:?}: {result:?}"
            );
        }
    }
}
