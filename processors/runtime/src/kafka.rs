//! Client settings shared by every consumer and producer: one place that says how switchyard
//! talks to Kafka (at-least-once, idempotent producer, manual commits).

use rdkafka::config::ClientConfig;
use rdkafka::consumer::StreamConsumer;
use rdkafka::error::KafkaResult;
use rdkafka::producer::FutureProducer;

/// Where the brokers are and any extra librdkafka settings (TLS, SASL, ...).
#[derive(Debug, Clone)]
pub struct KafkaSettings {
    /// Bootstrap servers, e.g. `127.0.0.1:9092`.
    pub brokers: String,
    /// Extra librdkafka properties applied to every client, e.g. `security.protocol=SSL`.
    pub overrides: Vec<(String, String)>,
}

impl KafkaSettings {
    /// Settings for the given bootstrap servers and no extra properties.
    pub fn new(brokers: impl Into<String>) -> Self {
        KafkaSettings {
            brokers: brokers.into(),
            overrides: Vec::new(),
        }
    }

    /// Base client config: bootstrap servers plus overrides.
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.brokers);
        for (key, value) in &self.overrides {
            config.set(key, value);
        }
        config
    }

    /// A producer that never reorders or duplicates on retry, acknowledged by all replicas.
    pub fn producer(&self) -> KafkaResult<FutureProducer> {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.brokers)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "5")
            .set("message.timeout.ms", "120000");
        for (key, value) in &self.overrides {
            config.set(key, value);
        }
        config.create()
    }

    /// A group consumer that commits only when told to (after outputs are acknowledged).
    pub fn group_consumer(&self, group_id: &str) -> KafkaResult<StreamConsumer> {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.brokers)
            .set("group.id", group_id)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", "6000")
            .set("heartbeat.interval.ms", "1000");
        for (key, value) in &self.overrides {
            config.set(key, value);
        }
        config.create()
    }

    /// A consumer outside any group, for reading whole topics (tables, tools). It reports
    /// `KafkaError::PartitionEOF` each time it reaches the end of a partition: that, not the
    /// high watermark, is how readers know they caught up (some Kafka-protocol brokers report
    /// a watermark that ignores all but the first record of the last batch).
    pub fn reader(&self, name: &str) -> KafkaResult<StreamConsumer> {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.brokers)
            .set("group.id", format!("switchyard.reader.{name}"))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "true")
            .set("auto.offset.reset", "earliest");
        for (key, value) in &self.overrides {
            config.set(key, value);
        }
        config.create()
    }
}
