//! Test harness on real Apache Kafka: one broker per test run (`SWITCHYARD_TEST_BROKERS`, set
//! by `make test`) or else per test binary, each test in its own namespace (topic, group and
//! transactional-id prefix); tests that kill or restart the broker get their own. Plus an
//! in-process schema registry and helpers to produce and read topics. No Kafka stand-ins.

pub mod bench_callbacks;
pub mod bench_carrier;
pub mod bench_kafka_stats;
pub mod bench_proc;
pub mod bench_raw;
pub mod bench_stages;
pub mod bench_webhooks;
pub mod history_scenarios;
pub mod pipeline;
pub mod processes;
pub mod senders;
pub mod smsc_process;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rdkafka::consumer::Consumer;
use rdkafka::message::OwnedMessage;
use rdkafka::producer::FutureRecord;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use switchyard_runtime::{CancellationToken, KafkaSettings, Metrics, Namespace, Reader, Runtime};
use switchyard_topics::{ApplyOptions, Catalog, Cleanup, TopicSpec};

/// Environment variable naming a running broker every test of the run shares.
pub const SHARED_BROKERS_ENV: &str = "SWITCHYARD_TEST_BROKERS";

/// Environment variable naming the CQL server (`host:port`) every test of the run shares: a
/// local Apache Cassandra 5.0 standing in for ScyllaDB, started by `make test`.
pub const SHARED_CQL_ENV: &str = "SWITCHYARD_TEST_CQL";

/// Set to `1` to run without a CQL server: `make test` starts none and CQL tests skip.
pub const SKIP_CQL_ENV: &str = "SWITCHYARD_SKIP_CQL";

