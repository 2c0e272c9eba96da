//! The processor runtime every switchyard stage runs on: consume a batch, decode (Avro, via
//! the registry), process with a plain function, produce, commit only after every output is
//! acknowledged. Plus tables over compacted topics, dead letters, metrics and shutdown.

mod config_tables;
pub mod dead_letter;
mod error;
mod follow;
mod kafka;
mod key_set;
pub mod metrics;
mod metrics_server;
mod processor;
mod runner;
pub mod shutdown;
mod table;

use std::sync::Arc;

pub use config_tables::{ConfigTables, numbering_key, route_key};
pub use error::RuntimeError;
pub use follow::follow;
pub use kafka::{KafkaSettings, Reader, ReaderContext, read_from_beginning};
pub use key_set::KeySet;
pub use metrics::Metrics;
pub use metrics_server::{OPENMETRICS_CONTENT_TYPE, metrics_router, serve_http, serve_metrics};
pub use processor::{AsyncProcessor, Invalid, Origin, Output, Processor, StageError};
pub use runner::{RunnerOptions, run};
pub use switchyard_schemas::Codec;
use switchyard_topics::Catalog;
pub use table::{Table, TableKey};
pub use tokio_util::sync::CancellationToken;

/// What every stage of one process shares: broker settings, the codec, metrics, the catalog
/// and one producer. Cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    pub kafka: KafkaSettings,
    pub codec: Codec,
    pub metrics: Metrics,
    pub catalog: Arc<Catalog>,
    producer: Arc<std::sync::OnceLock<rdkafka::producer::FutureProducer>>,
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
    pub fn new(kafka: KafkaSettings, registry_url: &str) -> Result<Self, RuntimeError> {
        Ok(Runtime {
            kafka,
            codec: Codec::new(registry_url)?,
            metrics: Metrics::new(),
            catalog: Arc::new(Catalog::builtin()?),
            producer: Arc::new(std::sync::OnceLock::new()),
        })
    }

    /// The process's producer (created on first use, shared by every stage).
    pub fn producer(&self) -> Result<rdkafka::producer::FutureProducer, RuntimeError> {
        if let Some(producer) = self.producer.get() {
            return Ok(producer.clone());
        }
        let producer = self.kafka.producer()?;
        Ok(self.producer.get_or_init(|| producer).clone())
    }
}
