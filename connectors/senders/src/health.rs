//! What one dispatcher knows about its sender's health (pure bookkeeping, times passed in):
//! since when it has been failing, since when it has been throttling without taking anything,
//! its recent error rate and throughput, and the heartbeat it publishes on
//! `state.sender-health` from that.

use switchyard_schemas::SenderHealth;

use crate::failure::{DispatchFailure, Sent};

/// One sender's health as its dispatcher sees it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HealthTracker {
    /// When the sender started failing (a try-another-sender failure, or not bound), until
    /// the carrier answers again.
    down_since: Option<i64>,
    /// Why it is failing.
    down_reason: Option<String>,
    /// When the carrier started answering "slow down" without taking anything since.
    throttled_since: Option<i64>,
    last_success_at: Option<i64>,
    /// Submits the carrier took, and failures of the sender's own making, since the last beat.
    taken: u64,
    failed: u64,
    /// When the counters were last reset.
    counting_since: i64,
}

impl HealthTracker {
    pub fn new(now: i64) -> Self {
        HealthTracker {
            counting_since: now,
            ..HealthTracker::default()
        }
    }

    /// Count what became of one submit at `now`.
    pub fn record(&mut self, sent: &Sent, now: i64) {
        match sent {
            Sent::Accepted { .. } => {
                self.taken += 1;
                self.throttled_since = None;
                self.up(now);
            }
            // The carrier answered: it is up, whatever it thought of the message.
            Sent::Failed {
                failure: DispatchFailure::NeverResend { .. },
                ..
            } => {
                self.throttled_since = None;
                self.up(now);
            }
            Sent::Failed {
                failure: DispatchFailure::SlowDown,
                ..
            } => {
                self.throttled_since.get_or_insert(now);
                self.up(now);
            }
            Sent::Failed {
                failure: DispatchFailure::TryAnotherSender,
                detail,
            } => {
                self.failed += 1;
                self.down(detail, now);
            }
            // No answer in time: says nothing sure about the carrier.
            Sent::Failed {
                failure: DispatchFailure::Ambiguous,
                ..
            } => {}
        }
    }

    /// The sender cannot take anything at `now` (not bound), for `reason`.
    pub fn down(&mut self, reason: &str, now: i64) {
        if self.down_since.is_none() {
            self.down_since = Some(now);
        }
        self.down_reason = Some(reason.to_string());
    }

    /// The carrier answered (or a probe reached it) at `now`.
    pub fn up(&mut self, now: i64) {
        self.down_since = None;
        self.down_reason = None;
        self.last_success_at = Some(now);
    }

    /// Whether it has been failing at least `after_ms` at `now`: a message it cannot take goes
    /// to another sender instead of waiting.
    pub fn fail_over(&self, now: i64, after_ms: i64) -> bool {
        self.down_since
            .is_some_and(|since| now.saturating_sub(since) >= after_ms)
    }

    /// Whether it has been throttling, taking nothing, for at least `after_ms` at `now`: a
    /// message it throttles goes to another sender instead of waiting.
    pub fn throttled_too_long(&self, now: i64, after_ms: i64) -> bool {
        self.throttled_since
            .is_some_and(|since| now.saturating_sub(since) >= after_ms)
    }

    /// Since when it has been throttling, if it is.
    pub fn throttled_since(&self) -> Option<i64> {
        self.throttled_since
    }

    /// Whether it is failing at all.
    pub fn is_down(&self) -> bool {
        self.down_since.is_some()
    }

    /// The heartbeat at `now` (and the counters start again). `bound`: the connection is up;
    /// healthy means bound and not failing for `after_ms` or more.
    pub fn beat(&mut self, beat: Beat<'_>, now: i64) -> SenderHealth {
        let seconds = (now.saturating_sub(self.counting_since)).max(1) as f64 / 1000.0;
        let attempts = self.taken + self.failed;
        let error_rate = if attempts == 0 {
            0.0
        } else {
            self.failed as f64 / attempts as f64
        };
        let failing = self.fail_over(now, beat.fail_over_after_ms);
        let throttled = self.throttled_too_long(now, beat.throttled_failover_after_ms);
        let healthy = beat.bound && !failing && !throttled;
        let reason = if !beat.bound {
            Some(
                self.down_reason
                    .clone()
                    .unwrap_or_else(|| "not bound".into()),
            )
        } else if failing {
            self.down_reason.clone()
        } else if throttled {
            self.throttled_since
                .map(|since| format!("throttling for {} s", now.saturating_sub(since) / 1000))
        } else {
            None
        };
        let health = SenderHealth {
            sender: beat.sender.to_string(),
            healthy,
            able: beat.in_flight < beat.window,
            reason,
            in_flight: i32::try_from(beat.in_flight).unwrap_or(i32::MAX),
            heartbeat_at: now,
            instance: beat.instance.to_string(),
            bound: beat.bound,
            window: i32::try_from(beat.window).unwrap_or(i32::MAX),
            error_rate,
            throughput: self.taken as f64 / seconds,
            last_success_at: self.last_success_at,
        };
        self.taken = 0;
        self.failed = 0;
        self.counting_since = now;
        health
    }
}

