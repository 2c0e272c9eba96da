//! Delivery receipts (pure): reading a deliver_sm as a receipt, the carrier-id matching rule,
//! and the bounded hold for receipts that arrive before their submit_sm_resp.
//!
//! ## Carrier-id rule
//! SMSCs disagree on the base of message ids: many answer submit_sm_resp in decimal and write
//! the receipt's id in hex (or the other way round), in either case. An accepted id `R` is
//! stored under up to three keys ([`CarrierId::keys`]):
//! - `t:` + `R` trimmed, lowercased, leading zeros removed (the same text);
//! - `d:` + the value of `R` read as decimal, if `R` is all decimal digits;
//! - `x:` + the value of `R` read as hex (written in decimal), if `R` is all hex digits.
//!
//! A receipt id `S` is looked up ([`CarrierId::lookup_keys`]) first as `t:S` (same text),
//! then as `d:` + (`S` read as hex) (resp decimal, receipt hex: "1A2B" finds "6699"), then as
//! `x:` + (`S` read as decimal) (resp hex, receipt decimal: "6699" finds "1A2B"). The first
//! key whose context has the receipt's recipient wins ([`same_recipient`]): a receipt carries
//! the original destination as its source_addr, which tells apart the rare ids valid in both
//! bases ("16" decimal is also 0x10). [`IdForm`] pins one interpretation per sender once known.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::codes::message_state_name;
use crate::pdu::{ShortMessage, tag};

/// Which interpretations of a receipt's id are tried.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdForm {
    /// Same text first, then hex-of-decimal, then decimal-of-hex.
    #[default]
    Auto,
    /// The receipt's id is the response's id (case and leading zeros aside).
    Same,
    /// The receipt writes in hex the id the response gave in decimal.
    ReceiptHex,
    /// The receipt writes in decimal the id the response gave in hex.
    ReceiptDecimal,
}

/// A carrier message id and its normalised keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CarrierId(pub String);

impl CarrierId {
    fn text(&self) -> String {
        let lower = self.0.trim().to_ascii_lowercase();
        let stripped = lower.trim_start_matches('0');
        if stripped.is_empty() && !lower.is_empty() {
            "0".into()
        } else {
            stripped.to_string()
        }
    }

    fn decimal(&self) -> Option<u128> {
        let t = self.0.trim();
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        t.parse().ok()
    }

    fn hex(&self) -> Option<u128> {
        let t = self.0.trim();
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        u128::from_str_radix(t, 16).ok()
    }

    /// The keys an accepted id is stored under.
    pub fn keys(&self) -> Vec<String> {
        let mut keys = vec![format!("t:{}", self.text())];
        if let Some(d) = self.decimal() {
            keys.push(format!("d:{d}"));
        }
        if let Some(x) = self.hex() {
            keys.push(format!("x:{x}"));
        }
        keys
    }

    /// The keys a receipt's id is looked up under, best first.
    pub fn lookup_keys(&self, form: IdForm) -> Vec<String> {
        let same = format!("t:{}", self.text());
        let hex_of_decimal = self.hex().map(|v| format!("d:{v}"));
        let decimal_of_hex = self.decimal().map(|v| format!("x:{v}"));
        match form {
            IdForm::Auto => std::iter::once(same)
                .chain(hex_of_decimal)
                .chain(decimal_of_hex)
                .collect(),
            IdForm::Same => vec![same],
            IdForm::ReceiptHex => hex_of_decimal.into_iter().collect(),
            IdForm::ReceiptDecimal => decimal_of_hex.into_iter().collect(),
        }
    }

    /// Whether a receipt with this id may be about the accepted id `accepted`.
    pub fn may_match(&self, accepted: &CarrierId, form: IdForm) -> bool {
        let stored = accepted.keys();
        self.lookup_keys(form).iter().any(|k| stored.contains(k))
    }
}

