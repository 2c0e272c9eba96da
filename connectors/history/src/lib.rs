//! The history connector: every event of every message in a store, queryable by message id.
//! The embedded store is SQLite (one machine); ScyllaDB comes with its own issue and keeps the
//! same `Event` model.

pub mod event;
mod pull;
mod sink;
mod sqlite;

pub use event::{CallbackState, Event, HistoryRecord, Stage, Summary};
pub use pull::{FailureCount, PullableReport, ReportPage};
pub use sink::{HistorySink, run_history};
pub use sqlite::{EventView, MessageView, SqliteHistory};

/// What the store can fail with.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// The store is busy or its file unusable; a retry may help.
    #[error("history store unavailable: {0}")]
    Unavailable(String),
    /// The query is wrong (a bad cursor); asking again the same way will not help.
    #[error("bad query: {0}")]
    BadQuery(String),
}

impl From<rusqlite::Error> for HistoryError {
    fn from(e: rusqlite::Error) -> Self {
        HistoryError::Unavailable(e.to_string())
    }
}
