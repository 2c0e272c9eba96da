//! What every subcommand gets: connection settings, metrics and the shutdown token.

use switchyard_runtime::{CancellationToken, KafkaSettings, Metrics};

use crate::cli::Global;

#[derive(Debug)]
pub struct Context {
    pub kafka: KafkaSettings,
    pub metrics: Metrics,
    pub shutdown: CancellationToken,
}

impl Context {
    pub fn new(global: &Global) -> Self {
        let mut kafka = KafkaSettings::new(&global.brokers);
        kafka.overrides = global.kafka_options.clone();
        Context {
            kafka,
            metrics: Metrics::new(),
            shutdown: switchyard_runtime::shutdown::on_signal(),
        }
    }
}
