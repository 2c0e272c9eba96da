//! Every metric name of switchyard (`switchyard_<what>_<unit>`) and the registry that holds
//! them. Labels are bounded: a stage name and a topic from the catalog, a sender from the
//! senders table, an outcome from a fixed set.

use std::sync::{Arc, RwLock};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Metric names, without the `_total` suffix Prometheus adds to counters.
pub mod names {
    /// Records a stage read from a topic.
    pub const RECORDS_CONSUMED: &str = "switchyard_records_consumed";
    /// Records a stage produced to a topic (acknowledged by the broker).
    pub const RECORDS_PRODUCED: &str = "switchyard_records_produced";
    /// Records a stage sent to a dead-letter topic.
    pub const RECORDS_DEAD_LETTERED: &str = "switchyard_records_dead_lettered";
    /// Time from receiving a record to every output of it being acknowledged.
    pub const PROCESSING_LATENCY_SECONDS: &str = "switchyard_processing_latency_seconds";
    /// Batches whose outputs could not all be produced and were processed again.
    pub const BATCH_RETRIES: &str = "switchyard_batch_retries";
    /// 1 while a stage has failed the same work past its stuck limits (`/healthz` says why).
    pub const STAGE_STUCK: &str = "switchyard_stage_stuck";
    /// Times a stage became stuck.
    pub const STAGE_STUCK_EPISODES: &str = "switchyard_stage_stuck_episodes";
    /// Inputs whose outputs the broker can never take (too large, invalid): dead-lettered with
    /// the reason, their message ended by the stage's own report where it has one.
    pub const RECORDS_UNPRODUCIBLE: &str = "switchyard_records_unproducible";
    /// Records of a table topic that could not be decoded (left in place, skipped).
    pub const TABLE_UNDECODABLE_RECORDS: &str = "switchyard_table_undecodable_records";
    /// Submits of a sender by what became of them (`taken`, `try_another_sender`, `slow_down`,
    /// `never_resend`, `ambiguous`, `failed_over`): throughput and error rate by `rate()`.
    pub const SENDER_SUBMITS: &str = "switchyard_sender_submits";
    /// 1 while this instance's dispatcher says its sender is healthy (what route reads), else 0.
    pub const SENDER_HEALTHY: &str = "switchyard_sender_healthy";
    /// Submits of a sender in flight in this instance.
    pub const SENDER_IN_FLIGHT_SUBMITS: &str = "switchyard_sender_in_flight_submits";
    /// Messages waiting in `sender.<name>` that its dispatchers have not consumed.
    pub const SENDER_BACKLOG_MESSAGES: &str = "switchyard_sender_backlog_messages";
    /// Requests the process's Kafka clients sent, by client purpose and API (librdkafka's
    /// statistics, every 5 s).
    pub const KAFKA_REQUESTS: &str = "switchyard_kafka_requests";
    /// Kafka clients open, by purpose.
    pub const KAFKA_CLIENTS: &str = "switchyard_kafka_clients";
}

/// Labels: the stage and one topic.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StageTopic {
    pub stage: String,
    pub topic: String,
}

/// Labels: the stage only.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StageLabel {
    pub stage: String,
}

/// Labels: a sender (operators' config: as bounded as the senders table).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SenderLabel {
    pub sender: String,
}

/// Labels: a sender and what became of a submit (a fixed set of outcomes).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SenderOutcome {
    pub sender: String,
    pub outcome: String,
}

/// Labels: the topic only.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TopicLabel {
    pub topic: String,
}

