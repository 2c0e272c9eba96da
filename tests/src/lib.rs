//! Test harness: a real Tansu broker per test on a free port, an in-process schema registry,
//! and helpers to produce and read topics. No Kafka stand-ins.

pub mod pipeline;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::OwnedMessage;
use rdkafka::producer::FutureRecord;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use switchyard_runtime::{CancellationToken, KafkaSettings, Metrics, Reader, Runtime};
use switchyard_topics::{ApplyOptions, Catalog, Cleanup, TopicSpec};

/// The Tansu binary: `$TANSU_BIN`, else the versioned install of `make setup`, else `tansu`.
pub fn tansu_bin() -> PathBuf {
    if let Ok(path) = std::env::var("TANSU_BIN") {
        return PathBuf::from(path);
    }
    let home = std::env::var("HOME").unwrap_or_default();
    let installed = PathBuf::from(home).join(".cache/switchyard/tansu-0.6.0/bin/tansu");
    if installed.exists() {
        installed
    } else {
        PathBuf::from("tansu")
    }
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A broker process, killed when dropped.
#[derive(Debug)]
pub struct Broker {
    child: Child,
    pub port: u16,
    engine: String,
    data: Option<tempfile::TempDir>,
}

impl Broker {
    /// A broker with memory storage (fast; lost on exit).
    pub fn start() -> anyhow::Result<Self> {
        Self::launch("memory://tansu/", None)
    }

    /// A broker with durable sqlite storage in a temporary directory.
    pub fn start_sqlite() -> anyhow::Result<Self> {
        // Tansu resolves the sqlite path against its working directory (even an absolute one),
        // so it runs in the data directory with a relative path.
        Self::launch("sqlite://broker.db", Some(tempfile::tempdir()?))
    }

    fn launch(engine: &str, data: Option<tempfile::TempDir>) -> anyhow::Result<Self> {
        let port = free_port();
        let child = Self::spawn(engine, data.as_ref(), port)?;
        let broker = Broker {
            child,
            port,
            engine: engine.to_string(),
            data,
        };
        wait_for_port(port, Duration::from_secs(20))?;
        Ok(broker)
    }

    /// Stop the broker process and start it again on the same port and storage.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = Self::spawn(&self.engine, self.data.as_ref(), self.port)?;
        wait_for_port(self.port, Duration::from_secs(20))
    }

    fn spawn(engine: &str, data: Option<&tempfile::TempDir>, port: u16) -> anyhow::Result<Child> {
        let url = format!("tcp://127.0.0.1:{port}");
        let mut command = Command::new(tansu_bin());
        if let Some(dir) = data {
            command.current_dir(dir.path());
        }
        command
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
                "--storage-engine",
                engine,
            ])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {} (run `make setup`)", tansu_bin().display()))
    }

    /// Bootstrap servers.
    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Kafka settings for this broker.
    pub fn kafka(&self) -> KafkaSettings {
        KafkaSettings::new(self.brokers())
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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

/// Create every catalog topic plus `extra` plain topics (3 partitions, delete).
pub async fn apply_topics(broker: &Broker, extra: &[&str]) -> anyhow::Result<()> {
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
        &specs,
        &ApplyOptions {
            brokers: broker.brokers(),
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
    /// Start a registry on a free port against the broker (its topics must exist).
    pub async fn start(broker: &Broker) -> anyhow::Result<Self> {
        let shutdown = CancellationToken::new();
        let (addr, task) = switchyard_schema_registry::serve(
            &broker.kafka(),
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

/// Broker + topics + registry + runtime: what most tests need.
#[derive(Debug)]
pub struct Stack {
    // Fields drop in order: clients first, the broker last.
    pub runtime: Runtime,
    pub registry: TestRegistry,
    pub broker: Broker,
}

impl Stack {
    /// Start a memory broker, apply the catalog and `extra` topics, start a registry.
    pub async fn start(extra: &[&str]) -> anyhow::Result<Self> {
        Self::on(Broker::start()?, extra).await
    }

    /// The same on a broker already started.
    pub async fn on(broker: Broker, extra: &[&str]) -> anyhow::Result<Self> {
        apply_topics(&broker, extra).await?;
        let registry = TestRegistry::start(&broker).await?;
        let runtime = Runtime::new(broker.kafka(), &registry.url())?;
        Ok(Stack {
            broker,
            registry,
            runtime,
        })
    }
}

/// Produce raw bytes and wait for the acknowledgement.
pub async fn produce_raw(
    runtime: &Runtime,
    topic: &str,
    key: &str,
    payload: &[u8],
) -> anyhow::Result<()> {
    let producer = runtime.producer()?;
    producer
        .send(
            FutureRecord::to(topic).key(key).payload(payload),
            Duration::from_secs(10),
        )
        .await
        .map_err(|(e, _)| e)?;
    Ok(())
}

/// Read `topic` from the beginning until `count` records arrived or `timeout` passed.
pub async fn read_topic(
    kafka: &KafkaSettings,
    topic: &str,
    count: usize,
    timeout: Duration,
) -> anyhow::Result<Vec<OwnedMessage>> {
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

/// Read everything `topic` holds now: every partition to its end (end-of-partition events,
/// not watermarks, which Tansu reports per batch).
pub async fn read_all(kafka: &KafkaSettings, topic: &str) -> anyhow::Result<Vec<OwnedMessage>> {
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

/// Committed offsets of a consumer group on a topic, summed over partitions.
pub fn committed_total(kafka: &KafkaSettings, group: &str, topic: &str) -> anyhow::Result<i64> {
    let consumer: StreamConsumer = kafka.group_consumer(group)?;
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
