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
        _ => (ResultStatus::Failed, "3999", "unknown carrier status"),
    }
}

/// Result code of a submit the carrier refused for good (HTTP 4xx).
pub const SUBMIT_REFUSED: &str = "2001";

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
