//! Where a carrier message id leads back to its message: the [`ReceiptIndex`] trait. It must
//! outlive the process (a receipt can come days after its submit, on another instance), so the
//! production store is the lead's choice (a compacted topic, the history store);
//! [`MemoryIndex`] is for tests only.

use std::collections::HashMap;
use std::sync::Mutex;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// What a receipt needs to become a report: stored under the carrier id's keys at
/// submit_sm_resp time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageContext {
    /// switchyard's message id.
    pub message_id: String,
    /// The destination address as submitted (receipts carry it back as their source_addr).
    pub to: String,
    /// 1-based part number of a long message sent in parts, and the number of parts.
    pub part: u8,
    pub parts: u8,
    /// When the submit was accepted, in milliseconds since the epoch.
    pub submitted_at: i64,
    /// The caller's own context (e.g. the serialized dispatch request's reference), opaque here.
    pub reference: String,
}

/// The index could not be read or written.
#[derive(Debug, Error)]
pub enum IndexError {
    /// The store is down or slow; a retry may help.
    #[error("receipt index unavailable: {0}")]
    Unavailable(String),
    /// The stored value is unreadable; a retry will not help.
    #[error("receipt index entry unreadable: {0}")]
    Corrupt(String),
}

impl IndexError {
    pub fn is_retriable(&self) -> bool {
        matches!(self, IndexError::Unavailable(_))
    }
}

/// carrier-id key → message context; keys come from [`crate::receipts::CarrierId`].
pub trait ReceiptIndex: Send + Sync + 'static {
    /// Store `context` under every key (one accepted submit has up to three key forms).
    fn put<'a>(
        &'a self,
        keys: &'a [String],
        context: &'a MessageContext,
    ) -> BoxFuture<'a, Result<(), IndexError>>;

    /// The context stored under `key`, if any.
    fn get<'a>(&'a self, key: &'a str)
    -> BoxFuture<'a, Result<Option<MessageContext>, IndexError>>;
}

/// An in-memory index, for tests: forgets everything on restart.
#[derive(Debug, Default)]
pub struct MemoryIndex {
    entries: Mutex<HashMap<String, MessageContext>>,
}

impl MemoryIndex {
    pub fn len(&self) -> usize {
        self.entries.lock().map(|e| e.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl ReceiptIndex for MemoryIndex {
    fn put<'a>(
        &'a self,
        keys: &'a [String],
        context: &'a MessageContext,
    ) -> BoxFuture<'a, Result<(), IndexError>> {
        Box::pin(async move {
            let mut entries = self
                .entries
                .lock()
                .map_err(|e| IndexError::Unavailable(e.to_string()))?;
            for key in keys {
                entries.insert(key.clone(), context.clone());
            }
            Ok(())
        })
    }

    fn get<'a>(
        &'a self,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<MessageContext>, IndexError>> {
        Box::pin(async move {
            let entries = self
                .entries
                .lock()
                .map_err(|e| IndexError::Unavailable(e.to_string()))?;
            Ok(entries.get(key).cloned())
        })
    }
}