/// The CQL server of this run (`$SWITCHYARD_TEST_CQL`); `Ok(None)` when it is unset and
/// `SWITCHYARD_SKIP_CQL=1` says to skip; an error when it is unset otherwise.
pub fn shared_cql() -> anyhow::Result<Option<String>> {
    if let Ok(node) = std::env::var(SHARED_CQL_ENV) {
        return Ok(Some(node));
    }
    if std::env::var(SKIP_CQL_ENV).as_deref() == Ok("1") {
        return Ok(None);
    }
    bail!(
        "{SHARED_CQL_ENV} is not set: run `make test` (it starts Cassandra), or start one with \
         `infra/cassandra.sh start` and set {SHARED_CQL_ENV}=127.0.0.1:9042, or set \
         {SKIP_CQL_ENV}=1 to skip the CQL tests"
    )
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// An Apache Kafka process of this test (`infra/kafka.sh` in a temporary directory), killed
/// when dropped and when the test process dies.
#[derive(Debug)]
pub struct Broker {
    pub port: u16,
    controller_port: u16,
    data: tempfile::TempDir,
}

impl Broker {
    /// Start a broker of this test's own, with its log in a temporary directory.
    pub fn start() -> anyhow::Result<Self> {
        let broker = Broker {
            port: free_port(),
            controller_port: free_port(),
            data: tempfile::tempdir()?,
        };
        broker.script("start")?;
        Ok(broker)
    }

    fn script(&self, action: &str) -> anyhow::Result<()> {
        let output = Command::new(repo_root().join("infra/kafka.sh"))
            .arg(action)
            .env("DATA_DIR", self.data.path())
            .env("BROKER_PORT", self.port.to_string())
            .env("CONTROLLER_PORT", self.controller_port.to_string())
            .env("WATCH_PID", std::process::id().to_string())
            .output()
            .context("running infra/kafka.sh (run `make setup`)")?;
        if !output.status.success() {
            bail!(
                "infra/kafka.sh {action} failed: {}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(())
    }

    /// The broker's pid.
    pub fn pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.data.path().join("kafka.pid"))
            .ok()
            .and_then(|p| p.trim().parse().ok())
    }

    /// Kill the broker with SIGKILL (a crash: nothing flushed, nothing closed).
    pub fn kill9(&self) -> anyhow::Result<()> {
        if let Some(pid) = self.pid() {
            Command::new("kill")
                .args(["-9", &pid.to_string()])
                .stderr(std::process::Stdio::null())
                .status()?;
            let deadline = Instant::now() + Duration::from_secs(10);
            while TcpStream::connect(("127.0.0.1", self.port)).is_ok() && Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Ok(())
    }

    /// Start the broker again on the same ports and log after `kill9` or `stop`.
    pub fn start_again(&self) -> anyhow::Result<()> {
        self.script("start")
    }

    /// Kill -9 and start again on the same ports and log.
    pub fn restart(&self) -> anyhow::Result<()> {
        self.kill9()?;
        self.start_again()
    }

    /// Bootstrap servers.
    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// A fresh namespace on this broker.
    pub fn env(&self) -> TestEnv {
        TestEnv::on(self.brokers())
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(pid) = self.pid() {
            let _ = Command::new("kill")
                .args(["-9", &pid.to_string()])
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}

/// The broker this test binary shares: `$SWITCHYARD_TEST_BROKERS`, else one started on first
/// use (stopped by its watchdog when the test process ends).
pub fn shared_brokers() -> anyhow::Result<String> {
    static SHARED: OnceLock<Result<String, String>> = OnceLock::new();
    SHARED
        .get_or_init(|| {
            if let Ok(brokers) = std::env::var(SHARED_BROKERS_ENV) {
                return Ok(brokers);
            }
            match Broker::start() {
                Ok(broker) => {
                    let brokers = broker.brokers();
                    // Lives for the whole test binary; its watchdog stops it afterwards.
                    std::mem::forget(broker);
                    Ok(brokers)
                }
                Err(e) => Err(format!("{e:#}")),
            }
        })
        .clone()
        .map_err(|e| anyhow::anyhow!("no shared broker: {e}"))
}

/// One test's isolated environment on a broker: its own namespace, so its topics, groups and
/// transactional ids are its own.
#[derive(Debug, Clone)]
pub struct TestEnv {
    brokers: String,
    pub namespace: Namespace,
}

impl TestEnv {
    /// A fresh namespace on the shared broker.
    pub fn new() -> anyhow::Result<Self> {
        Ok(Self::on(shared_brokers()?))
    }

    /// A fresh namespace on `brokers`.
    pub fn on(brokers: String) -> Self {
        let id = uuid::Uuid::new_v4().simple().to_string();
        TestEnv {
            brokers,
            namespace: Namespace::new(format!("t{}.", &id[..12])),
        }
    }

    /// Bootstrap servers.
    pub fn brokers(&self) -> String {
        self.brokers.clone()
    }

    /// Kafka settings in this namespace.
    pub fn kafka(&self) -> KafkaSettings {
        KafkaSettings::new(self.brokers()).in_namespace(self.namespace.clone())
    }

    /// The physical name of a logical topic.
    pub fn topic(&self, logical: &str) -> String {
        self.namespace.physical(logical)
    }
}

/// Wait until something accepts connections on the port.
pub fn wait_for_port(port: u16, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("nothing listens on port {port} after {timeout:?}")
}

/// Create every catalog topic plus `extra` plain topics (3 partitions, delete), in the
/// environment's namespace.
pub async fn apply_topics(env: &TestEnv, extra: &[&str]) -> anyhow::Result<()> {
    let mut specs = Catalog::builtin()?.topics(&[]);
    specs.extend(extra.iter().map(|name| TopicSpec {
        name: name.to_string(),
        partitions: 3,
        cleanup: Cleanup::Delete,
        retention_ms: Some(86_400_000),
        key: "test".into(),
        record: "test".into(),
    }));
    switchyard_topics::apply(
        &Catalog::in_namespace(specs, &env.namespace),
        &ApplyOptions {
            brokers: env.brokers(),
            replication_factor: 1,
        },
    )
    .await?;
    Ok(())
}

/// A schema registry served in-process; stops when dropped or `stop`ped.
#[derive(Debug)]
pub struct TestRegistry {
    pub addr: SocketAddr,
    shutdown: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestRegistry {
    /// Start a registry on a free port in the environment (its topics must exist).
    pub async fn start(env: &TestEnv) -> anyhow::Result<Self> {
        let shutdown = CancellationToken::new();
        let (addr, task) = switchyard_schema_registry::serve(
            &env.kafka(),
            "127.0.0.1:0".parse()?,
            Metrics::new(),
            shutdown.clone(),
        )
        .await?;
        Ok(TestRegistry {
            addr,
            shutdown,
            task: Some(task),
        })
    }

    /// Base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stop serving and wait for the server to end.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Namespace + topics + registry + runtime: what most tests need.
#[derive(Debug)]
pub struct Stack {
    pub runtime: Runtime,
    pub registry: TestRegistry,
    pub env: TestEnv,
}

impl Stack {
    /// A fresh namespace on the shared broker with the catalog and `extra` topics, a registry.
    pub async fn start(extra: &[&str]) -> anyhow::Result<Self> {
        Self::on(TestEnv::new()?, extra).await
    }

    /// The same in the environment given.
    pub async fn on(env: TestEnv, extra: &[&str]) -> anyhow::Result<Self> {
        apply_topics(&env, extra).await?;
        let registry = TestRegistry::start(&env).await?;
        let runtime = Runtime::new(env.kafka(), &registry.url())?;
        Ok(Stack {
            env,
            registry,
            runtime,
        })
    }
}

/// Produce raw bytes to a logical topic and wait for the acknowledgement.
pub async fn produce_raw(
    runtime: &Runtime,
    topic: &str,
    key: &str,
    payload: &[u8],
) -> anyhow::Result<()> {
    let producer = runtime.producer()?;
    let topic = runtime.kafka.topic(topic);
    producer
        .send(
            FutureRecord::to(&topic).key(key).payload(payload),
            Duration::from_secs(10),
        )
        .await
        .map_err(|(e, _)| e)?;
    Ok(())
}

/// Read the logical `topic` (read_committed) from the beginning until `count` records arrived
/// or `timeout` passed.
pub async fn read_topic(
    kafka: &KafkaSettings,
    topic: &str,
    count: usize,
    timeout: Duration,
) -> anyhow::Result<Vec<OwnedMessage>> {
    let topic = &kafka.topic(topic);
    let consumer: Reader = kafka.reader(&format!("test.{}", uuid::Uuid::new_v4()))?;
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let mut assignment = TopicPartitionList::new();
    for t in metadata.topics().iter().filter(|t| t.name() == topic) {
        for p in t.partitions() {
            assignment.add_partition_offset(topic, p.id(), Offset::Beginning)?;
        }
    }
    consumer.assign(&assignment)?;
    let mut messages = Vec::new();
    let deadline = tokio::time::Instant::now() + timeout;
    while messages.len() < count {
        match tokio::time::timeout_at(deadline, consumer.recv()).await {
            Ok(Ok(message)) => messages.push(message.detach()),
            Ok(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => {}
            Ok(Err(e)) => bail!("reading {topic}: {e}"),
            Err(_) => break,
        }
    }
    Ok(messages)
}

/// Read everything the logical `topic` holds now (read_committed): every partition to its end.
pub async fn read_all(kafka: &KafkaSettings, topic: &str) -> anyhow::Result<Vec<OwnedMessage>> {
    let topic = &kafka.topic(topic);
    let consumer: Reader = kafka.reader(&format!("test.{}", uuid::Uuid::new_v4()))?;
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let mut assignment = TopicPartitionList::new();
    let mut not_at_end = std::collections::HashSet::new();
    for t in metadata.topics().iter().filter(|t| t.name() == topic) {
        for p in t.partitions() {
            assignment.add_partition_offset(topic, p.id(), Offset::Beginning)?;
            not_at_end.insert(p.id());
        }
    }
    anyhow::ensure!(!not_at_end.is_empty(), "topic {topic} does not exist");
    consumer.assign(&assignment)?;
    let mut messages = Vec::new();
    while !not_at_end.is_empty() {
        match tokio::time::timeout(Duration::from_secs(20), consumer.recv()).await {
            Ok(Ok(message)) => messages.push(message.detach()),
            Ok(Err(rdkafka::error::KafkaError::PartitionEOF(p))) => {
                not_at_end.remove(&p);
            }
            Ok(Err(e)) => bail!("reading {topic}: {e}"),
            Err(_) => bail!(
                "{topic}: no end of partition after {} records",
                messages.len()
            ),
        }
    }
    Ok(messages)
}

/// Every value of the logical `topic` (read_committed) decoded as `T`; tombstones skipped.
pub async fn read_values<T: switchyard_schemas::Record>(
    runtime: &Runtime,
    topic: &str,
) -> anyhow::Result<Vec<T>> {
    use rdkafka::Message;
    let mut out = Vec::new();
    for message in read_all(&runtime.kafka, topic).await? {
        if let Some(payload) = message.payload() {
            out.push(runtime.codec.decode::<T>(payload).await?);
        }
    }
    Ok(out)
}

/// Committed offsets of a consumer group on a logical topic, summed over partitions.
pub fn committed_total(kafka: &KafkaSettings, group: &str, topic: &str) -> anyhow::Result<i64> {
    let topic = &kafka.topic(topic);
    let consumer = kafka.group_consumer(group)?;
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let mut list = TopicPartitionList::new();
    for t in metadata.topics().iter().filter(|t| t.name() == topic) {
        for p in t.partitions() {
            list.add_partition(topic, p.id());
        }
    }
    let committed = consumer.committed_offsets(list, Duration::from_secs(10))?;
    Ok(committed
        .elements()
        .iter()
        .map(|e| match e.offset() {
            Offset::Offset(o) => o,
            _ => 0,
        })
        .sum())
}

/// Log to the test output when `RUST_LOG` is set.
pub fn init_logging() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// Where the repository is (for scripts and the Python client).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}

/// A valid SMS submission for tests: `customer`'s message to an SKT number.
pub fn sample_submission(
    message_id: Option<&str>,
    customer: &str,
    text: &str,
) -> switchyard_schemas::Submission {
    switchyard_schemas::Submission {
        message_id: message_id.map(str::to_string),
        customer_id: customer.into(),
        client_id: None,
        client_message_id: None,
        channel: switchyard_schemas::Channel::Sms,
        to: "01012345678".into(),
        from: None,
        text: text.into(),
        subject: None,
        bill_code: None,
        priority: Default::default(),
        template_code: None,
        fallback: None,
        attachments: vec![],
        expires_at: None,
        metadata: Default::default(),
        accepted_at: switchyard_schemas::now_millis(),
    }
}
