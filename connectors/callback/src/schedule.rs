//! The callback retry schedule: after a failed attempt, which retry tier comes next and when it
//! is due, or that the report is exhausted. Retry n waits (n² − n + 1) minutes after the failure
//! (1, 3, 7, … 91); the minute is a setting so tests run the schedule in seconds. No I/O.

use std::time::Duration;

use switchyard_topics::{callback_retry_delay_minutes, names::CALLBACK_RETRY_TIERS};

/// What follows a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Retry `tier` (1..=10), due at `due_at` (ms).
    Retry { tier: u32, due_at: i64 },
    /// The tenth retry failed: no more webhooks; the report stays pullable.
    Exhausted,
}

/// How long tier `n` waits after a failure.
pub fn tier_delay(n: u32, minute: Duration) -> Duration {
    minute * callback_retry_delay_minutes(n)
}

/// After retry `done` failed at `failed_at` (0 = the first delivery, not a retry).
pub fn after_failure(done: u32, failed_at: i64, minute: Duration) -> Next {
    let tier = done + 1;
    if tier > CALLBACK_RETRY_TIERS {
        return Next::Exhausted;
    }
    let delay = tier_delay(tier, minute).as_millis() as i64;
    Next::Retry {
        tier,
        due_at: failed_at + delay,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_is_n_squared_minus_n_plus_one_minutes() {
        let minute = Duration::from_secs(60);
        let mut done = 0;
        let mut waits = Vec::new();
        while let Next::Retry { tier, due_at } = after_failure(done, 0, minute) {
            assert_eq!(tier, done + 1);
            waits.push(due_at / 60_000);
            done = tier;
        }
        assert_eq!(waits, vec![1, 3, 7, 13, 21, 31, 43, 57, 73, 91]);
        assert_eq!(after_failure(10, 0, minute), Next::Exhausted);
    }

    #[test]
    fn a_short_minute_shrinks_every_wait() {
        let minute = Duration::from_millis(100);
        assert_eq!(
            after_failure(0, 1_000, minute),
            Next::Retry {
                tier: 1,
                due_at: 1_100
            }
        );
        assert_eq!(
            after_failure(9, 1_000, minute),
            Next::Retry {
                tier: 10,
                due_at: 10_100
            }
        );
        assert_eq!(tier_delay(4, minute), Duration::from_millis(1_300));
    }
}