/// The process's metrics. Cheap to clone; all clones share one registry.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Arc<RwLock<Registry>>,
    pub consumed: Family<StageTopic, Counter>,
    pub produced: Family<StageTopic, Counter>,
    pub dead_lettered: Family<StageTopic, Counter>,
    pub batch_retries: Family<StageLabel, Counter>,
    pub processing_latency: Family<StageLabel, Histogram>,
    pub table_undecodable: Family<TopicLabel, Counter>,
    pub stage_stuck: Family<StageLabel, Gauge>,
    pub stage_stuck_episodes: Family<StageLabel, Counter>,
    pub unproducible: Family<StageTopic, Counter>,
    pub sender_submits: Family<SenderOutcome, Counter>,
    pub sender_healthy: Family<SenderLabel, Gauge>,
    pub sender_in_flight: Family<SenderLabel, Gauge>,
    pub sender_backlog: Family<SenderLabel, Gauge>,
    /// Kafka requests and clients (`KafkaSettings::requests` of the runtime's clients).
    pub kafka: crate::kafka_stats::KafkaRequests,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with the runtime's metrics registered.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let consumed = Family::<StageTopic, Counter>::default();
        let produced = Family::<StageTopic, Counter>::default();
        let dead_lettered = Family::<StageTopic, Counter>::default();
        let batch_retries = Family::<StageLabel, Counter>::default();
        let processing_latency = Family::<StageLabel, Histogram>::new_with_constructor(
            (|| Histogram::new(exponential_buckets(0.0005, 2.0, 16))) as fn() -> Histogram,
        );
        let table_undecodable = Family::<TopicLabel, Counter>::default();
        let stage_stuck = Family::<StageLabel, Gauge>::default();
        let stage_stuck_episodes = Family::<StageLabel, Counter>::default();
        let unproducible = Family::<StageTopic, Counter>::default();
        registry.register(
            names::STAGE_STUCK,
            "1 while a stage has failed the same work past its stuck limits",
            stage_stuck.clone(),
        );
        registry.register(
            names::STAGE_STUCK_EPISODES,
            "Times a stage became stuck",
            stage_stuck_episodes.clone(),
        );
        registry.register(
            names::RECORDS_UNPRODUCIBLE,
            "Inputs whose outputs the broker can never take, dead-lettered",
            unproducible.clone(),
        );
        let sender_submits = Family::<SenderOutcome, Counter>::default();
        let sender_healthy = Family::<SenderLabel, Gauge>::default();
        let sender_in_flight = Family::<SenderLabel, Gauge>::default();
        let sender_backlog = Family::<SenderLabel, Gauge>::default();
        registry.register(
            names::SENDER_SUBMITS,
            "Submits of a sender by outcome",
            sender_submits.clone(),
        );
        registry.register(
            names::SENDER_HEALTHY,
            "1 while this instance says the sender is healthy",
            sender_healthy.clone(),
        );
        registry.register(
            names::SENDER_IN_FLIGHT_SUBMITS,
            "Submits of a sender in flight in this instance",
            sender_in_flight.clone(),
        );
        registry.register(
            names::SENDER_BACKLOG_MESSAGES,
            "Messages waiting in sender.<name> not yet consumed by its dispatchers",
            sender_backlog.clone(),
        );
        registry.register(
            names::RECORDS_CONSUMED,
            "Records a stage read",
            consumed.clone(),
        );
        registry.register(
            names::RECORDS_PRODUCED,
            "Records a stage produced, acknowledged by the broker",
            produced.clone(),
        );
        registry.register(
            names::RECORDS_DEAD_LETTERED,
            "Records a stage sent to a dead-letter topic",
            dead_lettered.clone(),
        );
        registry.register(
            names::BATCH_RETRIES,
            "Batches processed again after a failed produce",
            batch_retries.clone(),
        );
        registry.register(
            names::PROCESSING_LATENCY_SECONDS,
            "Seconds from receiving a record to its outputs being acknowledged",
            processing_latency.clone(),
        );
        registry.register(
            names::TABLE_UNDECODABLE_RECORDS,
            "Table records that could not be decoded and were skipped",
            table_undecodable.clone(),
        );
        let kafka = crate::kafka_stats::KafkaRequests::default();
        registry.register(
            names::KAFKA_REQUESTS,
            "Requests the Kafka clients sent, by client purpose and API",
            kafka.requests.clone(),
        );
        registry.register(
            names::KAFKA_CLIENTS,
            "Kafka clients open, by purpose",
            kafka.clients.clone(),
        );
        Metrics {
            registry: Arc::new(RwLock::new(registry)),
            kafka,
            consumed,
            produced,
            dead_lettered,
            batch_retries,
            processing_latency,
            table_undecodable,
            stage_stuck,
            stage_stuck_episodes,
            unproducible,
            sender_submits,
            sender_healthy,
            sender_in_flight,
            sender_backlog,
        }
    }

    /// Register a further metric (connectors add their own).
    pub fn register(
        &self,
        name: &str,
        help: &str,
        metric: impl prometheus_client::registry::Metric,
    ) {
        self.registry
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .register(name, help, metric);
    }

    /// The OpenMetrics text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        let registry = self
            .registry
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &registry) {
            tracing::error!(error = %e, "cannot encode metrics");
        }
        text
    }
}
