//! The durable `ReceiptIndex` of SMPP senders: entries on the compacted topic
//! `state.receipts` (key `<sender>␟<carrier id key>`, a `StateEntry` whose text is the
//! message context as JSON), read back through a live table, so a receipt matches after a
//! restart or on another instance of the dispatch role.

use futures::future::BoxFuture;
use switchyard_runtime::names::RECEIPT_INDEX;
use switchyard_runtime::{Output, Runtime, Table};
use switchyard_schemas::StateEntry;
use switchyard_smpp::{IndexError, MessageContext, ReceiptIndex};

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
    use super::*;

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
