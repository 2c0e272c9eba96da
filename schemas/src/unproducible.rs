//! The compact records that end the message of a poison input — one whose own outputs the
//! broker can never take (too large, invalid). The stage dead-letters the input and writes one
//! of these instead, so the message still gets its one final report. Every field that may have
//! caused the trouble is cut to its bound (`limits`), and the text to a short excerpt.

use crate::limits::{self, truncate};
use crate::{DeliveryReport, Rejection, ResultStatus, RouteHop, Submission, event_id};

/// The result code of a message ended because the broker can never take its records.
pub const RESULT_CODE: &str = "unproducible";

/// Characters of a text (and of a reason) a compact record keeps.
pub const EXCERPT_CHARS: usize = 1000;
/// Hops of a trail a compact record keeps (the last ones).
pub const TRAIL_HOPS: usize = 20;
/// Characters of an id (customer, client) a compact record keeps.
const ID_CHARS: usize = 128;

/// `submission` with every field cut to its bound and its texts to an excerpt.
pub fn compact_submission(submission: &Submission) -> Submission {
    let mut copy = limits::truncated(submission);
    copy.customer_id = truncate(&copy.customer_id, ID_CHARS).to_string();
    copy.client_id = copy
        .client_id
        .as_deref()
        .map(|c| truncate(c, ID_CHARS).to_string());
    copy.message_id = copy
        .message_id
        .as_deref()
        .map(|c| truncate(c, ID_CHARS).to_string());
    copy.text = truncate(&copy.text, EXCERPT_CHARS).to_string();
    if let Some(fallback) = &mut copy.fallback {
        fallback.text = truncate(&fallback.text, EXCERPT_CHARS).to_string();
    }
    copy
}

/// The rejection of a submission whose records cannot be written.
pub fn rejection(submission: &Submission, message_id: &str, reason: &str, now: i64) -> Rejection {
    let submission = compact_submission(submission);
    Rejection {
        message_id: truncate(message_id, ID_CHARS).to_string(),
        customer_id: submission.customer_id.clone(),
        code: RESULT_CODE.to_string(),
        detail: detail(reason),
        submission,
        rejected_at: now,
        rule: None,
    }
}

/// The failed delivery report of a message (at `attempt`, after `trail`) whose records cannot
/// be written; `stage` names who gave up (its event id stays stable across a retry).
pub fn failed_report(
    stage: &str,
    message_id: &str,
    submission: &Submission,
    (attempt, trail): (i32, &[RouteHop]),
    reason: &str,
    now: i64,
) -> DeliveryReport {
    let s = compact_submission(submission);
    let message_id = truncate(message_id, ID_CHARS).to_string();
    DeliveryReport {
        event_id: event_id(&[&message_id, stage, RESULT_CODE, &attempt.to_string()]),
        message_id,
        customer_id: s.customer_id,
        client_id: s.client_id,
        client_message_id: s.client_message_id,
        channel: s.channel,
        to: s.to,
        carrier: String::new(),
        sender: String::new(),
        carrier_message_id: None,
        status: ResultStatus::Failed,
        carrier_code: String::new(),
        result_code: RESULT_CODE.to_string(),
        result_text: detail(reason),
        attempt,
        submitted_at: None,
        reported_at: now,
        trail: last_hops(trail),
    }
}

/// The last `TRAIL_HOPS` hops of `trail`, each reason cut to an excerpt.
pub fn last_hops(trail: &[RouteHop]) -> Vec<RouteHop> {
    trail[trail.len().saturating_sub(TRAIL_HOPS)..]
        .iter()
        .map(|hop| {
            let mut hop = hop.clone();
            hop.reason = hop.reason.as_deref().map(detail);
            hop.carrier = truncate(&hop.carrier, ID_CHARS).to_string();
            hop.sender = truncate(&hop.sender, ID_CHARS).to_string();
            hop.sender_group = truncate(&hop.sender_group, ID_CHARS).to_string();
            hop
        })
        .collect()
}

/// A reason, cut to an excerpt.
pub fn detail(reason: &str) -> String {
    truncate(reason, EXCERPT_CHARS).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Channel;

    #[test]
    fn a_rejection_of_a_huge_submission_is_small() {
        let huge = Submission {
            message_id: Some("m".into()),
            customer_id: "c".repeat(300_000),
            client_id: None,
            client_message_id: Some("x".repeat(300_000)),
            channel: Channel::Sms,
            to: "1".repeat(500_000),
            from: Some("f".repeat(600_000)),
            text: "t".repeat(90_000),
            subject: None,
            bill_code: Some("b".repeat(600_000)),
            priority: Default::default(),
            template_code: None,
            fallback: None,
            attachments: Vec::new(),
            expires_at: None,
            metadata: Default::default(),
            accepted_at: 0,
        };
        let r = rejection(&huge, "m", &"why ".repeat(10_000), 5);
        let bytes = crate::to_datum(&r).expect("encodes");
        assert!(bytes.len() < 8_000, "{} bytes", bytes.len());
        assert_eq!(r.code, RESULT_CODE);
        assert_eq!(r.submission.to.len(), limits::TO_MAX);
        assert_eq!(r.detail.chars().count(), EXCERPT_CHARS);
        let report = failed_report("route", "m", &huge, (2, &[]), "too large", 5);
        assert!(crate::to_datum(&report).expect("encodes").len() < 4_000);
        assert_eq!(report.status, ResultStatus::Failed);
    }
}
