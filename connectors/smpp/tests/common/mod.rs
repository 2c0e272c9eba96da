//! Test harness: the npm `smpp`-based SMSC simulator (`tests/smsc/smsc.js`) as a child
//! process, a report sink that records what it is given, and short test settings.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use switchyard_smpp::{OutgoingMessage, ReceiptReport, ReportSink, SinkError, SmppSettings};

/// A running simulator.
pub struct Smsc {
    child: Child,
    pub port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

fn smsc_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/smsc")
}

impl Smsc {
    /// Start `node tests/smsc/smsc.js` with `SMSC_*` variables; fails loudly without its
    /// node_modules.
    pub fn start(env: &[(&str, &str)]) -> Smsc {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let dir = smsc_dir();
        assert!(
            dir.join("node_modules/smpp").is_dir(),
            "the SMSC simulator's node_modules are missing in {}: run `make setup` \
             (or infra/install-smsc.sh)",
            dir.display()
        );
        let tmp = tempfile::tempdir().unwrap();
        let log = tmp.path().join("smsc.jsonl");
        let mut command = Command::new("node");
        command
            .arg(dir.join("smsc.js"))
            .env("SMSC_PORT", "0")
            .env("SMSC_LOG", &log)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            command.env(format!("SMSC_{k}"), v);
        }
        let mut child = command
            .spawn()
            .expect("node must be installed to run the SMSC simulator (make setup)");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let port = line
            .trim()
            .strip_prefix("LISTENING ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("simulator did not start: {line:?}"));
        Smsc {
            child,
            port,
            log,
            _dir: tmp,
        }
    }

    /// Every logged event.
    pub fn events(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Wait until `ready(events)` holds (or `limit` passes); the events then.
    pub async fn wait_until(
        &self,
        limit: Duration,
        ready: impl Fn(&[serde_json::Value]) -> bool,
    ) -> Vec<serde_json::Value> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let events = self.events();
            if ready(&events) || tokio::time::Instant::now() >= deadline {
                return events;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The logged submit_sm events.
    pub fn submits(&self) -> Vec<serde_json::Value> {
        self.events()
            .into_iter()
            .filter(|e| e["event"] == "submit_sm")
            .collect()
    }
}

impl Drop for Smsc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Test settings: everything short.
pub fn settings(port: u16) -> SmppSettings {
    let mut s = SmppSettings::new("127.0.0.1", port, "switchyard", "secret");
    s.submit_timeout_ms = 3_000;
    s.reconnect_min_ms = 50;
    s.reconnect_max_ms = 400;
    s.throttle_pause_ms = 200;
    s.bind_wait_ms = 2_000;
    s.ambiguous_deadline_ms = 10_000;
    s.early_receipt_ttl_ms = 3_000;
    s
}

/// A sink that keeps every report.
#[derive(Default)]
pub struct Reports {
    pub got: Mutex<Vec<ReceiptReport>>,
}

impl Reports {
    pub fn new() -> Arc<Self> {
        Arc::new(Reports::default())
    }

    pub fn len(&self) -> usize {
        self.got.lock().unwrap().len()
    }

    pub fn all(&self) -> Vec<ReceiptReport> {
        self.got.lock().unwrap().clone()
    }

    /// Wait until at least `n` reports came, or `limit` passed.
    pub async fn wait_for(&self, n: usize, limit: Duration) -> Vec<ReceiptReport> {
        let deadline = tokio::time::Instant::now() + limit;
        while self.len() < n && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.all()
    }
}

impl ReportSink for Reports {
    fn write(&self, report: ReceiptReport) -> BoxFuture<'_, Result<(), SinkError>> {
        Box::pin(async move {
            self.got.lock().unwrap().push(report);
            Ok(())
        })
    }
}

/// Message `i`: its own recipient and text.
pub fn message(i: usize) -> OutgoingMessage {
    OutgoingMessage {
        message_id: format!("m-{i:05}"),
        to: format!("0109{i:07}"),
        from: Some("1588".into()),
        text: format!("switchyard test message {i:05}"),
        reference: format!("ref-{i}"),
    }
}

/// Count of each text among accepted (status ok or held) submit_sm of the simulator's log.
pub fn taken_texts(submits: &[serde_json::Value]) -> std::collections::HashMap<String, usize> {
    let mut counts = std::collections::HashMap::new();
    for s in submits {
        if s["status"] == "ok" || s["status"] == "held" {
            let text = s["text"].as_str().unwrap_or_default().to_string();
            *counts.entry(text).or_insert(0) += 1;
        }
    }
    counts
}
