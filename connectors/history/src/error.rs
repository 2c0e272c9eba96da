//! What a history store can fail with, and whether trying again can help.

/// What the store can fail with.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// The store is busy, unreachable or its file unusable for now; a retry may help.
    #[error("history store unavailable: {0}")]
    Unavailable(String),
    /// The query is wrong (a bad cursor, a range too long); asking again the same way will not
    /// help.
    #[error("bad query: {0}")]
    BadQuery(String),
    /// The store URL names no engine we have or is malformed; fix the setting.
    #[error("history store URL: {0}")]
    BadUrl(String),
    /// The store refused a statement (schema, permissions, invalid request): retrying the
    /// same thing will not help.
    #[error("history store refused the request: {0}")]
    Refused(String),
}

impl HistoryError {
    /// Whether trying again later may succeed.
    pub fn is_retriable(&self) -> bool {
        matches!(self, HistoryError::Unavailable(_))
    }
}

impl From<rusqlite::Error> for HistoryError {
    fn from(e: rusqlite::Error) -> Self {
        HistoryError::Unavailable(e.to_string())
    }
}
