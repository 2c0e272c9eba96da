//! A stage for the runtime's own end-to-end tests: reads Submissions from `messages.accepted`
//! and writes each to two topics; a text of "invalid" is refused. `--delay-ms` slows each record
//! so a test can kill it mid-batch.

use std::sync::Arc;
use std::time::Duration;

use switchyard_runtime::{
    Invalid, KafkaSettings, Namespace, Origin, Output, Processor, RunnerOptions, Runtime,
    StageError,
};
use switchyard_schemas::Submission;

struct Echo {
    delay: Duration,
}

impl Processor for Echo {
    type Input = Submission;

    fn process(&self, input: Submission, _origin: Origin<'_>) -> Result<Vec<Output>, StageError> {
        if input.text == "invalid" {
            return Err(Invalid::new("text is \"invalid\"").into());
        }
        std::thread::sleep(self.delay);
        let key = input.message_id.clone().unwrap_or_default();
        Ok(vec![
            Output::new("fixture.out.a", key.clone(), input.clone()),
            Output::new("fixture.out.b", key, input),
        ])
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let brokers = arg("--brokers").unwrap_or_else(|| "127.0.0.1:9092".into());
    let registry = arg("--registry").unwrap_or_else(|| "http://127.0.0.1:8081".into());
    let delay = Duration::from_millis(arg("--delay-ms").and_then(|d| d.parse().ok()).unwrap_or(0));
    let batch: usize = arg("--batch").and_then(|b| b.parse().ok()).unwrap_or(50);
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("info,rdkafka=warn"))
        .init();

    let prefix = arg("--topic-prefix").unwrap_or_default();
    let kafka = KafkaSettings::new(brokers).in_namespace(Namespace::new(prefix));
    let mut runtime = Runtime::new(kafka, &registry)?;
    if let Some(processing) = arg("--processing") {
        runtime.processing = processing.parse().map_err(anyhow::Error::msg)?;
    }
    if let Some(id) = arg("--instance-id") {
        runtime.instance_id = id;
    }
    let shutdown = switchyard_runtime::shutdown::on_signal();
    if let Some(addr) = arg("--metrics-addr") {
        let bound = switchyard_runtime::serve_metrics(
            addr.parse()?,
            runtime.metrics.clone(),
            runtime.health.clone(),
            shutdown.clone(),
        )
        .await?;
        println!("metrics {bound}");
    }
    let mut options = RunnerOptions::new("fixture", &["messages.accepted"]);
    options.max_batch = batch;
    switchyard_runtime::run(&runtime, Arc::new(Echo { delay }), options, shutdown).await?;
    Ok(())
}
