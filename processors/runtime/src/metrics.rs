//! Every metric name of switchyard (`switchyard_<what>_<unit>`) and the registry that holds
//! them. Labels are bounded: a stage name and a topic from the catalog.

use std::sync::{Arc, RwLock};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
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
    /// Records of a table topic that could not be decoded (left in place, skipped).
    pub const TABLE_UNDECODABLE_RECORDS: &str = "switchyard_table_undecodable_records";
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
        Metrics {
            registry: Arc::new(RwLock::new(registry)),
            consumed,
            produced,
            dead_lettered,
            batch_retries,
            processing_latency,
            table_undecodable,
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
