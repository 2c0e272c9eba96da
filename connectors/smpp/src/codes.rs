//! SMPP command_status values and receipt states mapped to switchyard's unified result codes
//! (the one table, `switchyard_carrier_http::codes`) and to what the sender does next.

use serde::{Deserialize, Serialize};
use switchyard_carrier_http::codes::{
    OUTCOME_UNKNOWN, PARTLY_SENT, SENDER_UNAVAILABLE, SUBMIT_REFUSED, unify,
};
use switchyard_schemas::{FailureClass, ResultStatus};

/// What a refused or unanswered submit means for the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    /// The SMSC is busy (ESME_RTHROTTLED, ESME_RMSGQFUL): pause the bind and send again later.
    /// Never a failure of the message.
    Throttled,
    /// This sender cannot take it now (system error, bind trouble, outage): another sender may.
    /// The SMSC did not take the message, so sending it elsewhere is safe.
    TryAnotherSender,
    /// No sender can deliver it (bad destination, bad parameters): never resend.
    Permanent,
    /// The SMSC may or may not have taken it: never resend; wait for a receipt.
    Ambiguous,
}

impl Class {
    /// The failover class of the `messages.dispatched` record, for the classes that fail.
    pub fn failure_class(self) -> Option<FailureClass> {
        match self {
            Class::TryAnotherSender => Some(FailureClass::SenderDown),
            Class::Permanent => Some(FailureClass::Permanent),
            Class::Throttled | Class::Ambiguous => None,
        }
    }

    /// The unified result code of a message failed with this class.
    pub fn result_code(self) -> &'static str {
        match self {
            Class::TryAnotherSender | Class::Throttled => SENDER_UNAVAILABLE,
            Class::Permanent => SUBMIT_REFUSED,
            Class::Ambiguous => OUTCOME_UNKNOWN,
        }
    }
}

/// The result code of a long message refused after some of its parts were accepted.
pub const PARTLY_SENT_CODE: &str = PARTLY_SENT;

/// The class of a non-zero submit_sm_resp command_status.
pub fn classify(command_status: u32) -> Class {
    match command_status {
        // ESME_RMSGQFUL, ESME_RTHROTTLED
        0x14 | 0x58 => Class::Throttled,
        // Addresses, lengths, parameters, TLVs, validity, default message id: the message
        // itself is wrong, every sender will refuse it.
        0x01 | 0x0A | 0x0B | 0x0C | 0x48 | 0x49 | 0x50 | 0x51 | 0x62 | 0x63 | 0x65 | 0xC0
        | 0xC1 | 0xC2 | 0xC3 | 0xC4 => Class::Permanent,
        // Everything else (0x08 ESME_RSYSERR, bind status, 0x45 submit failed, 0x64 temporary
        // application error, unknown vendor codes): the message was refused, not taken; another
        // sender may do better.
        _ => Class::TryAnotherSender,
    }
}

/// A short name of a command_status for logs and `carrier_code`.
pub fn status_name(command_status: u32) -> String {
    let name = match command_status {
        0x00 => "ESME_ROK",
        0x01 => "ESME_RINVMSGLEN",
        0x03 => "ESME_RINVCMDID",
        0x04 => "ESME_RINVBNDSTS",
        0x05 => "ESME_RALYBND",
        0x08 => "ESME_RSYSERR",
        0x0A => "ESME_RINVSRCADR",
        0x0B => "ESME_RINVDSTADR",
        0x0D => "ESME_RBINDFAIL",
        0x0E => "ESME_RINVPASWD",
        0x0F => "ESME_RINVSYSID",
        0x14 => "ESME_RMSGQFUL",
        0x45 => "ESME_RSUBMITFAIL",
        0x58 => "ESME_RTHROTTLED",
        0x64 => "ESME_RX_T_APPN",
        0x65 => "ESME_RX_P_APPN",
        _ => return format!("0x{command_status:08X}"),
    };
    format!("{name} (0x{command_status:08X})")
}

/// The receipt text state (`stat:` of the text form) of a `message_state` TLV value.
pub fn message_state_name(state: u8) -> &'static str {
    match state {
        1 => "ENROUTE",
        2 => "DELIVRD",
        3 => "EXPIRED",
        4 => "DELETED",
        5 => "UNDELIV",
        6 => "ACCEPTD",
        8 => "REJECTD",
        _ => "UNKNOWN",
    }
}

/// Unified (status, result code, text) of a receipt state name (`DELIVRD`, `UNDELIV`, …).
/// SMPP names states with up to 7 letters; `DELIVERED` and friends are accepted too.
pub fn receipt_result(stat: &str) -> (ResultStatus, &'static str, &'static str) {
    let upper = stat.trim().to_ascii_uppercase();
    let short = match upper.as_str() {
        "DELIVERED" => "DELIVRD",
        "UNDELIVERABLE" => "UNDELIV",
        "ACCEPTED" => "ACCEPTD",
        "REJECTED" => "REJECTD",
        other => other,
    };
    unify(short)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_of_submit_statuses() {
        assert_eq!(classify(0x58), Class::Throttled);
        assert_eq!(classify(0x14), Class::Throttled);
        assert_eq!(classify(0x08), Class::TryAnotherSender);
        assert_eq!(classify(0x0B), Class::Permanent);
        assert_eq!(classify(0x0400), Class::TryAnotherSender);
        assert_eq!(Class::Permanent.result_code(), "2001");
        assert_eq!(
            Class::TryAnotherSender.failure_class(),
            Some(FailureClass::SenderDown)
        );
        assert_eq!(Class::Throttled.failure_class(), None);
    }

    #[test]
    fn receipt_states() {
        assert_eq!(message_state_name(2), "DELIVRD");
        assert_eq!(receipt_result("DELIVRD").0, ResultStatus::Delivered);
        assert_eq!(receipt_result("delivered").0, ResultStatus::Delivered);
        assert_eq!(receipt_result(message_state_name(5)).1, "3001");
        assert_eq!(receipt_result(message_state_name(4)).1, "3004");
        assert_eq!(receipt_result(message_state_name(7)).1, "3005");
        assert!(!receipt_result("ENROUTE").0.is_final());
    }

    #[test]
    fn status_names() {
        assert_eq!(status_name(0x58), "ESME_RTHROTTLED (0x00000058)");
        assert_eq!(status_name(0x1234), "0x00001234");
    }
}
