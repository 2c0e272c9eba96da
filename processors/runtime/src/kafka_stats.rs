//! Kafka requests by client and API, from librdkafka's statistics: how many requests each of
//! the process's clients sent (`switchyard_kafka_requests_total{client,api}`), so a benchmark
//! can say what a message costs the broker, and which client spends it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use rdkafka::Statistics;

/// How often every client reports its statistics (`statistics.interval.ms`).
pub const STATISTICS_INTERVAL_MS: u32 = 5_000;

/// Labels: what a client is for (`stage.validate`, `producer`, `reader.config.senders`, …) and
/// a Kafka API (`Fetch`, `Produce`, `EndTxn`, …; librdkafka's names).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClientApi {
    pub client: String,
    pub api: String,
}

/// Labels: what a client is for.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClientLabel {
    pub client: String,
}

/// A client instance (librdkafka's name), a broker and an API.
type SeenKey = (String, String, String);

/// The requests every client of a process sent, by API, and how many clients are open. Cheap
/// to clone; clones share the counts.
#[derive(Debug, Clone, Default)]
pub struct KafkaRequests {
    /// Requests sent, by client purpose and API.
    pub requests: Family<ClientApi, Counter>,
    /// Clients open, by purpose (each is a handful of librdkafka threads and connections).
    pub clients: Family<ClientLabel, Gauge>,
    /// The last totals seen, by librdkafka instance name, broker and API: statistics are
    /// cumulative per client, the counter takes the difference.
    seen: Arc<Mutex<HashMap<SeenKey, i64>>>,
}

impl KafkaRequests {
    /// Count what `statistics` of the client for `purpose` add to what it reported before.
    pub fn observe(&self, purpose: &str, statistics: &Statistics) {
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (broker, stats) in &statistics.brokers {
            for (api, &total) in &stats.req {
                let key = (statistics.name.clone(), broker.clone(), api.clone());
                let before = seen.insert(key, total).unwrap_or(0);
                let added = total.saturating_sub(before);
                if added > 0 {
                    self.requests
                        .get_or_create(&ClientApi {
                            client: purpose.to_string(),
                            api: api.clone(),
                        })
                        .inc_by(added.unsigned_abs());
                }
            }
        }
    }

    /// A client for `purpose` was opened; the returned guard counts it closed when dropped.
    pub fn opened(&self, purpose: &str) -> OpenClient {
        let label = ClientLabel {
            client: purpose.to_string(),
        };
        self.clients.get_or_create(&label).inc();
        OpenClient {
            clients: self.clients.clone(),
            label,
        }
    }
}

/// One open client in `switchyard_kafka_clients`; dropping it counts the client closed.
#[derive(Debug)]
pub struct OpenClient {
    clients: Family<ClientLabel, Gauge>,
    label: ClientLabel,
}

impl Drop for OpenClient {
    fn drop(&mut self) {
        self.clients.get_or_create(&self.label).dec();
    }
}

/// What a client context keeps to report its statistics: the shared counts and its purpose.
#[derive(Debug, Clone)]
pub struct StatsSink {
    requests: KafkaRequests,
    purpose: Arc<str>,
    _open: Arc<OpenClient>,
}

impl StatsSink {
    /// The sink of a client for `purpose`, counted open until its context is dropped.
    pub fn new(requests: &KafkaRequests, purpose: &str) -> Self {
        StatsSink {
            requests: requests.clone(),
            purpose: purpose.into(),
            _open: Arc::new(requests.opened(purpose)),
        }
    }

    /// Count a statistics report of the client.
    pub fn observe(&self, statistics: &Statistics) {
        self.requests.observe(&self.purpose, statistics);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statistics(name: &str, broker: &str, requests: &[(&str, i64)]) -> Statistics {
        let req: Vec<String> = requests
            .iter()
            .map(|(api, n)| format!("\"{api}\": {n}"))
            .collect();
        let zeros = |fields: &str| -> String {
            fields
                .split(' ')
                .map(|f| format!("\"{f}\": 0"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let client = zeros(
            "ts time age replyq msg_cnt msg_size msg_max msg_size_max simple_cnt \
             metadata_cache_cnt tx tx_bytes rx rx_bytes txmsgs txmsg_bytes rxmsgs rxmsg_bytes",
        );
        let broker_zeros = zeros(
            "nodeid stateage outbuf_cnt outbuf_msg_cnt waitresp_cnt waitresp_msg_cnt tx \
             txbytes txerrs txretries txidle req_timeouts rx rxbytes rxerrs rxcorriderrs \
             rxpartial rxidle zbuf_grow buf_grow wakeups connects disconnects",
        );
        let json = format!(
            r#"{{"name": "{name}", "client_id": "c", "type": "consumer", {client},
                "brokers": {{"{broker}": {{"name": "{broker}", "nodename": "{broker}",
                    "source": "configured", "state": "UP", {broker_zeros},
                    "req": {{{}}}, "toppars": {{}}}}}},
                "topics": {{}}}}"#,
            req.join(", ")
        );
        serde_json::from_str(&json).expect("statistics fixture")
    }

    fn count(requests: &KafkaRequests, client: &str, api: &str) -> u64 {
        requests
            .requests
            .get_or_create(&ClientApi {
                client: client.into(),
                api: api.into(),
            })
            .get()
    }

    #[test]
    fn cumulative_reports_are_counted_once_per_client_and_broker() {
        let requests = KafkaRequests::default();
        requests.observe("stage.validate", &statistics("a", "b1", &[("Fetch", 10)]));
        requests.observe("stage.validate", &statistics("a", "b1", &[("Fetch", 25)]));
        // A second client for the same purpose adds its own.
        requests.observe("stage.validate", &statistics("b", "b1", &[("Fetch", 5)]));
        // The same client on another broker is another total.
        requests.observe(
            "stage.validate",
            &statistics("a", "b2", &[("Fetch", 3), ("Heartbeat", 2)]),
        );
        assert_eq!(count(&requests, "stage.validate", "Fetch"), 25 + 5 + 3);
        assert_eq!(count(&requests, "stage.validate", "Heartbeat"), 2);
    }

    #[test]
    fn a_client_counts_open_until_its_last_context_is_dropped() {
        let requests = KafkaRequests::default();
        let label = ClientLabel {
            client: "producer".into(),
        };
        let sink = StatsSink::new(&requests, "producer");
        let copy = sink.clone();
        assert_eq!(requests.clients.get_or_create(&label).get(), 1);
        drop(sink);
        assert_eq!(requests.clients.get_or_create(&label).get(), 1);
        drop(copy);
        assert_eq!(requests.clients.get_or_create(&label).get(), 0);
    }
}
