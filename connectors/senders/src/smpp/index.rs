//! The durable `ReceiptIndex` of SMPP senders: entries on the compacted topic
//! `state.receipts` (key `<sender>␟<carrier id key>`, a `StateEntry` whose text is the
//! message context as JSON), read back through a live table, so a receipt matches after a
//! restart or on another instance of the dispatch role. Once a final receipt's report is
//! written its entries are tombstoned ([`settled_keys`]), so the topic does not grow forever.

use futures::future::BoxFuture;
use switchyard_runtime::names::RECEIPT_INDEX;
use switchyard_runtime::{Output, Runtime, Table};
use switchyard_schemas::StateEntry;
use switchyard_smpp::receipts::CarrierId;
use switchyard_smpp::{IndexError, MessageContext, ReceiptIndex, ReceiptReport, ReportKind};

/// How long an entry is good for: longer than any carrier keeps a message (72 h) plus the
/// late receipts some send after it.
pub const ENTRY_TTL_MS: i64 = 7 * 24 * 3_600_000;

/// Separates the sender from the carrier id in a key (carrier ids of two SMSCs may collide).
const SEPARATOR: char = '\u{241F}';

/// One sender's view of `state.receipts`.
#[derive(Debug, Clone)]
pub struct TopicIndex {
    runtime: Runtime,
    table: Table<String, StateEntry>,
    sender: String,
}

impl TopicIndex {
    pub fn new(runtime: Runtime, table: Table<String, StateEntry>, sender: &str) -> Self {
        TopicIndex {
            runtime,
            table,
            sender: sender.to_string(),
        }
    }
}

/// The topic key of `key` for `sender`.
pub fn entry_key(sender: &str, key: &str) -> String {
    format!("{sender}{SEPARATOR}{key}")
}

/// The entry stored for `context`.
pub fn entry(context: &MessageContext) -> Result<StateEntry, IndexError> {
    let text = serde_json::to_string(context).map_err(|e| IndexError::Corrupt(e.to_string()))?;
    Ok(StateEntry {
        text: Some(text),
        amount: 0,
        expires_at: Some(context.submitted_at.saturating_add(ENTRY_TTL_MS)),
    })
}

/// The context of a stored entry; `None` once expired at `now`.
pub fn context(entry: &StateEntry, now: i64) -> Result<Option<MessageContext>, IndexError> {
    if entry.expires_at.is_some_and(|at| at <= now) {
        return Ok(None);
    }
    let text = entry
        .text
        .as_deref()
        .ok_or_else(|| IndexError::Corrupt("entry without text".into()))?;
    serde_json::from_str(text)
        .map(Some)
        .map_err(|e| IndexError::Corrupt(e.to_string()))
}

/// The topic keys to tombstone once `report` is written: none unless it is a final receipt;
/// else every key form of its carrier id (as stored at submit, and as a receipt looks it up)
/// whose entry (`lookup`) is about the same message part — never another message's entry.
pub fn settled_keys(
    sender: &str,
    report: &ReceiptReport,
    lookup: impl Fn(&str) -> Option<StateEntry>,
) -> Vec<String> {
    let Some(carrier_id) = report.carrier_id.as_deref() else {
        return Vec::new();
    };
    if report.kind != ReportKind::Receipt || !report.status.is_final() {
        return Vec::new();
    }
    let id = CarrierId(carrier_id.to_string());
    let mut keys = Vec::new();
    for key in id
        .keys()
        .into_iter()
        .chain(id.lookup_keys(switchyard_smpp::IdForm::Auto))
    {
        let full = entry_key(sender, &key);
        if keys.contains(&full) {
            continue;
        }
        let same = lookup(&full)
            .and_then(|e| context(&e, i64::MIN).ok().flatten())
            .is_some_and(|c| {
                c.message_id == report.context.message_id && c.part == report.context.part
            });
        if same {
            keys.push(full);
        }
    }
    keys
}

impl TopicIndex {
    /// Tombstones for the entries `report` settles (see [`settled_keys`]).
    pub fn tombstones(&self, report: &ReceiptReport) -> Vec<Output> {
        settled_keys(&self.sender, report, |key| self.table.get(&key.to_string()))
            .into_iter()
            .map(|key| Output::tombstone(RECEIPT_INDEX, key))
            .collect()
    }
}