/// Whether two addresses are the same recipient: the last 8 digits agree (national and
/// international forms of one number differ only in their prefix). An address without
/// digits matches anything: it is no evidence either way.
pub fn same_recipient(a: &str, b: &str) -> bool {
    let da: Vec<char> = a.chars().filter(char::is_ascii_digit).collect();
    let db: Vec<char> = b.chars().filter(char::is_ascii_digit).collect();
    if da.is_empty() || db.is_empty() {
        return true;
    }
    let n = da.len().min(db.len()).min(8);
    da[da.len() - n..] == db[db.len() - n..]
}

/// A delivery receipt read from a deliver_sm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub carrier_id: CarrierId,
    /// The state name: `DELIVRD`, `UNDELIV`, … (from `message_state` or `stat:`).
    pub stat: String,
    /// `err:` of the text form, if any.
    pub err: Option<String>,
    /// The original recipient (the deliver_sm's source_addr).
    pub recipient: String,
    /// `text:` of the text form: the first characters of the message, if any.
    pub text: Option<String>,
    /// `done date:` of the text form (YYMMDDhhmm), if any.
    pub done_date: Option<String>,
}

/// A deliver_sm flagged as a receipt that cannot be read.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum ReceiptError {
    #[error("receipt without a message id (no receipted_message_id TLV, no id: in the text)")]
    NoId,
    #[error("receipt without a state (no message_state TLV, no stat: in the text)")]
    NoState,
}

/// Whether esm_class marks an SMSC delivery receipt (bits 2–5 = 0001) or an intermediate
/// delivery notification (1000).
pub fn is_receipt(esm_class: u8) -> bool {
    matches!(esm_class & 0x3C, 0x04 | 0x20)
}

/// Read a deliver_sm: `None` if it is not a receipt (a mobile-originated message).
/// The TLVs `receipted_message_id` and `message_state` come first; the text form is read only
/// for what they do not say.
pub fn parse(deliver: &ShortMessage) -> Option<Result<Receipt, ReceiptError>> {
    if !is_receipt(deliver.esm_class) {
        return None;
    }
    let body: String = deliver.short_message.iter().map(|&b| b as char).collect();
    let tlv_id = deliver
        .tlv(tag::RECEIPTED_MESSAGE_ID)
        .map(|v| {
            v.iter()
                .take_while(|&&b| b != 0)
                .map(|&b| b as char)
                .collect::<String>()
        })
        .filter(|s| !s.trim().is_empty());
    let tlv_state = deliver
        .tlv(tag::MESSAGE_STATE)
        .and_then(|v| v.first().copied())
        .map(|s| message_state_name(s).to_string());
    let id = match tlv_id.or_else(|| text_field(&body, "id")) {
        Some(id) => id,
        None => return Some(Err(ReceiptError::NoId)),
    };
    let stat = match tlv_state.or_else(|| text_field(&body, "stat")) {
        Some(stat) => stat,
        None => return Some(Err(ReceiptError::NoState)),
    };
    Some(Ok(Receipt {
        carrier_id: CarrierId(id.trim().to_string()),
        stat,
        err: text_field(&body, "err"),
        recipient: deliver.source_addr.clone(),
        text: text_rest(&body),
        done_date: text_field(&body, "done date"),
    }))
}

/// Where `key:` starts a field of the text form (at the start or after a space).
fn field_start(body: &str, key: &str) -> Option<usize> {
    let lower = body.to_ascii_lowercase();
    let needle = format!("{key}:");
    let mut from = 0;
    while let Some(pos) = lower[from..].find(&needle) {
        let at = from + pos;
        if at == 0 || lower.as_bytes()[at - 1] == b' ' {
            return Some(at + needle.len());
        }
        from = at + needle.len();
    }
    None
}

