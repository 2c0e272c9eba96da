//! Client settings shared by every consumer and producer: one place that says how switchyard
//! talks to Kafka (idempotent or transactional producers, read_committed consumers, manual
//! commits) and in which namespace its topics live.

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{ConsumerContext, StreamConsumer};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::producer::FutureProducer;
use rdkafka::{ClientContext, Statistics};
use switchyard_topics::Namespace;

use crate::kafka_stats::{KafkaRequests, STATISTICS_INTERVAL_MS, StatsSink};

/// How long a stage consumer's idle fetch may wait for data (decision 0029). The broker answers
/// a waiting `read_committed` fetch as soon as a commit makes records visible (2–5 ms measured
/// at 50, 500 and 5,000 ms), so the wait costs no latency on the path; it costs only where a
/// partition becomes fetchable while a fetch is in flight (a resume, a seek, an assignment):
/// librdkafka sends the next fetch when the one in flight returns. 500 ms: an idle consumer
/// sends 2 fetches a second, not 20.
pub const FETCH_WAIT_MAX_MS: u32 = 500;

/// A reader's fetch wait: readers learn they reached the end of a partition from an empty fetch,
/// so a table is ready this long after its last record.
pub const READER_FETCH_WAIT_MS: u32 = 50;

/// The largest record a producer sends, as librdkafka's default `message.max.bytes` (Kafka's
/// broker default is a little more, 1,048,588).
pub const DEFAULT_MAX_RECORD_BYTES: usize = 1_000_000;

/// How long a transaction may stay open before the broker aborts it. A process killed in the
/// middle of a batch holds back `read_committed` readers of its output partitions until then,
/// so it is short; a batch takes milliseconds.
pub const TRANSACTION_TIMEOUT_MS: u32 = 10_000;

/// Client context of readers: reaching the end of a partition is how they know they caught up,
/// not an error to log. Counts the reader's requests.
#[derive(Debug, Clone)]
pub struct ReaderContext {
    stats: StatsSink,
}

impl ClientContext for ReaderContext {
    fn error(&self, error: KafkaError, reason: &str) {
        if matches!(error, KafkaError::PartitionEOF(_))
            || error.rdkafka_error_code() == Some(RDKafkaErrorCode::PartitionEOF)
        {
            return;
        }
        tracing::error!(%error, reason, "kafka client error");
    }

    fn stats(&self, statistics: Statistics) {
        self.stats.observe(&statistics);
    }
}

impl ConsumerContext for ReaderContext {}

/// Client context of producers and plain group consumers: counts the client's requests.
#[derive(Debug, Clone)]
pub struct Counted {
    stats: StatsSink,
}

impl ClientContext for Counted {
    fn stats(&self, statistics: Statistics) {
        self.stats.observe(&statistics);
    }
}

impl ConsumerContext for Counted {}

/// A producer of switchyard (idempotent or transactional), its requests counted.
pub type Producer = FutureProducer<Counted>;

/// A plain group consumer (see `KafkaSettings::group_consumer`), its requests counted.
pub type GroupConsumer = StreamConsumer<Counted>;

/// A consumer reading whole topics (see `KafkaSettings::reader`).
pub type Reader = StreamConsumer<ReaderContext>;

/// Where the brokers are and any extra librdkafka settings (TLS, SASL, ...).
#[derive(Debug, Clone)]
pub struct KafkaSettings {
    /// Bootstrap servers, e.g. `127.0.0.1:9092`.
    pub brokers: String,
    /// Extra librdkafka properties applied to every client, e.g. `security.protocol=SSL`.
    pub overrides: Vec<(String, String)>,
    /// `fetch.wait.max.ms` of consumers (overrides still win).
    pub fetch_wait_max_ms: u32,
    /// The prefix of every topic, group and transactional id (empty by default).
    pub namespace: Namespace,
    /// The largest record the brokers accept (`message.max.bytes`); producers use the same.
    pub max_record_bytes: usize,
    /// Where every client counts its requests (`switchyard_kafka_requests_total`); the
    /// runtime's metrics registry holds it.
    pub requests: KafkaRequests,
}

impl KafkaSettings {
    /// Settings for the given bootstrap servers and no extra properties.
    pub fn new(brokers: impl Into<String>) -> Self {
        KafkaSettings {
            brokers: brokers.into(),
            overrides: Vec::new(),
            fetch_wait_max_ms: FETCH_WAIT_MAX_MS,
            namespace: Namespace::default(),
            max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
            requests: KafkaRequests::default(),
        }
    }

    /// The same settings in `namespace`.
    pub fn in_namespace(mut self, namespace: Namespace) -> Self {
        self.namespace = namespace;
        self
    }

    /// The name on the broker of a logical topic name.
    pub fn topic(&self, logical: &str) -> String {
        self.namespace.physical(logical)
    }

    /// The same settings with consumers waiting up to `ms` for data.
    pub fn with_fetch_wait(&self, ms: u32) -> Self {
        KafkaSettings {
            fetch_wait_max_ms: ms,
            ..self.clone()
        }
    }

