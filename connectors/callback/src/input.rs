//! What the callback stage reads, decoded by topic: a final report to deliver the first time
//! (`reports.final`, `callbacks.replay`) or a report waiting for its retry
//! (`callbacks.retry.<n>`). One consumer reads them all (`role.rs`).

use futures::future::BoxFuture;
use switchyard_runtime::StageInput;
use switchyard_runtime::names::{CALLBACK_REPLAY, CALLBACK_RETRY_TIERS, FINAL, callback_retry};
use switchyard_schemas::{CallbackAttempt, Codec, CodecError, FinalReport};

/// A record of a callback topic, decoded with its topic's type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallbackInput {
    /// A report not yet attempted.
    Report(FinalReport),
    /// A report whose last attempt failed, in its retry tier.
    Retry(CallbackAttempt),
}

impl From<FinalReport> for CallbackInput {
    fn from(report: FinalReport) -> Self {
        CallbackInput::Report(report)
    }
}

impl From<CallbackAttempt> for CallbackInput {
    fn from(waiting: CallbackAttempt) -> Self {
        CallbackInput::Retry(waiting)
    }
}

/// The record type a callback topic holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicKind {
    /// `FinalReport`: first deliveries.
    Report,
    /// `CallbackAttempt`: retry tier `n`.
    Retry(u32),
}

/// What (logical) `topic` holds, if the callback stage reads it.
pub fn kind_of(topic: &str) -> Option<TopicKind> {
    if topic == FINAL || topic == CALLBACK_REPLAY {
        return Some(TopicKind::Report);
    }
    (1..=CALLBACK_RETRY_TIERS)
        .find(|&tier| callback_retry(tier) == topic)
        .map(TopicKind::Retry)
}

impl StageInput for CallbackInput {
    fn decode<'a>(
        codec: &'a Codec,
        topic: &'a str,
        payload: &'a [u8],
    ) -> BoxFuture<'a, Result<Self, CodecError>> {
        Box::pin(async move {
            match kind_of(topic) {
                Some(TopicKind::Report) => Ok(codec.decode::<FinalReport>(payload).await?.into()),
                Some(TopicKind::Retry(_)) => {
                    Ok(codec.decode::<CallbackAttempt>(payload).await?.into())
                }
                None => Err(CodecError::Decode(format!(
                    "{topic} is not a callback topic"
                ))),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_callback_topic_has_its_kind() {
        assert_eq!(kind_of(FINAL), Some(TopicKind::Report));
        assert_eq!(kind_of(CALLBACK_REPLAY), Some(TopicKind::Report));
        assert_eq!(kind_of("callbacks.retry.1"), Some(TopicKind::Retry(1)));
        assert_eq!(kind_of("callbacks.retry.10"), Some(TopicKind::Retry(10)));
        assert_eq!(kind_of("callbacks.retry.11"), None);
        assert_eq!(kind_of("callbacks.retry.0"), None);
        assert_eq!(kind_of("callbacks.exhausted"), None);
    }
}
