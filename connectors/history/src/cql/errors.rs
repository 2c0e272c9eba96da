//! Driver errors as history errors: a refused statement (syntax, schema, permissions) is not
//! retriable; anything about reaching the cluster is.

use scylla::errors::{DbError, ExecutionError, PrepareError, RequestAttemptError};

use crate::HistoryError;

fn refused(db: &DbError) -> bool {
    matches!(
        db,
        DbError::SyntaxError
            | DbError::Invalid
            | DbError::Unauthorized
            | DbError::ConfigError
            | DbError::AlreadyExists { .. }
            | DbError::AuthenticationError
            | DbError::ProtocolError
    )
}

fn attempt(e: &RequestAttemptError) -> bool {
    matches!(e, RequestAttemptError::DbError(db, _) if refused(db))
}

/// A failed statement.
pub(super) fn execution(e: ExecutionError) -> HistoryError {
    let is_refused = match &e {
        ExecutionError::BadQuery(_) => true,
        ExecutionError::LastAttemptError(a) => attempt(a),
        ExecutionError::PrepareError(p) => prepare_refused(p),
        _ => false,
    };
    if is_refused {
        HistoryError::Refused(e.to_string())
    } else {
        HistoryError::Unavailable(e.to_string())
    }
}

fn prepare_refused(e: &PrepareError) -> bool {
    matches!(e, PrepareError::AllAttemptsFailed { first_attempt } if attempt(first_attempt))
}

/// A statement that could not be prepared.
pub(super) fn prepare(e: PrepareError) -> HistoryError {
    if prepare_refused(&e) {
        HistoryError::Refused(e.to_string())
    } else {
        HistoryError::Unavailable(e.to_string())
    }
}

/// Rows of an unexpected shape: the tables are not what this version wrote.
pub(super) fn shape(e: impl std::fmt::Display) -> HistoryError {
    HistoryError::Refused(format!("unexpected rows (schema mismatch?): {e}"))
}

/// A failure while paging through rows.
pub(super) fn paging(e: impl std::fmt::Display) -> HistoryError {
    HistoryError::Unavailable(e.to_string())
}
