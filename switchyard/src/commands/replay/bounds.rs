//! `--from` / `--to` of `switchyard replay`: an offset or an RFC 3339 time, and the range of
//! offsets each partition is read over once times are looked up.

use std::fmt;

use super::error::ReplayError;

/// Where a replay starts or ends, as given on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// The same offset in every partition.
    Offset(i64),
    /// The first record at or after this time (ms since the epoch), per partition.
    Time(i64),
}

impl Bound {
    /// An offset (`0`, `1500`) or an RFC 3339 time (`2026-11-23T09:00:00Z`,
    /// `2026-11-23T18:00:00+09:00`); `flag` names the option in the error.
    pub fn parse(flag: &str, text: &str) -> Result<Self, ReplayError> {
        let text = text.trim();
        if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
            return text
                .parse::<i64>()
                .map(Bound::Offset)
                .map_err(|e| bad(flag, text, &e.to_string()));
        }
        chrono::DateTime::parse_from_rfc3339(text)
            .map(|time| Bound::Time(time.timestamp_millis()))
            .map_err(|e| {
                bad(
                    flag,
                    text,
                    &format!(
                        "{e}; expected an offset (e.g. 1500) or an RFC 3339 time \
                         (e.g. 2026-11-23T09:00:00Z)"
                    ),
                )
            })
    }
}

/// Refuse `--from` after `--to` when both are offsets or both times (the replay would be empty,
/// which looks like an empty topic).
pub fn check_order(from: Option<Bound>, to: Option<Bound>) -> Result<(), ReplayError> {
    let reversed = match (from, to) {
        (Some(Bound::Offset(a)), Some(Bound::Offset(b))) => a > b,
        (Some(Bound::Time(a)), Some(Bound::Time(b))) => a > b,
        _ => false,
    };
    if reversed {
        return Err(ReplayError::BadArgument(
            "--from is after --to: nothing to replay".into(),
        ));
    }
    Ok(())
}

fn bad(flag: &str, text: &str, reason: &str) -> ReplayError {
    ReplayError::BadArgument(format!("{flag} {text:?}: {reason}"))
}

impl fmt::Display for Bound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Bound::Offset(offset) => write!(f, "offset {offset}"),
            Bound::Time(ms) => write!(f, "time {ms} ms"),
        }
    }
}

/// A bound of one partition once times are looked up (`offsets_for_times`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    /// This offset.
    Offset(i64),
    /// After the last record: no record is at or after the time asked for.
    End,
}

/// The offsets a partition holds when the replay starts: `[low, high)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watermarks {
    pub low: i64,
    pub high: i64,
}

/// The offsets one partition is read over: `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetRange {
    pub start: i64,
    pub end: i64,
}

impl OffsetRange {
    /// `[from, to)` within what the partition holds now: from the beginning by default, to the
    /// end captured at start by default (so a replay ends even while producers write), never
    /// past it, and never before the first offset still kept.
    pub fn within(from: Option<Position>, to: Option<Position>, marks: Watermarks) -> Self {
        let clamp = |position: Option<Position>, default: i64| match position {
            None => default,
            Some(Position::End) => marks.high,
            Some(Position::Offset(offset)) => offset.clamp(marks.low, marks.high.max(marks.low)),
        };
        let start = clamp(from, marks.low);
        let end = clamp(to, marks.high).max(start);
        OffsetRange { start, end }
    }

    /// How many offsets the range spans (records, transaction markers and aborted records).
    pub fn len(&self) -> u64 {
        u64::try_from(self.end - self.start).unwrap_or(0)
    }

    /// Whether nothing is to be read.
    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MARKS: Watermarks = Watermarks { low: 10, high: 100 };

    #[test]
    fn offsets_and_times_parse() {
        assert_eq!(Bound::parse("--from", "0").ok(), Some(Bound::Offset(0)));
        assert_eq!(
            Bound::parse("--from", " 1500 ").ok(),
            Some(Bound::Offset(1500))
        );
        assert_eq!(
            Bound::parse("--from", "1970-01-01T00:00:01Z").ok(),
            Some(Bound::Time(1000))
        );
        assert_eq!(
            Bound::parse("--to", "1970-01-01T09:00:01.5+09:00").ok(),
            Some(Bound::Time(1500))
        );
    }

    #[test]
    fn anything_else_is_refused_with_the_flag_named() {
        for text in [
            "",
            "-5",
            "yesterday",
            "2026-11-23",
            "99999999999999999999",
            "1e3",
        ] {
            let err = Bound::parse("--to", text).expect_err(text);
            assert!(err.to_string().contains("--to"), "{err}");
            assert!(!err.is_retryable());
        }
    }

    #[test]
    fn from_after_to_of_the_same_kind_is_refused() {
        let offset = |o| Some(Bound::Offset(o));
        let time = |t| Some(Bound::Time(t));
        assert!(check_order(offset(5), offset(4)).is_err());
        assert!(check_order(time(5), time(4)).is_err());
        assert!(
            check_order(offset(5), offset(5)).is_ok(),
            "empty but not reversed"
        );
        assert!(
            check_order(offset(5), time(4)).is_ok(),
            "not comparable before lookup"
        );
        assert!(check_order(None, offset(0)).is_ok());
    }

    #[test]
    fn defaults_read_everything_held_at_start() {
        let range = OffsetRange::within(None, None, MARKS);
        assert_eq!(
            range,
            OffsetRange {
                start: 10,
                end: 100
            }
        );
        assert_eq!(range.len(), 90);
    }

    #[test]
    fn offsets_are_clamped_to_what_the_partition_holds() {
        let range = |from: Option<i64>, to: Option<i64>| {
            OffsetRange::within(from.map(Position::Offset), to.map(Position::Offset), MARKS)
        };
        assert_eq!(
            range(Some(20), Some(30)),
            OffsetRange { start: 20, end: 30 }
        );
        assert_eq!(
            range(Some(0), Some(500)),
            OffsetRange {
                start: 10,
                end: 100
            }
        );
        assert!(range(Some(500), None).is_empty());
        assert!(range(Some(50), Some(40)).is_empty());
        assert_eq!(range(Some(50), Some(40)).len(), 0);
    }

    #[test]
    fn a_time_after_the_last_record_is_the_end() {
        let range = OffsetRange::within(Some(Position::End), None, MARKS);
        assert!(range.is_empty());
        let range = OffsetRange::within(Some(Position::Offset(40)), Some(Position::End), MARKS);
        assert_eq!(
            range,
            OffsetRange {
                start: 40,
                end: 100
            }
        );
    }

    #[test]
    fn an_empty_partition_has_nothing_to_read() {
        let marks = Watermarks { low: 0, high: 0 };
        assert!(OffsetRange::within(None, None, marks).is_empty());
        assert!(OffsetRange::within(Some(Position::Offset(5)), None, marks).is_empty());
    }
}
