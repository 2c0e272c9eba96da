//! Isolation between customers' webhook endpoints: at most `limit` calls in flight per endpoint
//! (scheme, host, port), and a circuit breaker that opens after `trip_after` timeouts in a row
//! and lets one probe through after `cooldown`. A call to a full endpoint waits for a free slot
//! while the endpoint keeps answering; once its oldest call in flight is older than `slow_after`
//! and no call has ended for that long either (it is stuck, not just busy), or its circuit is
//! open, the call is not made: the report goes to its next retry tier at once, so a stuck
//! endpoint never holds capacity that other customers' webhooks need.
//! No I/O; time is passed in.

use std::collections::HashMap;
use std::time::Duration;

/// The guard's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuardSettings {
    /// Calls in flight per endpoint.
    pub limit: usize,
    /// Timeouts in a row that open the circuit.
    pub trip_after: u32,
    /// How long an open circuit refuses calls before one probe.
    pub cooldown: Duration,
    /// A full endpoint whose oldest call in flight is older than this, and that has not ended
    /// a call for this long, is stuck: calls to it are deferred instead of waiting.
    pub slow_after: Duration,
}

impl Default for GuardSettings {
    fn default() -> Self {
        GuardSettings {
            limit: 16,
            trip_after: 3,
            cooldown: Duration::from_secs(30),
            slow_after: Duration::from_millis(250),
        }
    }
}

/// Whether a call may go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// Go; pass `started` to `end`.
    Go { started: i64 },
    /// `limit` calls are in flight but the endpoint keeps answering: ask again shortly.
    Wait,
    /// `limit` calls are in flight, the oldest is older than `slow_after`, and none ended for
    /// that long: defer.
    Busy,
    /// The circuit is open until this time (ms).
    Open { until: i64 },
}

/// How a call that went ended, as far as the guard cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallEnd {
    /// The endpoint answered (any status): it is alive.
    Answered,
    /// No answer within the timeout.
    TimedOut,
    /// Refused or reset at once: cheap, so not counted against the endpoint.
    Failed,
}

#[derive(Debug, Default)]
struct Endpoint {
    /// When each call in flight started (ms).
    in_flight: Vec<i64>,
    /// When a call last ended (ms).
    last_end: Option<i64>,
    timeouts_in_a_row: u32,
    open_until: Option<i64>,
    probing: bool,
}

/// The state of every endpoint.
#[derive(Debug, Default)]
pub struct EndpointGuard {
    settings: GuardSettings,
    endpoints: HashMap<String, Endpoint>,
}

impl EndpointGuard {
    pub fn new(settings: GuardSettings) -> Self {
        EndpointGuard {
            settings,
            endpoints: HashMap::new(),
        }
    }

    /// May a call to `endpoint` go at `now`? `Go` counts it in flight until `end`.
    pub fn admit(&mut self, endpoint: &str, now: i64) -> Admission {
        let limit = self.settings.limit;
        let state = self.endpoints.entry(endpoint.to_string()).or_default();
        let half_open = match state.open_until {
            Some(until) if now < until || state.probing => return Admission::Open { until },
            Some(_) => true,
            None => false,
        };
        if state.in_flight.len() >= limit {
            let slow_after = self.settings.slow_after.as_millis() as i64;
            let oldest = state.in_flight.iter().min().copied().unwrap_or(now);
            let stuck =
                now - oldest > slow_after && state.last_end.is_none_or(|at| now - at > slow_after);
            return if stuck {
                Admission::Busy
            } else {
                Admission::Wait
            };
        }
        // Half open: this call is the probe.
        state.probing = half_open;
        state.in_flight.push(now);
        Admission::Go { started: now }
    }

