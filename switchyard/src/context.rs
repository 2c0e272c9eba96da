//! What every subcommand gets: connection settings, metrics and the shutdown token.

use switchyard_runtime::{
    CancellationToken, Health, KafkaSettings, Metrics, Namespace, Processing, Runtime, StuckLimits,
};

use crate::cli::Global;

#[derive(Debug)]
pub struct Context {
    pub kafka: KafkaSettings,
    pub processing: Processing,
    pub stuck: StuckLimits,
    pub commit_interval: std::time::Duration,
    pub instance_id: Option<String>,
    pub schema_registry_url: String,
    pub metrics: Metrics,
    pub health: Health,
    pub metrics_addr: Option<std::net::SocketAddr>,
    pub shutdown: CancellationToken,
}

impl Context {
    pub fn new(global: &Global) -> Self {
        let mut kafka = KafkaSettings::new(&global.brokers)
            .in_namespace(Namespace::new(global.topic_prefix.clone()));
        kafka.overrides = global.kafka_options.clone();
        kafka.max_record_bytes = global.max_record_bytes;
        if let Some(ms) = global.fetch_wait_ms {
            kafka.fetch_wait_max_ms = ms;
        }
        Context {
            kafka,
            processing: global.processing,
            stuck: StuckLimits {
                after: std::time::Duration::from_secs(global.stuck_after_seconds),
                attempts: global.stuck_after_attempts,
            },
            commit_interval: std::time::Duration::from_millis(global.commit_interval_ms),
            instance_id: global.instance_id.clone(),
            schema_registry_url: global.schema_registry_url.clone(),
            metrics: Metrics::new(),
            health: Health::default(),
            metrics_addr: global.metrics_addr,
            shutdown: switchyard_runtime::shutdown::on_signal(),
        }
    }
}

impl Context {
    /// A runtime on these settings, sharing this process's metrics.
    pub fn runtime(&self, registry_url: &str) -> anyhow::Result<Runtime> {
        let mut runtime =
            Runtime::new(self.kafka.clone(), registry_url)?.with_metrics(self.metrics.clone());
        runtime.health = self.health.clone();
        runtime.processing = self.processing;
        runtime.stuck = self.stuck;
        runtime.commit_interval = self.commit_interval;
        if let Some(id) = &self.instance_id {
            runtime.instance_id = id.clone();
        }
        Ok(runtime)
    }
}
