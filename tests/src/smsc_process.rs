//! The SMSC simulator (`tests/smsc/smsc.js`) as a process that can be killed -9 and started
//! again on the same port, keeping one JSON-lines log across its starts (the simulator appends),
//! for fault tests. `senders::Peer` stays the contract suite's one-start peer.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};

/// A restartable SMSC simulator.
#[derive(Debug)]
pub struct SmscProcess {
    port: u16,
    env: Vec<(String, String)>,
    log: PathBuf,
    child: Option<Child>,
    starts: u32,
    _dir: tempfile::TempDir,
}

impl SmscProcess {
    /// Start the simulator on `port` with `SMSC_<name>` settings from `env`.
    pub fn start(port: u16, env: &[(&str, &str)]) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let mut smsc = SmscProcess {
            port,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            log: dir.path().join("smsc.jsonl"),
            child: None,
            starts: 0,
            _dir: dir,
        };
        smsc.start_again()?;
        Ok(smsc)
    }

    /// Start it again (after `kill9`) on the same port, logging to the same file. The port may
    /// take a moment to be free again: tried for a few seconds.
    pub fn start_again(&mut self) -> anyhow::Result<()> {
        anyhow::ensure!(self.child.is_none(), "the SMSC simulator is still running");
        let script = crate::repo_root().join("tests/smsc");
        if !script.join("node_modules/smpp").is_dir() {
            bail!(
                "the SMSC simulator's node_modules are missing in {}: run infra/install-smsc.sh",
                script.display()
            );
        }
        let mut last = String::new();
        for _ in 0..50 {
            let mut command = Command::new("node");
            command
                .arg(script.join("smsc.js"))
                .env("SMSC_PORT", self.port.to_string())
                .env("SMSC_LOG", &self.log)
                .stdout(Stdio::piped())
                .stderr(Stdio::null());
            for (k, v) in &self.env {
                command.env(format!("SMSC_{k}"), v);
            }
            let mut child = command.spawn().context("node must be installed")?;
            let stdout = child.stdout.take().context("stdout")?;
            let mut line = String::new();
            BufReader::new(stdout).read_line(&mut line)?;
            if line.starts_with("LISTENING ") {
                self.starts += 1;
                self.child = Some(child);
                return Ok(());
            }
            // Most likely the port is not free yet: try again shortly.
            let _ = child.kill();
            let _ = child.wait();
            last = line;
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!(
            "the SMSC simulator did not start on {}: {last:?}",
            self.port
        )
    }

    /// SIGKILL: its open sessions, unanswered submits and pending receipts die with it.
    pub fn kill9(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// How many times it was started.
    pub fn starts(&self) -> u32 {
        self.starts
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Every logged event of every start, in order.
    pub fn events(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The destinations of the submit_sm it took (answered or not: `ok` and `held`), one entry
    /// per submit_sm, in order.
    pub fn taken_destinations(&self) -> Vec<String> {
        self.events()
            .into_iter()
            .filter(|e| e["event"] == "submit_sm" && (e["status"] == "ok" || e["status"] == "held"))
            .filter_map(|e| e["dest"].as_str().map(str::to_string))
            .collect()
    }
}

impl Drop for SmscProcess {
    fn drop(&mut self) {
        let _ = self.kill9();
    }
}