/// What a heartbeat needs besides the tracker.
#[derive(Debug, Clone, Copy)]
pub struct Beat<'a> {
    pub sender: &'a str,
    pub instance: &'a str,
    pub bound: bool,
    pub in_flight: usize,
    pub window: usize,
    pub fail_over_after_ms: i64,
    pub throttled_failover_after_ms: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn beat(bound: bool) -> Beat<'static> {
        Beat {
            sender: "kt-1",
            instance: "i1",
            bound,
            in_flight: 2,
            window: 10,
            fail_over_after_ms: 3_000,
            throttled_failover_after_ms: 30_000,
        }
    }

    #[test]
    fn throttling_without_taking_anything_for_too_long_fails_over_and_a_take_ends_it() {
        let mut t = HealthTracker::new(0);
        let throttled = || Sent::failed(DispatchFailure::SlowDown, "429");
        t.record(&throttled(), 1_000);
        t.record(&throttled(), 20_000);
        assert!(!t.is_down(), "throttling is an answer, not an outage");
        assert!(!t.throttled_too_long(30_999, 30_000));
        assert!(
            t.throttled_too_long(31_000, 30_000),
            "counted from the first"
        );
        let h = t.beat(beat(true), 31_000);
        assert!(!h.healthy);
        assert_eq!(h.reason.as_deref(), Some("throttling for 30 s"));
        t.record(&Sent::accepted("c1"), 31_500);
        assert!(!t.throttled_too_long(90_000, 30_000), "it took one");
        assert!(t.beat(beat(true), 32_000).healthy);
    }

    #[test]
    fn failing_long_enough_fails_over_and_an_answer_ends_it() {
        let mut t = HealthTracker::new(0);
        t.record(
            &Sent::failed(DispatchFailure::TryAnotherSender, "refused"),
            1_000,
        );
        assert!(t.is_down());
        assert!(!t.fail_over(3_999, 3_000), "a blip is waited out");
        t.record(
            &Sent::failed(DispatchFailure::TryAnotherSender, "refused"),
            2_000,
        );
        assert!(t.fail_over(4_000, 3_000), "counted from the first failure");
        t.record(&Sent::failed(DispatchFailure::Ambiguous, "timeout"), 4_100);
        assert!(t.fail_over(4_200, 3_000), "ambiguous says nothing");
        t.record(
            &Sent::failed(DispatchFailure::NeverResend { code: "2001" }, "bad number"),
            4_500,
        );
        assert!(!t.is_down(), "a refusal is an answer");
    }

    #[test]
    fn the_beat_reports_rates_and_health() {
        let mut t = HealthTracker::new(0);
        for i in 0..3 {
            t.record(&Sent::accepted(format!("c{i}")), 100 + i);
        }
        t.record(
            &Sent::failed(DispatchFailure::TryAnotherSender, "503"),
            1_000,
        );
        let h = t.beat(beat(true), 2_000);
        assert!(h.healthy, "failing for less than the failover time");
        assert_eq!((h.error_rate, h.throughput), (0.25, 1.5));
        assert_eq!(h.last_success_at, Some(102));
        assert_eq!((h.in_flight, h.window, h.able), (2, 10, true));
        let h = t.beat(beat(true), 4_000);
        assert!(!h.healthy);
        assert_eq!(h.reason.as_deref(), Some("503"));
        assert_eq!(
            (h.error_rate, h.throughput),
            (0.0, 0.0),
            "counters start again"
        );
        t.up(4_500);
        let h = t.beat(beat(false), 5_000);
        assert!(!h.healthy, "not bound");
        assert_eq!(h.reason.as_deref(), Some("not bound"));
    }
}
