//! The time validate judges by: the system clock in production, a clock a test sets.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use switchyard_schemas::now_millis;

/// Where "now" (ms since the epoch) comes from. Cheap to clone.
#[derive(Clone, Default)]
pub struct Clock(Option<Arc<AtomicI64>>);

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Clock(None)
    }

    /// Now, in ms since the epoch.
    pub fn now(&self) -> i64 {
        match &self.0 {
            None => now_millis(),
            Some(fixed) => fixed.load(Ordering::SeqCst),
        }
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            None => f.write_str("Clock::system"),
            Some(fixed) => write!(f, "Clock::manual({})", fixed.load(Ordering::SeqCst)),
        }
    }
}

/// A clock that stands still at the time it was last set (tests).
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    /// A clock showing `now` (ms since the epoch).
    pub fn new(now: i64) -> Self {
        ManualClock(Arc::new(AtomicI64::new(now)))
    }

    /// Move it to `now`.
    pub fn set(&self, now: i64) {
        self.0.store(now, Ordering::SeqCst);
    }

    /// The [`Clock`] that reads this one.
    pub fn clock(&self) -> Clock {
        Clock(Some(self.0.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_shows_what_it_was_set_to() {
        let manual = ManualClock::new(5);
        let clock = manual.clock();
        assert_eq!(clock.now(), 5);
        manual.set(9);
        assert_eq!(clock.now(), 9);
        assert!(Clock::system().now() > 1_700_000_000_000);
    }
}
