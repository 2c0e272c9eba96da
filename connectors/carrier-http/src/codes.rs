//! This connector's carrier codes mapped to switchyard's unified result codes.

use switchyard_schemas::ResultStatus;

/// Unified (status, result code, text) for a carrier receipt status.
pub fn unify(carrier_status: &str) -> (ResultStatus, &'static str, &'static str) {
    match carrier_status {
        "DELIVRD" => (ResultStatus::Delivered, "0000", "delivered"),
        "UNDELIV" => (ResultStatus::Failed, "3001", "undeliverable"),
        "EXPIRED" => (ResultStatus::Expired, "3002", "expired at the carrier"),
        "REJECTD" => (ResultStatus::Rejected, "3003", "rejected by the carrier"),
        "ACCEPTD" | "ENROUTE" => (ResultStatus::Unknown, "1000", "in progress"),
        "DELETED" => (ResultStatus::Failed, "3004", "deleted at the carrier"),
        "UNKNOWN" => (ResultStatus::Failed, "3005", "carrier: outcome unknown"),
        _ => (ResultStatus::Failed, "3999", "unknown carrier status"),
    }
}

/// Result code of a submit the carrier refused for good (HTTP 4xx).
pub const SUBMIT_REFUSED: &str = "2001";

/// Result code of a submit this sender could not make (bind lost, SMSC system error): another
/// sender may succeed; the message was never taken by this carrier.
pub const SENDER_UNAVAILABLE: &str = "2002";

/// Result code of a long message the carrier took in part and refused in part: resending would
/// deliver the accepted parts twice, so it fails for good.
pub const PARTLY_SENT: &str = "2003";

/// Result code of a submit whose answer never came (SMPP: timeout or connection lost with the
/// submit in flight) and for which no receipt arrived by the deadline: it may or may not have
/// been delivered, and it is not sent again.
pub const OUTCOME_UNKNOWN: &str = "3006";

/// Unified (status, text) of a submit-side result code (the codes above): what a failed
/// report about a message that never reached the carrier — or may have — says.
pub fn submit_result(code: &str) -> (ResultStatus, &'static str) {
    match code {
        SUBMIT_REFUSED => (ResultStatus::Failed, "the carrier refused the message"),
        SENDER_UNAVAILABLE => (ResultStatus::Failed, "the sender could not submit it"),
        PARTLY_SENT => (
            ResultStatus::Failed,
            "the carrier took part of a long message and refused the rest",
        ),
        OUTCOME_UNKNOWN => (
            ResultStatus::Failed,
            "unknown: no answer to the submit and no receipt",
        ),
        _ => (ResultStatus::Failed, "the submit failed"),
    }
}

/// HTTP statuses of the generic JSON API's submit answer, by what they mean for the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpAnswer {
    /// 2xx: taken.
    Accepted,
    /// 429: busy, took nothing; send again later.
    Busy,
    /// 5xx (and anything unexpected): not taken; another sender may succeed.
    Unavailable,
    /// Another 4xx: refused for good (`SUBMIT_REFUSED`).
    Refused,
}

/// What an HTTP submit answer's status means.
pub fn http_answer(status: u16) -> HttpAnswer {
    match status {
        200..=299 => HttpAnswer::Accepted,
        429 => HttpAnswer::Busy,
        400..=499 => HttpAnswer::Refused,
        _ => HttpAnswer::Unavailable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn submit_side_codes() {
        assert_eq!(http_answer(202), HttpAnswer::Accepted);
        assert_eq!(http_answer(429), HttpAnswer::Busy);
        assert_eq!(http_answer(404), HttpAnswer::Refused);
        assert_eq!(http_answer(503), HttpAnswer::Unavailable);
        assert_eq!(http_answer(302), HttpAnswer::Unavailable);
        assert_eq!(submit_result(SUBMIT_REFUSED).0, ResultStatus::Failed);
        assert!(submit_result(OUTCOME_UNKNOWN).1.starts_with("unknown"));
    }

    #[test]
    fn known_and_unknown_codes() {
        assert_eq!(unify("DELIVRD").0, ResultStatus::Delivered);
        assert_eq!(unify("EXPIRED").0, ResultStatus::Expired);
        assert!(!unify("ENROUTE").0.is_final());
        assert_eq!(unify("???").1, "3999");
    }
}
