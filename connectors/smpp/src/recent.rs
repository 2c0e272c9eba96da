//! The carrier ids this process accepted lately (pure, bounded): receipts for them match
//! without a round trip to the [`crate::index::ReceiptIndex`], and a receipt racing its own
//! index write still finds its message.

use std::collections::{HashMap, VecDeque};

use crate::index::MessageContext;
use crate::receipts::{CarrierId, IdForm, Receipt, same_recipient};

/// Recently accepted ids, oldest forgotten first.
#[derive(Debug)]
pub struct Recent {
    capacity: usize,
    by_key: HashMap<String, MessageContext>,
    order: VecDeque<Vec<String>>,
}

impl Recent {
    pub fn new(capacity: usize) -> Self {
        Recent {
            capacity: capacity.max(1),
            by_key: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    pub fn insert(&mut self, carrier_id: &CarrierId, context: MessageContext) {
        let keys = carrier_id.keys();
        for key in &keys {
            self.by_key.insert(key.clone(), context.clone());
        }
        self.order.push_back(keys);
        while self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                for key in old {
                    self.by_key.remove(&key);
                }
            }
        }
    }

    /// The message `receipt` is about, by the carrier-id rule of [`crate::receipts`].
    pub fn find(&self, receipt: &Receipt, form: IdForm) -> Option<MessageContext> {
        receipt
            .carrier_id
            .lookup_keys(form)
            .iter()
            .filter_map(|k| self.by_key.get(k))
            .find(|c| same_recipient(&c.to, &receipt.recipient))
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    fn receipt(id: &str, to: &str) -> Receipt {
        Receipt {
            carrier_id: CarrierId(id.into()),
            stat: "DELIVRD".into(),
            err: None,
            recipient: to.into(),
            text: None,
            done_date: None,
        }
    }

    #[test]
    fn finds_by_rule_and_recipient_and_forgets_the_oldest() {
        let mut r = Recent::new(2);
        r.insert(&CarrierId("16".into()), context("a", "0101"));
        r.insert(&CarrierId("22".into()), context("b", "0102"));
        // "16" is both a's id and b's id in hex: the recipient decides.
        assert_eq!(
            r.find(&receipt("16", "0101"), IdForm::Auto)
                .map(|c| c.message_id),
            Some("a".into())
        );
        assert_eq!(
            r.find(&receipt("16", "0102"), IdForm::Auto)
                .map(|c| c.message_id),
            Some("b".into())
        );
        r.insert(&CarrierId("30".into()), context("c", "0103"));
        assert!(r.find(&receipt("16", "0101"), IdForm::Auto).is_none());
        assert!(r.find(&receipt("1e", "0103"), IdForm::Auto).is_some());
    }
}
