//! One message's submit in progress (pure): its parts, the state of each, and the outcome once
//! every part is settled. A part the SMSC refused is never "retried" here except after a
//! throttling answer (the SMSC said it took nothing); an unanswered part is ambiguous.

use std::time::Instant;

use tokio::sync::oneshot;

use crate::codes::{Class, PARTLY_SENT_CODE, status_name};
use crate::encoding::Encoded;
use crate::index::MessageContext;
use crate::sender::{OutgoingMessage, SubmitOutcome};

/// A submit as handed to the session.
#[derive(Debug)]
pub struct Job {
    pub message: OutgoingMessage,
    pub reply: oneshot::Sender<SubmitOutcome>,
    pub created: Instant,
}

impl Job {
    pub fn new(message: OutgoingMessage, reply: oneshot::Sender<SubmitOutcome>) -> Self {
        Job {
            message,
            reply,
            created: Instant::now(),
        }
    }
}

/// Where one part stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartState {
    /// Not sent (yet, or again after a throttling answer).
    Queued,
    /// Sent; its response is awaited.
    InFlight,
    /// Taken by the SMSC under this id; `stored` once the index has it.
    Accepted { carrier_id: String, stored: bool },
    /// Refused (or not sent because another part was refused).
    Failed { class: Class, status: u32 },
    /// Sent, fate unknown.
    Ambiguous,
}

impl PartState {
    fn settled(&self) -> bool {
        match self {
            PartState::Queued | PartState::InFlight => false,
            PartState::Accepted { stored, .. } => *stored,
            PartState::Failed { .. } | PartState::Ambiguous => true,
        }
    }
}

/// A message being submitted.
#[derive(Debug)]
pub struct Active {
    pub message: OutgoingMessage,
    pub reply: Option<oneshot::Sender<SubmitOutcome>>,
    pub created: Instant,
    pub parts: Vec<Encoded>,
    pub states: Vec<PartState>,
    /// Throttling answers so far.
    pub throttles: u32,
}

impl Active {
    pub fn new(job: Job, parts: Vec<Encoded>) -> Self {
        let states = vec![PartState::Queued; parts.len()];
        Active {
            message: job.message,
            reply: Some(job.reply),
            created: job.created,
            parts,
            states,
            throttles: 0,
        }
    }

    /// Whether any part left this process.
    pub fn sent_any(&self) -> bool {
        self.states.iter().any(|s| *s != PartState::Queued)
    }

    /// The stored context of part `part` (0-based), submitted at `submitted_at` (ms).
    pub fn context(&self, part: usize, submitted_at: i64) -> MessageContext {
        MessageContext {
            message_id: self.message.message_id.clone(),
            to: self.message.to.clone(),
            part: part.saturating_add(1).min(255) as u8,
            parts: self.parts.len().min(255) as u8,
            submitted_at,
            reference: self.message.reference.clone(),
        }
    }

    /// A part was refused: the parts not yet sent are not sent either.
    pub fn refuse(&mut self, part: usize, class: Class, status: u32) {
        if let Some(state) = self.states.get_mut(part) {
            *state = PartState::Failed { class, status };
        }
        for state in &mut self.states {
            if *state == PartState::Queued {
                *state = PartState::Failed { class, status };
            }
        }
    }

    /// The outcome, once every part is settled.
    pub fn outcome(&self) -> Option<SubmitOutcome> {
        if !self.states.iter().all(PartState::settled) {
            return None;
        }
        let accepted: Vec<String> = self
            .states
            .iter()
            .filter_map(|s| match s {
                PartState::Accepted { carrier_id, .. } => Some(carrier_id.clone()),
                _ => None,
            })
            .collect();
        if accepted.len() == self.states.len() {
            return Some(SubmitOutcome::Accepted {
                carrier_ids: accepted,
            });
        }
        if self.states.contains(&PartState::Ambiguous) {
            return Some(SubmitOutcome::Ambiguous {
                detail: format!(
                    "{} of {} parts unanswered; {} accepted",
                    self.states
                        .iter()
                        .filter(|s| **s == PartState::Ambiguous)
                        .count(),
                    self.states.len(),
                    accepted.len()
                ),
            });
        }
        let (class, status) = self.states.iter().find_map(|s| match s {
            PartState::Failed { class, status } => Some((*class, *status)),
            _ => None,
        })?;
        if !accepted.is_empty() {
            return Some(SubmitOutcome::Failed {
                class: Class::Permanent,
                code: PARTLY_SENT_CODE,
                detail: format!(
                    "{} of {} parts accepted, then {}",
                    accepted.len(),
                    self.states.len(),
                    status_name(status)
                ),
            });
        }
        Some(match class {
            Class::Throttled => SubmitOutcome::Throttled,
            class => SubmitOutcome::Failed {
                class,
                code: class.result_code(),
                detail: status_name(status),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::{DataCoding, LongText, encode};

    fn active(text: &str) -> Active {
        let (reply, _) = oneshot::channel();
        let message = OutgoingMessage {
            message_id: "m1".into(),
            to: "01012345678".into(),
            from: None,
            text: text.into(),
            reference: "ref".into(),
        };
        let parts = encode(text, DataCoding::Gsm, LongText::Udh, 1).expect("gsm");
        Active::new(
            Job {
                message,
                reply,
                created: Instant::now(),
            },
            parts,
        )
    }

    fn accepted(id: &str, stored: bool) -> PartState {
        PartState::Accepted {
            carrier_id: id.into(),
            stored,
        }
    }

    #[test]
    fn accepted_once_every_part_is_stored() {
        let mut a = active(&"x".repeat(200));
        assert_eq!(a.states.len(), 2);
        a.states[0] = accepted("1", true);
        a.states[1] = accepted("2", false);
        assert_eq!(a.outcome(), None);
        a.states[1] = accepted("2", true);
        assert_eq!(
            a.outcome(),
            Some(SubmitOutcome::Accepted {
                carrier_ids: vec!["1".into(), "2".into()]
            })
        );
        assert_eq!(a.context(1, 5).part, 2);
        assert_eq!(a.context(1, 5).parts, 2);
    }

    #[test]
    fn refusals_throttling_and_ambiguity() {
        let mut a = active("hi");
        a.refuse(0, Class::Permanent, 0x0B);
        assert!(matches!(
            a.outcome(),
            Some(SubmitOutcome::Failed {
                class: Class::Permanent,
                code: "2001",
                ..
            })
        ));
        let mut a = active("hi");
        a.refuse(0, Class::Throttled, 0x58);
        assert_eq!(a.outcome(), Some(SubmitOutcome::Throttled));
        let mut a = active(&"x".repeat(400));
        a.states[0] = accepted("1", true);
        a.refuse(1, Class::TryAnotherSender, 0x08);
        assert_eq!(
            a.states[2],
            PartState::Failed {
                class: Class::TryAnotherSender,
                status: 8
            }
        );
        assert!(matches!(
            a.outcome(),
            Some(SubmitOutcome::Failed {
                class: Class::Permanent,
                code: "2003",
                ..
            })
        ));
        let mut a = active(&"x".repeat(200));
        a.states[0] = PartState::Ambiguous;
        a.states[1] = PartState::InFlight;
        assert_eq!(a.outcome(), None);
        a.states[1] = accepted("9", true);
        assert!(matches!(a.outcome(), Some(SubmitOutcome::Ambiguous { .. })));
        assert!(a.sent_any());
    }
}
