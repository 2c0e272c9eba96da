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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_and_unknown_codes() {
        assert_eq!(unify("DELIVRD").0, ResultStatus::Delivered);
        assert_eq!(unify("EXPIRED").0, ResultStatus::Expired);
        assert!(!unify("ENROUTE").0.is_final());
        assert_eq!(unify("???").1, "3999");
    }
}
