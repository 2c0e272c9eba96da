//! The processor runtime every switchyard stage runs on: consume a batch, decode (Avro, via
//! the registry), process with a plain function, produce, commit only after every output is
//! acknowledged. Plus tables over compacted topics, dead letters, metrics and shutdown.

mod atomic_pool;
mod batch;
mod config_tables;
pub mod dead_letter;
pub mod delay_gate;
mod error;
mod error_log;
mod exactly_once;
mod follow;
mod followers;
pub mod group_upgrade;
mod health;
mod input;
mod kafka;
pub mod kafka_stats;
mod key_set;
mod lanes;
pub mod metrics;
mod metrics_server;
mod permanent;
mod poison;
mod processing;
mod processor;
mod publish;
pub mod retry;
mod runner;
pub mod shutdown;
mod stage_consumer;
pub mod state;
mod stuck;
mod table;
mod transaction;
mod unordered;
pub mod watermark;

use std::sync::Arc;

pub use config_tables::{ConfigTables, bill_code_key, national_number, numbering_key, route_key};
pub use error::RuntimeError;
pub use exactly_once::DEFAULT_COMMIT_INTERVAL;
pub use follow::follow;
pub use group_upgrade::{CarryError, OldGroup, carry_offsets};
pub use health::{Health, HealthReport, RoleState, StuckLimits, StuckReport, health_router};
pub use input::StageInput;
pub use kafka::{
    Counted, DEFAULT_MAX_RECORD_BYTES, GroupConsumer, KafkaSettings, Producer, Reader,
    ReaderContext, read_from_beginning,
};
pub use key_set::KeySet;
pub use metrics::Metrics;
pub use metrics_server::{OPENMETRICS_CONTENT_TYPE, metrics_router, serve_http, serve_metrics};
pub use permanent::{ProduceFailureClass, RECORD_OVERHEAD_BYTES, is_permanent, record_bytes};
pub use processing::Processing;
pub use processor::{AsyncProcessor, Invalid, Origin, Output, Processor, StageError};
pub use publish::{PublishError, Written};
pub use runner::{RunnerOptions, run};
pub use stage_consumer::{RebalanceCounter, StageConsumer, StageContext};
pub use state::{PartitionState, StateAccess, StateStore};
pub use switchyard_schemas::Codec;
use switchyard_topics::Catalog;
pub use switchyard_topics::{Namespace, names};
pub use table::{Table, TableKey};
pub use tokio_util::sync::CancellationToken;
pub use unordered::run_unordered;

/// What every stage of one process shares: broker settings (with the namespace), the codec,
/// metrics, the catalog, the processing guarantee and one idempotent producer. Cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    pub kafka: KafkaSettings,
    pub codec: Codec,
    pub metrics: Metrics,
    pub catalog: Arc<Catalog>,
    /// The guarantee of topic-to-topic stages.
    pub processing: Processing,
    /// This process among the instances of its stages: part of each transactional id. Give a
    /// restarted instance its old id (`--instance-id`) to fence its unfinished transactions at
    /// once; a fresh one waits out the transaction timeout instead.
    pub instance_id: String,
    /// The health of this process's roles (served at `/healthz` on the metrics address).
    pub health: Health,
    /// When a stage failing the same work counts as stuck (`--stuck-after-seconds`,
    /// `--stuck-after-attempts`).
    pub stuck: StuckLimits,
    /// How long an exactly-once stage's transaction gathers batches before it commits
    /// (`--commit-interval-ms`; decision 0027).
    pub commit_interval: std::time::Duration,
    atomic: Arc<atomic_pool::AtomicPool>,
    producer: Arc<std::sync::OnceLock<Producer>>,
    /// The one reader every table and key set of the process follows its topic with.
    followers: Arc<followers::Followers>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("kafka", &self.kafka)
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// A runtime for the brokers and registry given, with the built-in topic catalog.
    /// Every Kafka client the runtime opens counts its requests in its metrics.
    pub fn new(mut kafka: KafkaSettings, registry_url: &str) -> Result<Self, RuntimeError> {
        let metrics = Metrics::new();
        kafka.requests = metrics.kafka.clone();
        Ok(Runtime {
            kafka,
            codec: Codec::new(registry_url)?,
            metrics,
            catalog: Arc::new(Catalog::builtin()?),
            processing: Processing::default(),
            instance_id: uuid::Uuid::new_v4().simple().to_string(),
            health: Health::default(),
            stuck: StuckLimits::default(),
            commit_interval: exactly_once::DEFAULT_COMMIT_INTERVAL,
            atomic: Arc::default(),
            producer: Arc::new(std::sync::OnceLock::new()),
            followers: Arc::default(),
        })
    }

    /// The same runtime counting into `metrics` (a registry the process shares), its Kafka
    /// clients' requests included.
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.kafka.requests = metrics.kafka.clone();
        self.metrics = metrics;
        self
    }

    /// The process's producer (created on first use, shared by every stage).
    pub fn producer(&self) -> Result<Producer, RuntimeError> {
        if let Some(producer) = self.producer.get() {
            return Ok(producer.clone());
        }
        let producer = self.kafka.producer()?;
        Ok(self.producer.get_or_init(|| producer).clone())
    }

    /// Wait until the brokers answer, retrying with backoff and saying so in the log; `false`
    /// when stopped first.
    pub async fn wait_for_brokers(&self, shutdown: &CancellationToken) -> bool {
        use rdkafka::consumer::Consumer;
        let mut tries = 0;
        loop {
            let kafka = self.kafka.clone();
            let answered = tokio::task::spawn_blocking(move || {
                let consumer: rdkafka::consumer::BaseConsumer = kafka.client_config().create()?;
                consumer
                    .fetch_metadata(None, std::time::Duration::from_secs(5))
                    .map(|_| ())
            })
            .await;
            match answered {
                Ok(Ok(())) => return true,
                Ok(Err(e)) => {
                    tries += 1;
                    tracing::warn!(brokers = %self.kafka.brokers, error = %e, tries, "brokers not reachable; retrying");
                }
                Err(e) => tracing::error!(error = %e, "broker check did not finish"),
            }
            if retry::sleep_or_stop(retry::backoff(tries), shutdown).await {
                return false;
            }
        }
    }
}