/// A one-word field of the text form.
fn text_field(body: &str, key: &str) -> Option<String> {
    let start = field_start(body, key)?;
    let value: String = body[start..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect();
    (!value.is_empty()).then_some(value)
}

/// `text:`, which runs to the end.
fn text_rest(body: &str) -> Option<String> {
    let start = field_start(body, "text")?;
    Some(body[start..].to_string())
}

/// A receipt held until its submit_sm_resp comes.
#[derive(Debug)]
struct Held<T> {
    receipt: Receipt,
    tag: T,
    until: Instant,
}

/// The hold is full: answer the receipt with a temporary error (the SMSC sends it again).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("{0} receipts already wait for their submit responses")]
pub struct HoldFull(pub usize);

/// Receipts that came before their submit_sm_resp, bounded and with expiry. `T` is what the
/// session needs to answer the deliver_sm later (its sequence number, the connection).
#[derive(Debug)]
pub struct EarlyReceipts<T> {
    capacity: usize,
    ttl: Duration,
    form: IdForm,
    held: VecDeque<Held<T>>,
}

impl<T> EarlyReceipts<T> {
    pub fn new(capacity: usize, ttl: Duration, form: IdForm) -> Self {
        EarlyReceipts {
            capacity,
            ttl,
            form,
            held: VecDeque::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.held.len()
    }

    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// Hold `receipt` until `now` + ttl.
    pub fn hold(&mut self, receipt: Receipt, tag: T, now: Instant) -> Result<(), (HoldFull, T)> {
        if self.held.len() >= self.capacity {
            return Err((HoldFull(self.held.len()), tag));
        }
        self.held.push_back(Held {
            receipt,
            tag,
            until: now + self.ttl,
        });
        Ok(())
    }

    /// A submit to `to` was accepted as `accepted`: the held receipts about it.
    pub fn take_matching(&mut self, accepted: &CarrierId, to: &str) -> Vec<(Receipt, T)> {
        let form = self.form;
        let (hit, keep): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.held).into_iter().partition(|h| {
                h.receipt.carrier_id.may_match(accepted, form)
                    && same_recipient(&h.receipt.recipient, to)
            });
        self.held = keep.into();
        hit.into_iter().map(|h| (h.receipt, h.tag)).collect()
    }

    /// Remove and return the receipts held past their time.
    pub fn expire(&mut self, now: Instant) -> Vec<(Receipt, T)> {
        let (due, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut self.held)
            .into_iter()
            .partition(|h| h.until <= now);
        self.held = keep.into();
        due.into_iter().map(|h| (h.receipt, h.tag)).collect()
    }

    /// Remove and return everything (the connection the receipts came on is gone).
    pub fn drain(&mut self) -> Vec<(Receipt, T)> {
        std::mem::take(&mut self.held)
            .into_iter()
            .map(|h| (h.receipt, h.tag))
            .collect()
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.held.iter().map(|h| h.until).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pdu::Tlv;

    fn id(s: &str) -> CarrierId {
        CarrierId(s.into())
    }

    #[test]
    fn ids_match_across_bases_and_case() {
        assert!(id("1A2B").may_match(&id("6699"), IdForm::Auto));
        assert!(id("1a2b").may_match(&id("6699"), IdForm::Auto));
        assert!(id("6699").may_match(&id("1A2B"), IdForm::Auto));
        assert!(id("0006699").may_match(&id("6699"), IdForm::Same));
        assert!(id("abc").may_match(&id("ABC"), IdForm::Same));
        assert!(!id("1A2B").may_match(&id("6699"), IdForm::Same));
        assert!(id("1A2B").may_match(&id("6699"), IdForm::ReceiptHex));
        assert!(!id("6699").may_match(&id("6699"), IdForm::ReceiptHex));
        assert!(!id("1A2C").may_match(&id("6699"), IdForm::Auto));
        assert!(!id("msg-1").may_match(&id("msg-2"), IdForm::Auto));
    }

    #[test]
    fn the_same_text_is_tried_first() {
        let keys = id("16").lookup_keys(IdForm::Auto);
        assert_eq!(keys, vec!["t:16", "d:22", "x:16"]);
        assert_eq!(id("0").keys(), vec!["t:0", "d:0", "x:0"]);
        assert_eq!(id("zz").keys(), vec!["t:zz"]);
    }

    #[test]
    fn recipients_compare_on_their_last_digits() {
        assert!(same_recipient("+821012345678", "01012345678"));
        assert!(!same_recipient("01012345678", "01012345679"));
        assert!(same_recipient("", "01012345679"));
    }

    fn deliver(esm: u8, text: &str, tlvs: Vec<Tlv>) -> ShortMessage {
        ShortMessage {
            esm_class: esm,
            source_addr: "01012345678".into(),
            short_message: text.as_bytes().to_vec(),
            tlvs,
            ..ShortMessage::default()
        }
    }

    #[test]
    fn tlvs_come_before_the_text() {
        let m = deliver(
            0x04,
            "id:999 sub:001 dlvrd:001 submit date:2311231200 done date:2311231201 stat:UNDELIV err:001 text:Hello there",
            vec![
                Tlv {
                    tag: tag::RECEIPTED_MESSAGE_ID,
                    value: b"1A2B\0".to_vec(),
                },
                Tlv {
                    tag: tag::MESSAGE_STATE,
                    value: vec![2],
                },
            ],
        );
        let r = parse(&m).expect("a receipt").expect("readable");
        assert_eq!(r.carrier_id, id("1A2B"));
        assert_eq!(r.stat, "DELIVRD");
        assert_eq!(r.err.as_deref(), Some("001"));
        assert_eq!(r.text.as_deref(), Some("Hello there"));
        assert_eq!(r.done_date.as_deref(), Some("2311231201"));
        assert_eq!(r.recipient, "01012345678");
    }

    #[test]
    fn the_text_form_alone() {
        let m = deliver(
            0x04,
            "id:0000006699 sub:001 dlvrd:000 submit date:2311231200 done date:2311231201 stat:EXPIRED err:000 text:",
            vec![],
        );
        let r = parse(&m).expect("a receipt").expect("readable");
        assert_eq!(r.carrier_id, id("0000006699"));
        assert!(r.carrier_id.may_match(&id("6699"), IdForm::Auto));
        assert_eq!(r.stat, "EXPIRED");
        assert_eq!(r.text.as_deref(), Some(""));
    }

    #[test]
    fn not_a_receipt_or_unreadable() {
        assert!(parse(&deliver(0x00, "hello", vec![])).is_none());
        assert_eq!(
            parse(&deliver(0x04, "stat:DELIVRD", vec![])),
            Some(Err(ReceiptError::NoId))
        );
        assert_eq!(
            parse(&deliver(0x04, "id:12 sub:001", vec![])),
            Some(Err(ReceiptError::NoState))
        );
        // "id:" inside another word is not the id field.
        assert_eq!(
            parse(&deliver(0x04, "xid:12 stat:DELIVRD", vec![])),
            Some(Err(ReceiptError::NoId))
        );
    }

    fn receipt(carrier: &str, to: &str) -> Receipt {
        Receipt {
            carrier_id: id(carrier),
            stat: "DELIVRD".into(),
            err: None,
            recipient: to.into(),
            text: None,
            done_date: None,
        }
    }

    #[test]
    fn early_receipts_are_matched_bounded_and_expire() {
        let t0 = Instant::now();
        let mut hold = EarlyReceipts::new(2, Duration::from_secs(10), IdForm::Auto);
        hold.hold(receipt("1A2B", "0101"), 1, t0).expect("room");
        hold.hold(receipt("77", "0102"), 2, t0 + Duration::from_secs(5))
            .expect("room");
        assert!(matches!(
            hold.hold(receipt("78", "0103"), 3, t0),
            Err((HoldFull(2), 3))
        ));
        // Same id, other recipient: not this one.
        assert!(hold.take_matching(&id("6699"), "0999").is_empty());
        let hit = hold.take_matching(&id("6699"), "0101");
        assert_eq!(hit.len(), 1);
        assert_eq!(hit[0].1, 1);
        assert!(hold.expire(t0 + Duration::from_secs(14)).is_empty());
        assert_eq!(hold.next_deadline(), Some(t0 + Duration::from_secs(15)));
        let gone = hold.expire(t0 + Duration::from_secs(15));
        assert_eq!(gone[0].1, 2);
        assert!(hold.is_empty());
    }

    proptest::proptest! {
        #[test]
        fn any_receipt_text_parses_without_panicking(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200), text in "\\PC{0,120}") {
            let _ = parse(&deliver(0x04, &text, vec![]));
            let m = ShortMessage { esm_class: 0x04, short_message: body, ..ShortMessage::default() };
            let _ = parse(&m);
        }
    }
}
