//! What a carrier did with one submit, in the terms every sender kind shares: accepted, or
//! one of four failure classes that say what may happen to the message next.

use switchyard_runtime::StageError;
use switchyard_schemas::FailureClass;

/// Why a submit did not end with the carrier taking the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DispatchFailure {
    /// This sender cannot take it now (peer down, 5xx, bind lost, SMSC system error). The
    /// carrier did not take the message, so sending it again — here later, or through
    /// another sender — is safe.
    TryAnotherSender,
    /// The carrier is busy (HTTP 429, ESME_RTHROTTLED/ESME_RMSGQFUL): it took nothing; wait
    /// and send it again through the same sender. Never a failure of the message.
    SlowDown,
    /// No sender can deliver it (4xx, a bad destination): the message fails with `code`, a
    /// unified result code of `switchyard_carrier_http::codes`. Never resent.
    NeverResend { code: &'static str },
    /// The carrier may or may not have taken it (no answer in time): never resent; a receipt
    /// reconciles it (decision 0017).
    Ambiguous,
}

impl DispatchFailure {
    /// The `failure_class` of a `messages.dispatched` record about this failure, for the
    /// classes written as failed; `None` for the ones that are not (slow down and try another
    /// sender wait for this sender, ambiguous is recorded as submitted).
    pub fn failure_class(self) -> Option<FailureClass> {
        match self {
            DispatchFailure::TryAnotherSender => Some(FailureClass::SenderDown),
            DispatchFailure::NeverResend { .. } => Some(FailureClass::Permanent),
            DispatchFailure::SlowDown | DispatchFailure::Ambiguous => None,
        }
    }

    /// Whether sending the same message again may work.
    pub fn is_retriable(self) -> bool {
        matches!(
            self,
            DispatchFailure::TryAnotherSender | DispatchFailure::SlowDown
        )
    }

    /// A short name for logs and details.
    pub fn name(self) -> &'static str {
        match self {
            DispatchFailure::TryAnotherSender => "try_another_sender",
            DispatchFailure::SlowDown => "slow_down",
            DispatchFailure::NeverResend { .. } => "never_resend",
            DispatchFailure::Ambiguous => "ambiguous",
        }
    }

    /// The runner's error for a retriable failure: the runner waits (with backoff) and offers
    /// the same input again. Until failover exists, "try another sender" waits for this one.
    pub fn stage_error(self, sender: &str, detail: &str) -> StageError {
        StageError::Unavailable(format!("sender {sender}: {}: {detail}", self.name()))
    }
}

/// What became of one submit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// The carrier took it. `carrier_message_id` is `None` when its answer did not say (then
    /// `detail` says why).
    Accepted {
        carrier_message_id: Option<String>,
        detail: Option<String>,
    },
    /// It did not; `detail` is the carrier's own words (status, command_status, error).
    Failed {
        failure: DispatchFailure,
        detail: String,
    },
}

impl Sent {
    pub fn failed(failure: DispatchFailure, detail: impl Into<String>) -> Self {
        Sent::Failed {
            failure,
            detail: detail.into(),
        }
    }

    pub fn accepted(carrier_message_id: impl Into<String>) -> Self {
        Sent::Accepted {
            carrier_message_id: Some(carrier_message_id.into()),
            detail: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_for_failover() {
        assert_eq!(
            DispatchFailure::TryAnotherSender.failure_class(),
            Some(FailureClass::SenderDown)
        );
        assert_eq!(
            DispatchFailure::NeverResend { code: "2001" }.failure_class(),
            Some(FailureClass::Permanent)
        );
        assert_eq!(DispatchFailure::SlowDown.failure_class(), None);
        assert_eq!(DispatchFailure::Ambiguous.failure_class(), None);
        assert!(DispatchFailure::SlowDown.is_retriable());
        assert!(!DispatchFailure::Ambiguous.is_retriable());
        assert!(
            DispatchFailure::SlowDown
                .stage_error("s", "429")
                .is_retriable()
        );
    }
}
