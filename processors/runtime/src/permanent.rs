//! The one place that decides which produce failures sending again cannot mend. A record the
//! broker refuses for what it is (too large, invalid) is a poison record: the stage that made
//! it dead-letters its input instead of retrying the batch forever. A refused destination (no
//! such topic, not authorized) is the operator's to fix: stages retry it and report stuck.

use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

/// Room left in a record for its framing (Kafka's per-record overhead is tens of bytes; this is
/// generous). Key, value and headers are counted apart.
pub const RECORD_OVERHEAD_BYTES: usize = 1024;

/// How a failed produce is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProduceFailureClass {
    /// The record itself can never be written (too large, invalid for the topic): sending it
    /// again cannot help, whatever happens to the broker. The input that made it is poison.
    RecordRefused,
    /// The destination refuses every record (the topic is missing, writes are not
    /// authorized): an operator must act. A retry helps once they have.
    DestinationRefused,
    /// The broker is down, slow, or moving leaders: a retry helps.
    Transient,
}

impl ProduceFailureClass {
    /// The class of a produce error.
    pub fn of(error: &KafkaError) -> Self {
        match error.rdkafka_error_code() {
            Some(
                RDKafkaErrorCode::MessageSizeTooLarge
                | RDKafkaErrorCode::MessageBatchTooLarge
                | RDKafkaErrorCode::InvalidRecord
                | RDKafkaErrorCode::InvalidMessageSize,
            ) => ProduceFailureClass::RecordRefused,
            // A producer setting or a clock the broker refuses: every record, until fixed.
            Some(
                RDKafkaErrorCode::InvalidRequiredAcks
                | RDKafkaErrorCode::InvalidTimestamp
                | RDKafkaErrorCode::TopicAuthorizationFailed
                | RDKafkaErrorCode::ClusterAuthorizationFailed
                | RDKafkaErrorCode::UnknownTopic
                | RDKafkaErrorCode::UnknownTopicOrPartition,
            ) => ProduceFailureClass::DestinationRefused,
            _ => ProduceFailureClass::Transient,
        }
    }

    /// Whether publishing the same record again (unchanged, soon) cannot succeed.
    pub fn is_permanent(self) -> bool {
        !matches!(self, ProduceFailureClass::Transient)
    }
}

/// Whether the broker refuses a record for good (the record or its destination).
pub fn is_permanent(error: &KafkaError) -> bool {
    ProduceFailureClass::of(error).is_permanent()
}

/// The bytes a record takes against the broker's limit: key, value, headers and framing.
pub fn record_bytes(key: usize, value: usize, headers: usize) -> usize {
    key + value + headers + RECORD_OVERHEAD_BYTES
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::error::RDKafkaErrorCode as Code;

    fn class(code: Code) -> ProduceFailureClass {
        ProduceFailureClass::of(&KafkaError::MessageProduction(code))
    }

    #[test]
    fn a_record_too_large_or_invalid_is_poison() {
        for code in [
            Code::MessageSizeTooLarge,
            Code::MessageBatchTooLarge,
            Code::InvalidRecord,
            Code::InvalidMessageSize,
        ] {
            assert_eq!(class(code), ProduceFailureClass::RecordRefused, "{code:?}");
        }
    }

    #[test]
    fn a_missing_or_forbidden_topic_is_the_operators_and_is_retried() {
        for code in [
            Code::UnknownTopicOrPartition,
            Code::UnknownTopic,
            Code::TopicAuthorizationFailed,
            Code::ClusterAuthorizationFailed,
            Code::InvalidRequiredAcks,
            Code::InvalidTimestamp,
        ] {
            assert_eq!(
                class(code),
                ProduceFailureClass::DestinationRefused,
                "{code:?}"
            );
            assert!(class(code).is_permanent());
        }
    }

    #[test]
    fn a_broker_down_slow_or_moving_is_transient() {
        for code in [
            Code::MessageTimedOut,
            Code::AllBrokersDown,
            Code::NotLeaderForPartition,
            Code::RequestTimedOut,
            Code::NotEnoughReplicas,
            Code::QueueFull,
            // CORRUPT_MESSAGE: a CRC mismatch on the way, which Kafka marks retriable.
            Code::InvalidMessage,
        ] {
            assert_eq!(class(code), ProduceFailureClass::Transient, "{code:?}");
            assert!(!class(code).is_permanent());
        }
        assert_eq!(
            ProduceFailureClass::of(&KafkaError::Canceled),
            ProduceFailureClass::Transient
        );
    }
}
