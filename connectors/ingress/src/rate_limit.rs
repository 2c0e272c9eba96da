//! A client's `rate_limit_per_second`: a token bucket per API client, holding at most one
//! second of messages, refilled continuously. A request takes one token per message; when they
//! are not there it is refused (429) with the time until they will be. No I/O; time is passed
//! in. The buckets live in the ingress process: a restart starts them full, and each ingress
//! instance allows the client's full rate (run one, or divide the limit by the instances).

use std::collections::HashMap;
use std::sync::Mutex;

/// One client's bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Bucket {
    tokens: f64,
    at: i64,
}

/// What a request gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Allowed; `remaining` whole messages are left in this second.
    Allowed { remaining: u32 },
    /// Refused; enough tokens will be there in `retry_after_ms`.
    Limited { retry_after_ms: i64 },
    /// More messages than the limit allows in any one second: send fewer per request.
    TooMany,
}

/// Take `cost` tokens from `bucket` (limit `per_second`) at `now` (ms).
fn take(bucket: &mut Bucket, per_second: u32, cost: u32, now: i64) -> Verdict {
    let capacity = f64::from(per_second.max(1));
    if cost as f64 > capacity {
        return Verdict::TooMany;
    }
    let elapsed = (now - bucket.at).max(0) as f64 / 1000.0;
    bucket.tokens = (bucket.tokens + elapsed * capacity).min(capacity);
    bucket.at = now;
    let cost = f64::from(cost);
    if bucket.tokens >= cost {
        bucket.tokens -= cost;
        Verdict::Allowed {
            remaining: bucket.tokens.floor() as u32,
        }
    } else {
        let missing = cost - bucket.tokens;
        Verdict::Limited {
            retry_after_ms: (missing / capacity * 1000.0).ceil() as i64,
        }
    }
}

/// The buckets of every client of one ingress.
#[derive(Debug, Default)]
pub struct RateLimits {
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimits {
    /// Charge `cost` messages to `client_id` limited to `per_second`, at `now` (ms).
    pub fn charge(&self, client_id: &str, per_second: u32, cost: u32, now: i64) -> Verdict {
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let bucket = buckets.entry(client_id.to_string()).or_insert(Bucket {
            tokens: f64::from(per_second.max(1)),
            at: now,
        });
        take(bucket, per_second, cost, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_second_passes_then_the_rest_waits_for_the_refill() {
        let limits = RateLimits::default();
        assert_eq!(
            limits.charge("c", 10, 6, 0),
            Verdict::Allowed { remaining: 4 }
        );
        assert_eq!(
            limits.charge("c", 10, 4, 0),
            Verdict::Allowed { remaining: 0 }
        );
        // 3 more need 300 ms of refill at 10/s.
        assert_eq!(
            limits.charge("c", 10, 3, 0),
            Verdict::Limited {
                retry_after_ms: 300
            }
        );
        assert_eq!(
            limits.charge("c", 10, 3, 300),
            Verdict::Allowed { remaining: 0 }
        );
        // Another client has its own bucket.
        assert_eq!(
            limits.charge("d", 10, 10, 300),
            Verdict::Allowed { remaining: 0 }
        );
    }

    #[test]
    fn the_bucket_never_holds_more_than_one_second_and_oversized_requests_are_refused() {
        let limits = RateLimits::default();
        assert_eq!(
            limits.charge("c", 5, 5, 0),
            Verdict::Allowed { remaining: 0 }
        );
        // A long pause refills to 5, not more.
        assert_eq!(
            limits.charge("c", 5, 5, 60_000),
            Verdict::Allowed { remaining: 0 }
        );
        assert_eq!(limits.charge("c", 5, 6, 120_000), Verdict::TooMany);
    }
}
