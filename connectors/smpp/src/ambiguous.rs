//! Submits whose fate is unknown (pure): no submit_sm_resp before the deadline, or the
//! connection dropped with them in flight. They are never resent (decision 0017). Each waits
//! here until a receipt reconciles it — a late response on the same bind gives its carrier
//! id; otherwise a receipt the index does not know, for the same recipient and (when the
//! receipt quotes it) the same text — or until its deadline, when it fails as unknown.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::index::MessageContext;
use crate::receipts::{Receipt, same_recipient};

/// One unreconciled submit.
#[derive(Debug, Clone)]
pub struct Unreconciled {
    pub context: MessageContext,
    /// The text of this part, to compare with a text-form receipt's `text:`.
    pub text: String,
    pub until: Instant,
}

/// The submits waiting for reconciliation, oldest first.
#[derive(Debug)]
pub struct Ambiguous {
    deadline: Duration,
    waiting: VecDeque<Unreconciled>,
}

impl Ambiguous {
    pub fn new(deadline: Duration) -> Self {
        Ambiguous {
            deadline,
            waiting: VecDeque::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.waiting.len()
    }

    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    /// Start waiting for a receipt for `context`.
    pub fn add(&mut self, context: MessageContext, text: String, now: Instant) {
        self.waiting.push_back(Unreconciled {
            context,
            text,
            until: now + self.deadline,
        });
    }

    /// A late submit_sm_resp reconciled it: stop waiting (its receipt will match by id).
    pub fn resolved(&mut self, message_id: &str, part: u8) -> bool {
        let before = self.waiting.len();
        self.waiting
            .retain(|u| !(u.context.message_id == message_id && u.context.part == part));
        before != self.waiting.len()
    }

    /// A receipt whose carrier id no index knows: the oldest waiting submit to the same
    /// recipient whose text begins with the receipt's `text:` (when it has one). A recipient is
    /// required here: without a carrier id it is the only evidence.
    pub fn reconcile(&mut self, receipt: &Receipt) -> Option<MessageContext> {
        if !receipt.recipient.chars().any(|c| c.is_ascii_digit()) {
            return None;
        }
        let position = self.waiting.iter().position(|u| {
            same_recipient(&u.context.to, &receipt.recipient)
                && receipt
                    .text
                    .as_deref()
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .is_none_or(|quoted| u.text.starts_with(quoted))
        })?;
        self.waiting.remove(position).map(|u| u.context)
    }

    /// Remove and return the submits past their deadline: they fail as unknown.
    pub fn expire(&mut self, now: Instant) -> Vec<Unreconciled> {
        let (due, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut self.waiting)
            .into_iter()
            .partition(|u| u.until <= now);
        self.waiting = keep.into();
        due
    }

    /// Put back an expired one whose report could not be written yet.
    pub fn retry_later(&mut self, unreconciled: Unreconciled) {
        self.waiting.push_back(unreconciled);
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.waiting.iter().map(|u| u.until).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::receipts::CarrierId;

    fn context(id: &str, to: &str) -> MessageContext {
        MessageContext {
            message_id: id.into(),
            to: to.into(),
            part: 1,
            parts: 1,
            submitted_at: 0,
            reference: String::new(),
        }
    }

    fn receipt(to: &str, text: Option<&str>) -> Receipt {
        Receipt {
            carrier_id: CarrierId("unknown".into()),
            stat: "DELIVRD".into(),
            err: None,
            recipient: to.into(),
            text: text.map(str::to_string),
            done_date: None,
        }
    }

    #[test]
    fn reconciled_by_recipient_and_text() {
        let t0 = Instant::now();
        let mut a = Ambiguous::new(Duration::from_secs(60));
        a.add(context("m1", "01011110000"), "hello one".into(), t0);
        a.add(context("m2", "01022220000"), "hello two".into(), t0);
        a.add(context("m3", "01022220000"), "other".into(), t0);
        assert!(a.reconcile(&receipt("", None)).is_none());
        assert!(a.reconcile(&receipt("01033330000", None)).is_none());
        let got = a
            .reconcile(&receipt("01022220000", Some("other")))
            .expect("m3");
        assert_eq!(got.message_id, "m3");
        let got = a.reconcile(&receipt("+821022220000", None)).expect("m2");
        assert_eq!(got.message_id, "m2");
        assert_eq!(a.len(), 1);
    }

    #[test]
    fn late_responses_and_deadlines() {
        let t0 = Instant::now();
        let mut a = Ambiguous::new(Duration::from_secs(60));
        a.add(context("m1", "0101"), "x".into(), t0);
        a.add(
            context("m2", "0102"),
            "y".into(),
            t0 + Duration::from_secs(1),
        );
        assert!(a.resolved("m1", 1));
        assert!(!a.resolved("m1", 1));
        assert!(a.expire(t0 + Duration::from_secs(60)).is_empty());
        let due = a.expire(t0 + Duration::from_secs(61));
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].context.message_id, "m2");
        assert!(a.is_empty());
    }
}
