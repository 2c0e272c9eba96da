//! A sender's heartbeat task: every second, the dispatcher's health (bound, window fill,
//! error rate, throughput, last success) to the compacted `state.sender-health`, keyed by
//! sender and dispatch instance, so route can leave out senders that cannot take traffic.
//! While the sender is failing it is probed (a TCP connect to its endpoint) so it comes back
//! without traffic. Each beat also sets the sender's rate for this instance: its `tps` over the
//! instances beating for it (`rate::instance_share`). A clean stop removes this instance's
//! heartbeat (a tombstone): the sender is
//! then as if never heard of, and its queue waits for a dispatcher instead of its traffic
//! failing (a rolling restart loses nothing). The same health,
//! and the backlog every five beats, are this process's `switchyard_sender_*` metrics.

use std::sync::Arc;
use std::time::Duration;

use switchyard_runtime::names::SENDER_HEALTH;
use switchyard_runtime::{CancellationToken, Output, Runtime, Table};
use switchyard_schemas::{SenderConfig, SenderHealth, now_millis};

use switchyard_runtime::metrics::SenderLabel;

use crate::backlog::Backlog;
use crate::dispatcher::Dispatcher;
use crate::health::Beat;

/// How often a dispatcher beats (route calls a sender silent for 5 s unusable).
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(1);
/// How long a new instance of a rate-limited sender waits before its first submit: its first
/// beat goes out after one beat interval and the others recount at their next beat, so three
/// beats leave every other instance time to lower its own share.
const JOIN_WAIT: Duration = Duration::from_secs(3);
/// The backlog gauge is read from the broker every this many beats.
const BACKLOG_EVERY_BEATS: u64 = 5;
/// How long a probe may take to connect.
const PROBE_TIMEOUT: Duration = Duration::from_millis(800);

/// The key of a sender's heartbeats from one instance.
pub fn health_key(sender: &str, instance: &str) -> String {
    format!("{sender}\u{241F}{instance}")
}

/// `host:port` of an endpoint URL (`http://h:p/…`, `smpp://h:p`), with the scheme's port.
pub fn probe_address(endpoint: &str) -> Option<String> {
    let url = url::Url::parse(endpoint).ok()?;
    let host = url.host_str()?;
    let port = url.port_or_known_default().or(match url.scheme() {
        "smpp" => Some(2775),
        _ => None,
    })?;
    Some(format!("{host}:{port}"))
}

/// What a sender's rate per instance is worked out from, read at every beat.
#[derive(Debug, Clone)]
pub struct Rates {
    /// The senders' config (their `tps`, which may change while running).
    pub senders: Table<String, SenderConfig>,
    /// Every dispatcher instance's heartbeats.
    pub beats: Table<String, SenderHealth>,
}

impl Rates {
    /// The rate `instance` may submit at for `sender` at `now` (None: no limit).
    fn share(&self, sender: &str, instance: &str, now: i64) -> Option<f64> {
        let tps = self.senders.get(&sender.to_string()).and_then(|s| s.tps);
        let beats = self.beats.snapshot();
        crate::rate::instance_share(tps, sender, instance, beats.values(), now)
    }
}

