//! The durable receipt deadline of a submitted message (decision 0020): the record dispatch
//! writes to the delayed topic `reports.deadlines` next to every submitted outcome — the
//! unknown-outcome report (3006) the message gets if no final report came by the sender's
//! `receipt_deadline_seconds` (a setting every kind shares: `common`).

use std::collections::BTreeMap;

use switchyard_carrier_http::codes::{OUTCOME_UNKNOWN, submit_result};
use switchyard_runtime::Output;
use switchyard_runtime::names::DEADLINES;
use switchyard_schemas::{DeliveryReport, DispatchOutcome, event_id};

use crate::settings::KindError;

/// The setting (every kind): how long after its submit a message may wait for its receipt.
pub const SETTING: &str = "receipt_deadline_seconds";

/// The default deadline: 48 hours, past the validity period carriers keep a message for.
pub const DEFAULT_SECONDS: u64 = 172_800;

/// The longest deadline accepted: 6 days, a day inside `reports.deadlines`'s 7-day retention
/// (a record must still be there when it comes due).
pub const MAX_SECONDS: u64 = 6 * 86_400;

/// Check a `receipt_deadline_seconds` value.
pub fn check_seconds(seconds: u64) -> Result<u64, KindError> {
    if (1..=MAX_SECONDS).contains(&seconds) {
        Ok(seconds)
    } else {
        Err(KindError::setting(
            SETTING,
            format!("must be 1..={MAX_SECONDS} (seconds)"),
        ))
    }
}

/// Take `receipt_deadline_seconds` out of a settings map (for kinds whose own settings refuse
/// unknown fields), checked; the default when absent.
pub fn take_seconds(map: &mut BTreeMap<String, String>) -> Result<u64, KindError> {
    match map.remove(SETTING) {
        None => Ok(DEFAULT_SECONDS),
        Some(text) => {
            let seconds = text.trim().parse::<u64>().map_err(|_| {
                KindError::setting(
                    SETTING,
                    format!("{text:?} is not a whole number of seconds"),
                )
            })?;
            check_seconds(seconds)
        }
    }
}

/// The report a submitted `outcome` gets if nothing settles it: unknown outcome (3006), failed.
pub fn unknown_report(outcome: &DispatchOutcome) -> DeliveryReport {
    let request = &outcome.request;
    let s = &request.message.submission;
    let (status, text) = submit_result(OUTCOME_UNKNOWN);
    DeliveryReport {
        event_id: event_id(&[
            &outcome.message_id,
            &outcome.attempt.to_string(),
            "deadline",
        ]),
        message_id: outcome.message_id.clone(),
        customer_id: request.customer_id.clone(),
        client_id: s.client_id.clone(),
        client_message_id: s.client_message_id.clone(),
        channel: s.channel,
        to: s.to.clone(),
        carrier: outcome.carrier.clone(),
        sender: outcome.sender.clone(),
        carrier_message_id: outcome.carrier_message_id.clone(),
        status,
        carrier_code: "no receipt by the deadline".into(),
        result_code: OUTCOME_UNKNOWN.into(),
        result_text: text.into(),
        attempt: outcome.attempt,
        submitted_at: Some(outcome.dispatched_at),
        reported_at: outcome.dispatched_at,
        trail: switchyard_carrier_http::reference::earlier_hops(request),
    }
}

/// The deadline record of a submitted `outcome`, due `deadline_ms` after its submit (pure).
pub fn record(outcome: &DispatchOutcome, deadline_ms: i64) -> Output {
    Output::new(
        DEADLINES,
        outcome.message_id.clone(),
        unknown_report(outcome),
    )
    .due_at(outcome.dispatched_at.saturating_add(deadline_ms))
}

/// A submitted outcome followed by its receipt deadline on `reports.deadlines`, due
/// `deadline_ms` after the submit.
pub fn with_deadline(submitted: Output, deadline_ms: i64) -> Vec<Output> {
    let deadline = submitted
        .value::<DispatchOutcome>()
        .map(|outcome| record(outcome, deadline_ms));
    std::iter::once(submitted).chain(deadline).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_schemas::{DispatchStatus, ResultStatus};

    fn outcome() -> DispatchOutcome {
        let request = crate::outcome::tests::request();
        DispatchOutcome {
            message_id: "m-1".into(),
            attempt: 1,
            carrier: "skt".into(),
            sender_group: "g".into(),
            sender: "deadline-test-sender".into(),
            status: DispatchStatus::Submitted,
            failure_class: None,
            carrier_message_id: Some("c-1".into()),
            detail: None,
            request,
            dispatched_at: 1_000,
        }
    }

    #[test]
    fn the_record_is_an_unknown_report_due_at_submit_plus_deadline() {
        let out = record(&outcome(), 5_000);
        assert_eq!((out.topic.as_str(), out.key.as_str()), (DEADLINES, "m-1"));
        assert_eq!(out.due(), Some(6_000));
        let report = out.value::<DeliveryReport>().expect("report");
        assert_eq!(report.status, ResultStatus::Failed);
        assert_eq!(report.result_code, OUTCOME_UNKNOWN);
        assert!(report.result_text.starts_with("unknown"));
        assert_eq!(report.client_message_id.as_deref(), Some("order-1"));
        assert_eq!(report.carrier_message_id.as_deref(), Some("c-1"));
        assert_eq!(report.submitted_at, Some(1_000));
        assert_eq!(report.sender, "deadline-test-sender");
    }

    #[test]
    fn a_submitted_outcome_gets_its_deadline_record() {
        let submitted = Output::new("messages.dispatched", "m-1", outcome());
        let out = with_deadline(submitted, 3_000);
        assert_eq!(out.len(), 2);
        assert_eq!(out[1].due(), Some(4_000));
    }

    #[test]
    fn the_setting_is_checked_naming_the_field() {
        let mut map = BTreeMap::new();
        assert_eq!(take_seconds(&mut map), Ok(DEFAULT_SECONDS));
        map.insert(SETTING.to_string(), "5".to_string());
        assert_eq!(take_seconds(&mut map), Ok(5));
        assert!(map.is_empty(), "taken out of the map");
        for wrong in ["0", "-1", "soon", "99999999"] {
            map.insert(SETTING.to_string(), wrong.to_string());
            let e = take_seconds(&mut map).expect_err(wrong);
            assert!(
                e.to_string()
                    .starts_with("settings.receipt_deadline_seconds:"),
                "{e}"
            );
        }
    }
}
