//! Logging a stream of client errors without flooding the log or slowing down: the first error
//! is logged at once, then at most one line per interval with how many were left out.

use std::time::{Duration, Instant};

/// How often a repeating error is logged.
const INTERVAL: Duration = Duration::from_secs(5);

/// Rate limiter for one stage's consume errors.
#[derive(Debug, Default)]
pub(crate) struct ErrorLog {
    last: Option<Instant>,
    left_out: u64,
}

impl ErrorLog {
    /// Whether to log this error now; `Some(n)` with the number of errors left out since the
    /// last line.
    pub fn admit(&mut self, now: Instant) -> Option<u64> {
        match self.last {
            Some(last) if now.duration_since(last) < INTERVAL => {
                self.left_out += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.left_out))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_the_first_then_one_per_interval_with_the_count_left_out() {
        let mut log = ErrorLog::default();
        let t0 = Instant::now();
        assert_eq!(log.admit(t0), Some(0));
        assert_eq!(log.admit(t0 + Duration::from_millis(200)), None);
        assert_eq!(log.admit(t0 + Duration::from_secs(1)), None);
        assert_eq!(log.admit(t0 + INTERVAL + Duration::from_millis(1)), Some(2));
    }
}