/// Beat for `dispatcher` (whose sender's endpoint is `endpoint`) until `shutdown`, keeping its
/// gate at the sender's rate for this instance.
pub async fn run_heartbeat(
    runtime: Runtime,
    dispatcher: Dispatcher,
    endpoint: String,
    rates: Rates,
    shutdown: CancellationToken,
) {
    let mut rate = rates.share(&dispatcher.sender, &runtime.instance_id, now_millis());
    dispatcher.gate.set_rate(rate);
    if let Some(per_second) = rate {
        tracing::info!(stage = "dispatch", sender = %dispatcher.sender, per_second, "sender rate for this instance");
        // The instances already running count this one only once its beats reach them: until
        // then they keep their larger share, so this one waits before taking its own.
        dispatcher.gate.hold_for(JOIN_WAIT);
    }
    let key = health_key(&dispatcher.sender, &runtime.instance_id);
    let probe = probe_address(&endpoint);
    let label = SenderLabel {
        sender: dispatcher.sender.clone(),
    };
    let mut beats: u64 = 0;
    // One broker client for the backlog gauge, made once.
    let backlog = match Backlog::new(&runtime, &dispatcher.sender) {
        Ok(reader) => Some(Arc::new(reader)),
        Err(e) => {
            tracing::warn!(stage = "dispatch", sender = %dispatcher.sender, error = %e, "no backlog gauge");
            None
        }
    };
    loop {
        let share = rates.share(&dispatcher.sender, &runtime.instance_id, now_millis());
        if share != rate {
            tracing::info!(stage = "dispatch", sender = %dispatcher.sender, per_second = share.unwrap_or(0.0), "sender rate for this instance");
            rate = share;
            dispatcher.gate.set_rate(rate);
        }
        let stopping = tokio::select! {
            _ = shutdown.cancelled() => true,
            _ = tokio::time::sleep(HEARTBEAT_EVERY) => false,
        };
        if stopping {
            // Gone, not down: the sender is as if never heard of until a dispatcher beats.
            if let Err(e) = runtime
                .publish("dispatch", &[Output::tombstone(SENDER_HEALTH, key.clone())])
                .await
            {
                tracing::warn!(stage = "dispatch", topic = SENDER_HEALTH, sender = %dispatcher.sender, error = %e, "heartbeat not removed");
            }
            break;
        }
        let bound = dispatcher.carrier.bound();
        let down = dispatcher
            .health
            .lock()
            .map(|t| t.is_down())
            .unwrap_or(false);
        if down
            && bound
            && let Some(address) = &probe
        {
            let reached = tokio::time::timeout(
                PROBE_TIMEOUT,
                tokio::net::TcpStream::connect(address.as_str()),
            )
            .await
            .is_ok_and(|c| c.is_ok());
            if reached && let Ok(mut t) = dispatcher.health.lock() {
                tracing::info!(stage = "dispatch", sender = %dispatcher.sender, %address, "sender reachable again");
                t.up(now_millis());
            }
        }
        let beat = Beat {
            sender: &dispatcher.sender,
            instance: &runtime.instance_id,
            bound,
            in_flight: dispatcher.gate.in_flight(),
            window: dispatcher.carrier.window(),
            fail_over_after_ms: i64::try_from(dispatcher.common.failover_after.as_millis())
                .unwrap_or(i64::MAX),
            throttled_failover_after_ms: i64::try_from(
                dispatcher.common.throttled_failover_after.as_millis(),
            )
            .unwrap_or(i64::MAX),
        };
        let health = match dispatcher.health.lock() {
            Ok(mut t) => t.beat(beat, now_millis()),
            Err(_) => break,
        };
        let metrics = &runtime.metrics;
        metrics
            .sender_healthy
            .get_or_create(&label)
            .set(i64::from(health.healthy));
        metrics
            .sender_in_flight
            .get_or_create(&label)
            .set(i64::from(health.in_flight));
        if beats.is_multiple_of(BACKLOG_EVERY_BEATS)
            && let Some(reader) = backlog.clone()
        {
            match tokio::task::spawn_blocking(move || reader.read()).await {
                Ok(Ok(waiting)) => {
                    metrics.sender_backlog.get_or_create(&label).set(waiting);
                }
                Ok(Err(e)) => {
                    tracing::debug!(stage = "dispatch", sender = %dispatcher.sender, error = %e, "backlog not read");
                }
                Err(_) => {}
            }
        }
        beats += 1;
        if let Err(e) = runtime
            .publish(
                "dispatch",
                &[Output::new(SENDER_HEALTH, key.clone(), health)],
            )
            .await
        {
            tracing::warn!(stage = "dispatch", topic = SENDER_HEALTH, sender = %dispatcher.sender, error = %e, "heartbeat not written");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_addresses_come_from_the_endpoint() {
        assert_eq!(
            probe_address("http://127.0.0.1:7001/submit").as_deref(),
            Some("127.0.0.1:7001")
        );
        assert_eq!(
            probe_address("https://c.example/submit").as_deref(),
            Some("c.example:443")
        );
        assert_eq!(
            probe_address("smpp://10.0.0.1:2776").as_deref(),
            Some("10.0.0.1:2776")
        );
        assert_eq!(
            probe_address("smpp://10.0.0.1").as_deref(),
            Some("10.0.0.1:2775")
        );
        assert_eq!(probe_address("not a url"), None);
    }
}
