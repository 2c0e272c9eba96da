//! The history connector: every event of every message in a store, queryable by message id.
//! One interface (`HistoryStore`), two engines chosen by URL: embedded SQLite (`sqlite://PATH`,
//! one machine) and CQL (`cql://HOST:PORT/KEYSPACE`: ScyllaDB in production, Apache Cassandra
//! locally), both fed the same `Event`s.

mod cql;
mod cursor;
mod error;
pub mod event;
pub mod group_commit;
mod pull;
pub mod rebuild;
mod retention;
mod search;
mod sink;
mod sqlite;
mod store;
mod url;

pub use cql::CqlHistory;
pub use error::HistoryError;
pub use event::{CallbackState, Event, HistoryRecord, Stage, Summary};
pub use pull::{FailureCount, PullableReport, ReportPage};
pub use retention::Retention;
pub use search::{MessagePage, MessageQuery, MessageSummary, ResultCount, SenderStats};
pub use sink::{HISTORY_TOPICS, HistorySink, run_history};
pub use sqlite::{EventView, MessageView, SqliteHistory};
pub use store::HistoryStore;
pub use url::StoreUrl;