    /// Base client config: bootstrap servers plus overrides.
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.brokers);
        self.with_overrides(config)
    }

    /// What every counted client starts from: the brokers, its purpose as `client.id` (the
    /// broker's logs and quotas see it) and statistics on an interval.
    fn counted_config(&self, purpose: &str) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.brokers)
            .set("client.id", self.namespace.physical(purpose))
            .set("statistics.interval.ms", STATISTICS_INTERVAL_MS.to_string());
        config
    }

    /// The context of a client for `purpose`.
    pub(crate) fn stats_sink(&self, purpose: &str) -> StatsSink {
        StatsSink::new(&self.requests, purpose)
    }

    /// A producer that never reorders or duplicates on retry, acknowledged by all replicas.
    pub fn producer(&self) -> KafkaResult<Producer> {
        self.with_overrides(self.producer_config("producer"))
            .create_with_context(Counted {
                stats: self.stats_sink("producer"),
            })
    }

    /// A transactional producer with `transactional.id` = namespace + `id`; call
    /// `init_transactions` before use (it fences any earlier producer with the same id).
    pub fn transactional_producer(&self, id: &str) -> KafkaResult<Producer> {
        let purpose = format!("transactions.{id}");
        let mut config = self.producer_config(&purpose);
        config
            .set("transactional.id", self.namespace.physical(id))
            .set("transaction.timeout.ms", TRANSACTION_TIMEOUT_MS.to_string())
            // librdkafka requires a record to time out within its transaction.
            .set("message.timeout.ms", TRANSACTION_TIMEOUT_MS.to_string())
            // Right after a commit the coordinator answers CONCURRENT_TRANSACTIONS for a
            // moment; retry that sooner than the default 100 ms (measured with `make bench`).
            .set("retry.backoff.ms", "10")
            .set("retry.backoff.max.ms", "100");
        self.with_overrides(config).create_with_context(Counted {
            stats: self.stats_sink(&purpose),
        })
    }

    fn producer_config(&self, purpose: &str) -> ClientConfig {
        let mut config = self.counted_config(purpose);
        config
            .set("enable.idempotence", "true")
            .set("acks", "all")
            // Fewer, larger produce requests; measured with `make bench`.
            .set("linger.ms", "5")
            .set("message.timeout.ms", "120000")
            .set("message.max.bytes", self.max_record_bytes.to_string());
        config
    }

    /// `config` with the operator's overrides on top (they win over switchyard's defaults).
    fn with_overrides(&self, mut config: ClientConfig) -> ClientConfig {
        for (key, value) in &self.overrides {
            config.set(key, value);
        }
        config
    }

    /// A group consumer that commits only when told to (after outputs are acknowledged).
    pub fn group_consumer(&self, group_id: &str) -> KafkaResult<GroupConsumer> {
        self.group_consumer_config(group_id)
            .create_with_context(Counted {
                stats: self.stats_sink(group_id),
            })
    }

    /// The settings of group consumers: namespaced group id, read_committed, manual commits.
    pub(crate) fn group_consumer_config(&self, group_id: &str) -> ClientConfig {
        let mut config = self.counted_config(group_id);
        config
            .set("group.id", self.namespace.physical(group_id))
            .set("isolation.level", "read_committed")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("fetch.wait.max.ms", self.fetch_wait_max_ms.to_string())
            .set("session.timeout.ms", "6000")
            .set("heartbeat.interval.ms", "1000");
        self.with_overrides(config)
    }

    /// A consumer outside any group, for reading whole topics (tables, tools). It reports
    /// `KafkaError::PartitionEOF` each time it reaches the end of a partition: that, not the
    /// high watermark, is how readers know they caught up (some Kafka-protocol brokers report
    /// a watermark that ignores all but the first record of the last batch).
    pub fn reader(&self, name: &str) -> KafkaResult<Reader> {
        let purpose = format!("reader.{name}");
        let mut config = self.counted_config(&purpose);
        config
            .set(
                "group.id",
                self.namespace
                    .physical(&format!("switchyard.reader.{name}")),
            )
            .set("isolation.level", "read_committed")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "true")
            // The end of a partition is learnt from an empty fetch: a reader waits no longer.
            .set(
                "fetch.wait.max.ms",
                self.fetch_wait_max_ms.min(READER_FETCH_WAIT_MS).to_string(),
            )
            .set("auto.offset.reset", "earliest");
        self.with_overrides(config)
            .create_with_context(ReaderContext {
                stats: self.stats_sink(&purpose),
            })
    }
}

/// The partitions of the physical `topic` (blocking: asks the brokers); a topic the brokers do
/// not have is an error.
pub(crate) fn partitions_of<C: ConsumerContext>(
    consumer: &impl rdkafka::consumer::Consumer<C>,
    topic: &str,
) -> Result<std::collections::HashSet<i32>, crate::RuntimeError> {
    let metadata = consumer.fetch_metadata(Some(topic), std::time::Duration::from_secs(10))?;
    let partitions: std::collections::HashSet<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic && t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    if partitions.is_empty() {
        return Err(crate::RuntimeError::MissingTopic(topic.to_string()));
    }
    Ok(partitions)
}

/// Assign every partition of the physical `topic` to `reader` from the beginning; returns the
/// partitions.
pub fn read_from_beginning(
    reader: &Reader,
    topic: &str,
) -> Result<std::collections::HashSet<i32>, crate::RuntimeError> {
    use rdkafka::consumer::Consumer;
    use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

    let partitions = partitions_of(reader, topic)?;
    let mut assignment = TopicPartitionList::new();
    for &partition in &partitions {
        assignment.add_partition_offset(topic, partition, Offset::Beginning)?;
    }
    reader.assign(&assignment)?;
    Ok(partitions)
}
