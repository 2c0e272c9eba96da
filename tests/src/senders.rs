//! The sender contract suite's peers: for each sender kind, the real peer it talks to — the
//! HTTP carrier simulator (in process) or the SMSC simulator on the npm `smpp` package
//! (`tests/smsc/smsc.js`, a child process) — scripted the same way for each case, and what
//! each peer says it received.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use switchyard_carrier_http::simulator::{LoggedSubmit, Script, SimulatorSettings, serve_scripted};
use switchyard_runtime::CancellationToken;

/// A sender kind under contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Http,
    Smpp,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Http => "http",
            Kind::Smpp => "smpp",
        }
    }
}

/// How the peer behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Take everything and send receipts.
    Normal,
    /// Refuse destinations starting with [`REFUSED_PREFIX`] for good.
    Refuse,
    /// Answer every second submit "busy".
    ThrottleEverySecond,
    /// Answer every submit later than the sender waits (taking it all the same).
    AnswerLate,
    /// Keep receipts back for a while (they come to whichever bind is there then).
    LateReceipts,
}

/// Destinations the `Refuse` behaviour refuses.
pub const REFUSED_PREFIX: &str = "0109";

/// How long the senders under contract wait for an answer; `AnswerLate` answers after
/// three times that.
pub const ANSWER_TIMEOUT_MS: u64 = 500;

/// A running peer.
#[derive(Debug)]
pub enum Peer {
    Http {
        port: u16,
        stop: CancellationToken,
    },
    Smsc {
        port: u16,
        child: Child,
        log: PathBuf,
        _dir: tempfile::TempDir,
    },
}

/// The sender's endpoint for a peer of `kind` on `port`.
pub fn endpoint(kind: Kind, port: u16) -> String {
    match kind {
        Kind::Http => format!("http://127.0.0.1:{port}/submit"),
        Kind::Smpp => format!("smpp://127.0.0.1:{port}"),
    }
}

/// How long the contract's senders wait out a peer's outage before failing over: longer than
/// any outage the contract stages (failover has its own tests, `tests/tests/failover.rs`).
const WAIT_OUT_MS: u64 = 120_000;

/// The sender's settings (a TOML inline table) for the contract: short waits everywhere.
pub fn settings(kind: Kind) -> String {
    match kind {
        Kind::Http => format!(
            "{{ timeout_ms = {ANSWER_TIMEOUT_MS}, window = 8, failover_after_ms = {WAIT_OUT_MS} }}"
        ),
        Kind::Smpp => format!(
            "{{ system_id = \"switchyard\", password = \"pw\", submit_timeout_ms = {ANSWER_TIMEOUT_MS}, \
             failover_after_ms = {WAIT_OUT_MS}, \
             bind_wait_ms = 500, reconnect_min_ms = 100, reconnect_max_ms = 300, \
             throttle_pause_ms = 100, max_throttle_retries = 0, enquire_link_interval_ms = 5000 }}"
        ),
    }
}

impl Peer {
    /// Start a peer of `kind` behaving as told, on `port`.
    pub async fn start(kind: Kind, behaviour: Behaviour, port: u16) -> anyhow::Result<Peer> {
        match kind {
            Kind::Http => {
                let mut script = Script::default();
                let mut settings = SimulatorSettings {
                    success_rate: 1.0,
                    receipt_delay: Duration::from_millis(50),
                };
                match behaviour {
                    Behaviour::Normal => {}
                    Behaviour::Refuse => script.status_for = vec![(REFUSED_PREFIX.into(), 400)],
                    Behaviour::ThrottleEverySecond => script.throttle_every = 2,
                    Behaviour::AnswerLate => {
                        script.answer_delay = Duration::from_millis(3 * ANSWER_TIMEOUT_MS)
                    }
                    Behaviour::LateReceipts => settings.receipt_delay = Duration::from_secs(3),
                }
                let stop = CancellationToken::new();
                serve_scripted(
                    ([127, 0, 0, 1], port).into(),
                    settings,
                    script,
                    stop.clone(),
                )
                .await?;
                Ok(Peer::Http { port, stop })
            }
            Kind::Smpp => {
                let late = (3 * ANSWER_TIMEOUT_MS).to_string();
                let refuse = format!("{REFUSED_PREFIX}:11");
                let env: Vec<(&str, &str)> = match behaviour {
                    Behaviour::Normal => vec![],
                    Behaviour::Refuse => vec![("STATUS_FOR", refuse.as_str())],
                    Behaviour::ThrottleEverySecond => vec![("THROTTLE_EVERY", "2")],
                    Behaviour::AnswerLate => vec![("DELAY_MS", late.as_str())],
                    Behaviour::LateReceipts => vec![("RECEIPT_DELAY_MS", "3000")],
                };
                start_smsc(port, &env)
            }
        }
    }

    /// Every submit the peer received for `to`, by what it answered: `ok` (taken),
    /// `throttled` (busy) or `refused`.
    pub async fn submits_to(&self, to: &str) -> anyhow::Result<Vec<String>> {
        match self {
            Peer::Http { port, .. } => {
                let log: Vec<LoggedSubmit> = reqwest::get(format!("http://127.0.0.1:{port}/log"))
                    .await?
                    .json()
                    .await?;
                Ok(log
                    .into_iter()
                    .filter(|s| s.to == to)
                    .map(|s| {
                        match s.status {
                            200..=299 => "ok",
                            429 => "throttled",
                            _ => "refused",
                        }
                        .to_string()
                    })
                    .collect())
            }
            Peer::Smsc { log, .. } => Ok(std::fs::read_to_string(log)
                .unwrap_or_default()
                .lines()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .filter(|e| e["event"] == "submit_sm" && e["dest"] == to)
                .map(|e| e["status"].as_str().unwrap_or("?").to_string())
                .collect()),
        }
    }

    /// Stop the peer.
    pub fn stop(&mut self) {
        match self {
            Peer::Http { stop, .. } => stop.cancel(),
            Peer::Smsc { child, .. } => {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }

    pub fn port(&self) -> u16 {
        match self {
            Peer::Http { port, .. } | Peer::Smsc { port, .. } => *port,
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn start_smsc(port: u16, env: &[(&str, &str)]) -> anyhow::Result<Peer> {
    let dir = crate::repo_root().join("tests/smsc");
    if !dir.join("node_modules/smpp").is_dir() {
        bail!(
            "the SMSC simulator's node_modules are missing in {}: run infra/install-smsc.sh",
            dir.display()
        );
    }
    let tmp = tempfile::tempdir()?;
    let log = tmp.path().join("smsc.jsonl");
    let mut command = Command::new("node");
    command
        .arg(dir.join("smsc.js"))
        .env("SMSC_PORT", port.to_string())
        .env("SMSC_LOG", &log)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (k, v) in env {
        command.env(format!("SMSC_{k}"), v);
    }
    let mut child = command.spawn().context("node must be installed")?;
    let stdout = child.stdout.take().context("stdout")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    if !line.starts_with("LISTENING ") {
        let _ = child.kill();
        bail!("the SMSC simulator did not start: {line:?}");
    }
    Ok(Peer::Smsc {
        port,
        child,
        log,
        _dir: tmp,
    })
}
