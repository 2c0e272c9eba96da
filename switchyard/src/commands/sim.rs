//! `switchyard sim carrier|smsc|webhooks`.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, bail};
use tokio::io::{AsyncBufReadExt, BufReader};

use switchyard_carrier_http::simulator::{SimulatorSettings, serve};

use crate::cli::SimCommand;
use crate::context::Context;

pub async fn run(app: &Context, command: SimCommand) -> anyhow::Result<i32> {
    match command {
        SimCommand::Carrier {
            listen,
            success_rate,
            receipt_delay_ms,
        } => {
            let settings = SimulatorSettings {
                success_rate,
                receipt_delay: Duration::from_millis(receipt_delay_ms),
            };
            let bound = serve(listen, settings, app.shutdown.clone()).await?;
            println!("carrier simulator on http://{bound}/submit");
        }
        SimCommand::Smsc { port } => {
            let (mut smsc, port) = spawn_smsc(port, None).await?;
            println!("SMSC simulator on smpp://127.0.0.1:{port}");
            tokio::select! {
                _ = app.shutdown.cancelled() => {
                    smsc.stop().await;
                }
                status = smsc.child.wait() => {
                    smsc.stop().await;
                    bail!("the SMSC simulator stopped: {status:?}");
                }
            }
            return Ok(0);
        }
        SimCommand::Webhooks { listen, secret } => {
            let (bound, _) =
                switchyard_callback::receiver::serve(listen, &secret, true, app.shutdown.clone())
                    .await?;
            println!("webhook receiver on http://{bound}/webhooks/switchyard");
        }
    }
    app.shutdown.cancelled().await;
    Ok(0)
}

/// Where the SMSC simulator's script is: `tests/smsc/smsc.js` from the working directory (the
/// repository, as `make up` runs).
fn smsc_script() -> anyhow::Result<PathBuf> {
    let dir = PathBuf::from("tests/smsc");
    if !dir.join("node_modules/smpp").is_dir() {
        bail!(
            "the SMSC simulator is not installed in {} (run infra/install-smsc.sh, needs node)",
            dir.display()
        );
    }
    Ok(dir.join("smsc.js"))
}

/// A simulator this process started, in a process group of its own: stopped with whatever it
/// started (a version manager's `node` shim starts the real node as its child) on every way
/// out — [`ChildProcess::stop`] on the way out of a command, the shutdown watchdog's or
/// `main`'s exit (`switchyard_runtime::shutdown::track_child`), and its drop.
#[derive(Debug)]
pub struct ChildProcess {
    pub child: tokio::process::Child,
    pid: Option<u32>,
}

impl ChildProcess {
    fn new(child: tokio::process::Child) -> Self {
        let pid = child.id();
        if let Some(pid) = pid {
            switchyard_runtime::shutdown::track_child(pid);
        }
        ChildProcess { child, pid }
    }

    /// Kill its process group and reap it.
    pub async fn stop(&mut self) {
        if let Some(pid) = self.pid.take() {
            switchyard_runtime::shutdown::kill_group(pid);
            let _ = self.child.start_kill();
            let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
            switchyard_runtime::shutdown::forget_child(pid);
        }
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        // An early return or an error: the group goes too (`kill_on_drop` kills the child only).
        if let Some(pid) = self.pid.take() {
            switchyard_runtime::shutdown::kill_group(pid);
            switchyard_runtime::shutdown::forget_child(pid);
        }
    }
}

/// Start the SMSC simulator on `port`, logging every PDU to `log` (stdout when `None`); returns
/// once it listens, with the port it listens on. Killed (its process group) when stopped,
/// dropped, or when the process exits.
pub async fn spawn_smsc(port: u16, log: Option<PathBuf>) -> anyhow::Result<(ChildProcess, u16)> {
    let script = smsc_script()?;
    let mut command = tokio::process::Command::new("node");
    command
        .arg(script)
        .env("SMSC_PORT", port.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        // Its own process group: killed with anything it starts, and a terminal's Ctrl-C
        // reaches this process only, which stops it.
        .process_group(0)
        .kill_on_drop(true);
    if let Some(log) = log {
        command.env("SMSC_LOG", log);
    }
    let child = command
        .spawn()
        .context("starting node (is it installed?)")?;
    let mut child = ChildProcess::new(child);
    let stdout = child
        .child
        .stdout
        .take()
        .context("the simulator's stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let line = lines.next_line().await?.unwrap_or_default();
    let Some(bound) = line
        .strip_prefix("LISTENING ")
        .and_then(|p| p.trim().parse().ok())
    else {
        child.stop().await;
        bail!("the SMSC simulator did not start: {line:?}");
    };
    // Keep reading its stdout (its log when no file is given), so it never writes to a
    // closed pipe.
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            println!("{line}");
        }
    });
    Ok((child, bound))
}
