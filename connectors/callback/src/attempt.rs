//! What one webhook attempt leaves in the topics: a `CallbackResult` for the history and the
//! pull API, and after a failure the report in its next retry tier, or in
//! `callbacks.exhausted` after the tenth retry. A plain function; no I/O.

use std::time::Duration;

use switchyard_runtime::Output;
use switchyard_runtime::names::{CALLBACK_RESULTS, CALLBACKS_EXHAUSTED, callback_retry};
use switchyard_schemas::{CallbackAttempt, CallbackResult, FinalReport};

use crate::deliver::Attempted;
use crate::schedule::{Next, after_failure};

/// The outputs of attempt number `attempt` (1 = first delivery, n + 1 = retry n) of `report`
/// to `url`. `first_failed_at` is when its first attempt failed, if one did before.
pub fn outputs(
    report: &FinalReport,
    url: &str,
    attempt: u32,
    attempted: &Attempted,
    first_failed_at: Option<i64>,
    minute: Duration,
) -> Vec<Output> {
    let next = attempted.failure.as_ref().map(|_| {
        if attempted.permanent {
            Next::Exhausted
        } else {
            after_failure(attempt - 1, attempted.at, minute)
        }
    });
    let result = CallbackResult {
        event_id: report.event_id.clone(),
        message_id: report.message_id.clone(),
        customer_id: report.customer_id.clone(),
        client_id: report.client_id.clone(),
        attempt: attempt as i32,
        at: attempted.at,
        delivered: attempted.delivered(),
        http_status: attempted.http_status.map(i32::from),
        failure: attempted.failure.clone(),
        next_due_at: match next {
            Some(Next::Retry { due_at, .. }) => Some(due_at),
            _ => None,
        },
        exhausted: next == Some(Next::Exhausted),
    };
    let key = report.message_id.clone();
    let mut outputs = vec![Output::new(CALLBACK_RESULTS, key.clone(), result)];
    let Some(next) = next else {
        return outputs;
    };
    let (topic, retry, due_at) = match next {
        Next::Retry { tier, due_at } => (callback_retry(tier), tier as i32, due_at),
        Next::Exhausted => (
            CALLBACKS_EXHAUSTED.to_string(),
            attempt as i32 - 1,
            attempted.at,
        ),
    };
    outputs.push(Output::new(
        topic,
        key,
        CallbackAttempt {
            report: report.clone(),
            report_url: url.to_string(),
            retry,
            due_at,
            last_failure: attempted.failure.clone().unwrap_or_default(),
            first_failed_at: first_failed_at.unwrap_or(attempted.at),
            failed_at: attempted.at,
        },
    ));
    outputs
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_schemas::{Channel, ResultStatus};

    fn report() -> FinalReport {
        FinalReport {
            event_id: "evt-1".into(),
            message_id: "m-1".into(),
            customer_id: "acme".into(),
            client_id: Some("acme-web".into()),
            client_message_id: None,
            channel: Channel::Sms,
            to: "01012345678".into(),
            status: ResultStatus::Delivered,
            result_code: "0000".into(),
            result_text: "delivered".into(),
            carrier: None,
            sender: None,
            attempt: 1,
            submitted_at: None,
            done_at: 0,
            trail: Vec::new(),
        }
    }

    fn failed(at: i64) -> Attempted {
        Attempted {
            at,
            http_status: Some(503),
            failure: Some("HTTP 503".into()),
            permanent: false,
        }
    }

    const MINUTE: Duration = Duration::from_millis(100);

    #[test]
    fn a_delivery_leaves_only_its_result() {
        let ok = Attempted {
            at: 5,
            http_status: Some(204),
            failure: None,
            permanent: false,
        };
        let out = outputs(&report(), "http://x", 1, &ok, None, MINUTE);
        assert_eq!(out.len(), 1);
        let result = out[0].value::<CallbackResult>().expect("a result");
        assert!(result.delivered && !result.exhausted);
        assert_eq!(
            (result.attempt, result.http_status, result.next_due_at),
            (1, Some(204), None)
        );
    }

    #[test]
    fn a_failed_first_delivery_goes_to_tier_one() {
        let out = outputs(&report(), "http://x", 1, &failed(1_000), None, MINUTE);
        assert_eq!(out[1].topic, callback_retry(1));
        let waiting = out[1].value::<CallbackAttempt>().expect("an attempt");
        assert_eq!((waiting.retry, waiting.due_at), (1, 1_100));
        assert_eq!(waiting.first_failed_at, 1_000);
        let result = out[0].value::<CallbackResult>().expect("a result");
        assert_eq!(result.next_due_at, Some(1_100));
    }

    #[test]
    fn retry_n_failing_goes_to_n_plus_one_and_the_tenth_to_exhausted() {
        // Attempt 4 is retry 3; its failure schedules retry 4 (13 minutes).
        let out = outputs(&report(), "http://x", 4, &failed(0), Some(-9), MINUTE);
        assert_eq!(out[1].topic, callback_retry(4));
        let waiting = out[1].value::<CallbackAttempt>().expect("an attempt");
        assert_eq!((waiting.retry, waiting.due_at), (4, 1_300));
        assert_eq!(waiting.first_failed_at, -9);
        // Attempt 11 is retry 10: nothing is left.
        let out = outputs(&report(), "http://x", 11, &failed(7), Some(0), MINUTE);
        assert_eq!(out[1].topic, CALLBACKS_EXHAUSTED);
        let result = out[0].value::<CallbackResult>().expect("a result");
        assert!(result.exhausted && result.next_due_at.is_none());
    }

    #[test]
    fn a_refused_url_is_exhausted_at_once() {
        let refused = Attempted {
            at: 3,
            http_status: None,
            failure: Some("refused by the webhook policy".into()),
            permanent: true,
        };
        let out = outputs(&report(), "http://10.0.0.1", 1, &refused, None, MINUTE);
        assert_eq!(out[1].topic, CALLBACKS_EXHAUSTED);
        assert!(
            out[0]
                .value::<CallbackResult>()
                .expect("a result")
                .exhausted
        );
    }
}