impl ReceiptIndex for TopicIndex {
    fn put<'a>(
        &'a self,
        keys: &'a [String],
        context: &'a MessageContext,
    ) -> BoxFuture<'a, Result<(), IndexError>> {
        Box::pin(async move {
            let value = entry(context)?;
            let outputs: Vec<Output> = keys
                .iter()
                .map(|key| Output::new(RECEIPT_INDEX, entry_key(&self.sender, key), value.clone()))
                .collect();
            self.runtime
                .publish("dispatch", &outputs)
                .await
                .map(|_| ())
                .map_err(|e| IndexError::Unavailable(e.to_string()))
        })
    }

    fn get<'a>(
        &'a self,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<MessageContext>, IndexError>> {
        Box::pin(async move {
            match self.table.get(&entry_key(&self.sender, key)) {
                Some(entry) => context(&entry, switchyard_schemas::now_millis()),
                None => Ok(None),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use switchyard_schemas::ResultStatus;

    fn ctx(message_id: &str, part: u8) -> MessageContext {
        MessageContext {
            message_id: message_id.into(),
            to: "0101".into(),
            part,
            parts: 2,
            submitted_at: 1_000,
            reference: "{}".into(),
        }
    }

    fn receipt(carrier_id: &str, status: ResultStatus, context: MessageContext) -> ReceiptReport {
        ReceiptReport {
            kind: ReportKind::Receipt,
            context,
            carrier_id: Some(carrier_id.into()),
            status,
            result_code: "0000",
            result_text: "delivered",
            carrier_code: "DELIVRD".into(),
        }
    }

    #[test]
    fn a_final_receipt_settles_its_own_entries_only() {
        // Stored at submit under every form of "26112", plus another message's entry under a
        // key the receipt's id would also look up.
        let mut table: HashMap<String, StateEntry> = HashMap::new();
        for key in CarrierId("26112".into()).keys() {
            table.insert(
                entry_key("skt", &key),
                entry(&ctx("m-1", 1)).expect("entry"),
            );
        }
        table.insert(
            entry_key("skt", "x:26112"),
            entry(&ctx("m-other", 1)).expect("entry"),
        );
        let lookup = |k: &str| table.get(k).cloned();
        let delivered = receipt("26112", ResultStatus::Delivered, ctx("m-1", 1));
        let mut keys = settled_keys("skt", &delivered, lookup);
        keys.sort();
        // Its three forms (x: is "26112" read as hex); not the other message's x:26112.
        assert_eq!(
            keys,
            vec![
                entry_key("skt", "d:26112"),
                entry_key("skt", "t:26112"),
                entry_key("skt", "x:155922")
            ]
        );
        // Another part, a non-final receipt, or a report that is no receipt: nothing.
        let part_two = receipt("26112", ResultStatus::Delivered, ctx("m-1", 2));
        assert!(settled_keys("skt", &part_two, lookup).is_empty());
        let enroute = receipt("26112", ResultStatus::Unknown, ctx("m-1", 1));
        assert!(settled_keys("skt", &enroute, lookup).is_empty());
        let mut unknown = receipt("26112", ResultStatus::Failed, ctx("m-1", 1));
        unknown.kind = ReportKind::Unknown;
        assert!(settled_keys("skt", &unknown, lookup).is_empty());
        // Another sender's view finds nothing of its own.
        assert!(settled_keys("kt", &delivered, lookup).is_empty());
    }

    #[test]
    fn entries_round_trip_and_expire() {
        let ctx = MessageContext {
            message_id: "m".into(),
            to: "0101".into(),
            part: 1,
            parts: 1,
            submitted_at: 1_000,
            reference: "{}".into(),
        };
        let e = entry(&ctx).expect("entry");
        assert_eq!(context(&e, 2_000).expect("ok"), Some(ctx));
        assert_eq!(context(&e, 1_000 + ENTRY_TTL_MS).expect("ok"), None);
        let bad = StateEntry {
            text: Some("{".into()),
            amount: 0,
            expires_at: None,
        };
        assert!(matches!(context(&bad, 0), Err(IndexError::Corrupt(_))));
        assert_eq!(entry_key("skt", "6699"), "skt\u{241F}6699");
    }
}
