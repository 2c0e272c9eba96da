//! The pull list's cursor: the position after a report in `done_at` then message id order,
//! `<done_at>.<hex of the message id>` (opaque to clients; any message id fits). Both engines
//! page the same way, so a cursor means the same on either.

use crate::HistoryError;
use crate::pull::{PullableReport, ReportPage};

/// The cursor after `report`.
pub(crate) fn cursor_of(report: &PullableReport) -> String {
    encode(report.done_at.unwrap_or(0), &report.message_id)
}

/// The cursor after the item at `at` with id `id` (any list ordered by time then id).
pub(crate) fn encode(at: i64, id: &str) -> String {
    let hex: String = id.bytes().map(|b| format!("{b:02x}")).collect();
    format!("{at}.{hex}")
}

/// The inverse of `cursor_of`; any `-?[0-9]{1,19}[.]([0-9a-f]{2})*` is accepted (a time out of
/// range is clamped).
pub(crate) fn parse_cursor(cursor: &str) -> Option<(i64, String)> {
    let (done_at, hex) = cursor.split_once('.')?;
    let digits = done_at.strip_prefix('-').unwrap_or(done_at);
    if digits.is_empty() || digits.len() > 19 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let done_at = done_at.parse::<i128>().ok()?;
    let done_at = done_at.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64;
    if hex.len() % 2 != 0 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok())
        .collect();
    Some((done_at, String::from_utf8_lossy(&bytes?).into_owned()))
}

/// Where a page starts: after the cursor, or at the very beginning.
pub(crate) fn start_after(cursor: Option<&str>) -> Result<(i64, String), HistoryError> {
    match cursor {
        Some(c) => parse_cursor(c)
            .ok_or_else(|| HistoryError::BadQuery(format!("cursor {c:?} is not valid"))),
        None => Ok((i64::MIN, String::new())),
    }
}

/// A page of at most `limit` reports out of `limit + 1` read (the extra one says there is more).
pub(crate) fn page_of(mut reports: Vec<PullableReport>, limit: usize) -> ReportPage {
    let next_cursor = if reports.len() > limit {
        reports.truncate(limit);
        reports.last().map(cursor_of)
    } else {
        None
    };
    ReportPage {
        reports,
        next_cursor,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_parse_back_and_nonsense_is_refused() {
        assert_eq!(parse_cursor("99999999999999999999.61"), None, "20 digits");
        assert_eq!(
            parse_cursor("9999999999999999999.61"),
            Some((i64::MAX, "a".into()))
        );
        assert_eq!(parse_cursor("-5.6162"), Some((-5, "ab".into())));
        for bad in ["x", "1.abc", "1.AB", ".61", "1"] {
            assert_eq!(parse_cursor(bad), None, "{bad}");
        }
        assert!(start_after(Some("x")).is_err());
    }
}
