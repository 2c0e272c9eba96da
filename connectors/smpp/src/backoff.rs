//! Reconnect delays (pure): exponential from `min` to `max`, with jitter so a fleet of
//! senders does not reconnect in step. The randomness is passed in.

use std::time::Duration;

/// Exponential backoff state.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    failures: u32,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration) -> Self {
        Backoff {
            min,
            max: max.max(min),
            failures: 0,
        }
    }

    /// The delay before the next attempt; `jitter` in [0, 1) picks a point in the upper half
    /// of the current step (full-step delays at most, half at least).
    pub fn next(&mut self, jitter: f64) -> Duration {
        let step = self
            .min
            .saturating_mul(1u32 << self.failures.min(20))
            .min(self.max);
        self.failures = self.failures.saturating_add(1);
        step.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
    }

    /// A bind succeeded.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

/// A small xorshift generator for jitter (no cryptographic use).
#[derive(Debug, Clone)]
pub struct Jitter(u64);

impl Jitter {
    pub fn seeded(seed: u64) -> Self {
        Jitter(seed | 1)
    }

    /// A number in [0, 1).
    pub fn sample(&mut self) -> f64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        (x >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_max_with_jitter_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(1000));
        let first = b.next(0.999);
        assert!(first > Duration::from_millis(99) && first < Duration::from_millis(100));
        assert_eq!(b.next(0.0), Duration::from_millis(100));
        assert_eq!(b.next(0.0), Duration::from_millis(200));
        assert_eq!(b.next(0.0), Duration::from_millis(400));
        for _ in 0..40 {
            assert!(b.next(0.5) <= Duration::from_millis(1000));
        }
        assert_eq!(b.next(0.0), Duration::from_millis(500));
        b.reset();
        assert_eq!(b.next(0.0), Duration::from_millis(50));
    }

    #[test]
    fn jitter_stays_in_range() {
        let mut j = Jitter::seeded(42);
        for _ in 0..1000 {
            let x = j.sample();
            assert!((0.0..1.0).contains(&x));
        }
    }
}