    /// A call admitted by `admit` (at `started`) ended at `now`.
    pub fn end(&mut self, endpoint: &str, started: i64, end: CallEnd, now: i64) {
        let settings = self.settings;
        let Some(state) = self.endpoints.get_mut(endpoint) else {
            return;
        };
        if let Some(i) = state.in_flight.iter().position(|&t| t == started) {
            state.in_flight.swap_remove(i);
        }
        state.last_end = Some(now);
        match end {
            CallEnd::Answered => {
                state.timeouts_in_a_row = 0;
                state.open_until = None;
                state.probing = false;
            }
            CallEnd::TimedOut => {
                state.timeouts_in_a_row += 1;
                if state.probing || state.timeouts_in_a_row >= settings.trip_after {
                    state.open_until = Some(now + settings.cooldown.as_millis() as i64);
                    state.probing = false;
                }
            }
            CallEnd::Failed => {
                if state.probing {
                    state.open_until = Some(now + settings.cooldown.as_millis() as i64);
                    state.probing = false;
                }
            }
        }
        if state.in_flight.is_empty() && state.open_until.is_none() && state.timeouts_in_a_row == 0
        {
            self.endpoints.remove(endpoint);
        }
    }

    /// Endpoints with state (bounded by the endpoints in use or recently failing).
    pub fn tracked(&self) -> usize {
        self.endpoints.len()
    }
}

/// The endpoint of a URL: scheme, host and port.
pub fn endpoint_of(url: &reqwest::Url) -> String {
    format!(
        "{}://{}:{}",
        url.scheme(),
        url.host_str().unwrap_or_default(),
        url.port_or_known_default().unwrap_or(0)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard() -> EndpointGuard {
        EndpointGuard::new(GuardSettings {
            limit: 2,
            trip_after: 2,
            cooldown: Duration::from_millis(1_000),
            slow_after: Duration::from_millis(100),
        })
    }

    fn go(g: &mut EndpointGuard, endpoint: &str, now: i64) -> i64 {
        match g.admit(endpoint, now) {
            Admission::Go { started } => started,
            other => panic!("{endpoint} at {now}: {other:?}"),
        }
    }

    #[test]
    fn a_full_endpoint_makes_calls_wait_while_quick_and_defers_them_once_slow() {
        let mut g = guard();
        let first = go(&mut g, "a", 0);
        go(&mut g, "a", 10);
        assert_eq!(
            g.admit("a", 50),
            Admission::Wait,
            "full, but calls are young"
        );
        assert_eq!(
            g.admit("a", 101),
            Admission::Busy,
            "the oldest call is slow"
        );
        go(&mut g, "b", 101);
        g.end("a", first, CallEnd::Answered, 102);
        go(&mut g, "a", 102);
    }

    #[test]
    fn timeouts_in_a_row_open_the_circuit_then_one_probe_goes() {
        let mut g = guard();
        for _ in 0..2 {
            let started = go(&mut g, "a", 0);
            g.end("a", started, CallEnd::TimedOut, 10);
        }
        assert_eq!(g.admit("a", 500), Admission::Open { until: 1_010 });
        // After the cooldown one probe goes; the others wait for its outcome.
        let probe = go(&mut g, "a", 1_010);
        assert_eq!(g.admit("a", 1_011), Admission::Open { until: 1_010 });
        g.end("a", probe, CallEnd::TimedOut, 2_000);
        assert_eq!(g.admit("a", 2_500), Admission::Open { until: 3_000 });
        // A probe that gets an answer closes it.
        let probe = go(&mut g, "a", 3_000);
        g.end("a", probe, CallEnd::Answered, 3_001);
        go(&mut g, "a", 3_002);
        go(&mut g, "a", 3_002);
    }

    #[test]
    fn fast_failures_do_not_open_the_circuit_and_idle_endpoints_are_forgotten() {
        let mut g = guard();
        for _ in 0..5 {
            let started = go(&mut g, "a", 0);
            g.end("a", started, CallEnd::Failed, 0);
        }
        let started = go(&mut g, "a", 0);
        g.end("a", started, CallEnd::Answered, 0);
        assert_eq!(g.tracked(), 0);
    }

    #[test]
    fn endpoints_are_scheme_host_and_port() {
        let url = |s: &str| reqwest::Url::parse(s).expect("url");
        assert_eq!(
            endpoint_of(&url("https://h.example/x?y")),
            "https://h.example:443"
        );
        assert_eq!(
            endpoint_of(&url("http://h.example:8080/")),
            "http://h.example:8080"
        );
    }
}
