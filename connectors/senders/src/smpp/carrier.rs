//! A running `smpp` sender: each message submitted through its `SmppSender`, the outcome
//! classified (pure: [`classify`]). The message's context rides in the `ReceiptIndex` entry as
//! the same reference the HTTP kind hands its carriers (decision 0006).

use futures::future::BoxFuture;
use switchyard_carrier_http::reference::Reference;
use switchyard_schemas::{DispatchRequest, now_millis};
use switchyard_smpp::{BindState, Class, OutgoingMessage, SmppSender, SubmitOutcome};

use crate::failure::{DispatchFailure, Sent};
use crate::registry::Carrier;

/// One SMPP sender.
#[derive(Debug)]
pub struct SmppCarrier {
    name: String,
    bind: SmppSender,
    window: usize,
}

impl SmppCarrier {
    pub fn new(name: &str, bind: SmppSender, window: usize) -> Self {
        SmppCarrier {
            name: name.to_string(),
            bind,
            window,
        }
    }
}

/// What a submit's outcome means in the shared failure classes.
pub fn classify(outcome: SubmitOutcome) -> Sent {
    match outcome {
        SubmitOutcome::Accepted { carrier_ids } => Sent::Accepted {
            carrier_message_id: carrier_ids.first().cloned(),
            detail: match carrier_ids.len() {
                0 => Some("carrier message id unknown: no part id".into()),
                1 => None,
                _ => Some(format!("parts: {}", carrier_ids.join(","))),
            },
        },
        SubmitOutcome::Throttled => Sent::failed(DispatchFailure::SlowDown, "SMSC throttling"),
        SubmitOutcome::Failed {
            class,
            code,
            detail,
        } => {
            let failure = match class {
                Class::Throttled => DispatchFailure::SlowDown,
                Class::TryAnotherSender => DispatchFailure::TryAnotherSender,
                Class::Permanent => DispatchFailure::NeverResend { code },
                Class::Ambiguous => DispatchFailure::Ambiguous,
            };
            Sent::failed(failure, detail)
        }
        SubmitOutcome::Ambiguous { detail } => Sent::failed(DispatchFailure::Ambiguous, detail),
    }
}

impl Carrier for SmppCarrier {
    fn send<'a>(&'a self, request: &'a DispatchRequest) -> BoxFuture<'a, Sent> {
        Box::pin(async move {
            let s = &request.message.submission;
            let message = OutgoingMessage {
                message_id: request.message_id.clone(),
                to: s.to.clone(),
                from: s.from.clone(),
                text: s.text.clone(),
                reference: Reference::of(request, now_millis()).encode(),
            };
            let sent = classify(self.bind.submit(message).await);
            tracing::debug!(stage = "dispatch", message_id = %request.message_id, sender = %self.name, ?sent, "smpp submit");
            sent
        })
    }

    fn window(&self) -> usize {
        self.window
    }

    fn bound(&self) -> bool {
        matches!(
            *self.bind.state().borrow(),
            BindState::Bound | BindState::Paused
        )
    }

    fn stop(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.bind.shutdown())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_map_to_classes() {
        assert_eq!(
            classify(SubmitOutcome::Accepted {
                carrier_ids: vec!["1a".into()]
            }),
            Sent::accepted("1a")
        );
        let parts = classify(SubmitOutcome::Accepted {
            carrier_ids: vec!["1".into(), "2".into()],
        });
        assert!(
            matches!(parts, Sent::Accepted { carrier_message_id: Some(ref id), detail: Some(_) } if id == "1")
        );
        let class = |o| match classify(o) {
            Sent::Failed { failure, .. } => Some(failure),
            Sent::Accepted { .. } => None,
        };
        assert_eq!(
            class(SubmitOutcome::Throttled),
            Some(DispatchFailure::SlowDown)
        );
        assert_eq!(
            class(SubmitOutcome::Ambiguous { detail: "t".into() }),
            Some(DispatchFailure::Ambiguous)
        );
        assert_eq!(
            class(SubmitOutcome::Failed {
                class: Class::Permanent,
                code: "2001",
                detail: "ESME_RINVDSTADR".into()
            }),
            Some(DispatchFailure::NeverResend { code: "2001" })
        );
        assert_eq!(
            class(SubmitOutcome::Failed {
                class: Class::TryAnotherSender,
                code: "2002",
                detail: "bind lost".into()
            }),
            Some(DispatchFailure::TryAnotherSender)
        );
    }
}
