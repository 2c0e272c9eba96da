//! Waiting between retries: exponential backoff, cut short by shutdown.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// 200 ms doubling per attempt, at most 6.4 s.
pub fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(100u64.saturating_mul(1 << attempt.clamp(1, 6)))
}

/// Sleep, unless stopped first; true when stopped.
pub async fn sleep_or_stop(duration: Duration, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        _ = shutdown.cancelled() => true,
        _ = tokio::time::sleep(duration) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_then_stops_growing() {
        assert_eq!(backoff(1), Duration::from_millis(200));
        assert_eq!(backoff(2), Duration::from_millis(400));
        assert_eq!(backoff(6), Duration::from_millis(6400));
        assert_eq!(backoff(60), Duration::from_millis(6400));
    }
}
