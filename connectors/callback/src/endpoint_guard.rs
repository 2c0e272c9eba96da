//! Isolation between customers' webhook endpoints: at most `limit` calls in flight per endpoint
//! (scheme, host, port), and a circuit breaker that opens after `trip_after` timeouts in a row
//! and lets one probe through after `cooldown`. A call refused by either is not made: the
//! report goes to its next retry tier at once, so a slow endpoint never holds capacity that
//! other customers' webhooks need. No I/O; time is passed in.

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
}

impl Default for GuardSettings {
    fn default() -> Self {
        GuardSettings {
            limit: 16,
            trip_after: 3,
            cooldown: Duration::from_secs(30),
        }
    }
}

/// Whether a call may go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    Go,
    /// `limit` calls are already in flight.
    Busy,
    /// The circuit is open until this time (ms).
    Open {
        until: i64,
    },
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
    in_flight: usize,
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
        if let Some(until) = state.open_until {
            if now < until || state.probing {
                return Admission::Open { until };
            }
            // Half open: this call is the probe.
            state.probing = true;
        }
        if state.in_flight >= limit {
            return Admission::Busy;
        }
        state.in_flight += 1;
        Admission::Go
    }

    /// A call admitted by `admit` ended at `now`.
    pub fn end(&mut self, endpoint: &str, end: CallEnd, now: i64) {
        let settings = self.settings;
        let Some(state) = self.endpoints.get_mut(endpoint) else {
            return;
        };
        state.in_flight = state.in_flight.saturating_sub(1);
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
        if state.in_flight == 0 && state.open_until.is_none() && state.timeouts_in_a_row == 0 {
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
        })
    }

    #[test]
    fn at_most_limit_calls_per_endpoint_are_in_flight() {
        let mut g = guard();
        assert_eq!(g.admit("a", 0), Admission::Go);
        assert_eq!(g.admit("a", 0), Admission::Go);
        assert_eq!(g.admit("a", 0), Admission::Busy);
        assert_eq!(
            g.admit("b", 0),
            Admission::Go,
            "another endpoint is not held"
        );
        g.end("a", CallEnd::Answered, 1);
        assert_eq!(g.admit("a", 1), Admission::Go);
    }

    #[test]
    fn timeouts_in_a_row_open_the_circuit_then_one_probe_goes() {
        let mut g = guard();
        for _ in 0..2 {
            assert_eq!(g.admit("a", 0), Admission::Go);
            g.end("a", CallEnd::TimedOut, 10);
        }
        assert_eq!(g.admit("a", 500), Admission::Open { until: 1_010 });
        // After the cooldown one probe goes; the others wait for its outcome.
        assert_eq!(g.admit("a", 1_010), Admission::Go);
        assert_eq!(g.admit("a", 1_011), Admission::Open { until: 1_010 });
        g.end("a", CallEnd::TimedOut, 2_000);
        assert_eq!(g.admit("a", 2_500), Admission::Open { until: 3_000 });
        // A probe that gets an answer closes it.
        assert_eq!(g.admit("a", 3_000), Admission::Go);
        g.end("a", CallEnd::Answered, 3_001);
        assert_eq!(g.admit("a", 3_002), Admission::Go);
        assert_eq!(g.admit("a", 3_002), Admission::Go);
    }

    #[test]
    fn fast_failures_do_not_open_the_circuit_and_idle_endpoints_are_forgotten() {
        let mut g = guard();
        for _ in 0..5 {
            assert_eq!(g.admit("a", 0), Admission::Go);
            g.end("a", CallEnd::Failed, 0);
        }
        assert_eq!(g.admit("a", 0), Admission::Go);
        g.end("a", CallEnd::Answered, 0);
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
