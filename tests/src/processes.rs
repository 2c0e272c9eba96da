//! Switchyard role processes for tests: `switchyard run <role>` children in a test's namespace
//! (brokers, topic prefix, registry and instance id on the command line), their stdout and
//! stderr in a log file per start, stopped with SIGTERM or SIGKILL and started again with the
//! same arguments (so roles that listen come back on the same ports). Killed when dropped.
//!
//! The binary is the workspace's `target/<profile>/switchyard` next to the test executable
//! (`cargo build -p switchyard` or `make build` makes it), or `$SWITCHYARD_BIN`. Children log
//! at `$SWITCHYARD_CHILD_LOG` (an `EnvFilter`; default `info,rdkafka=warn`).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};

use crate::TestEnv;

/// Where the `switchyard` binary is: `$SWITCHYARD_BIN`, else next to the test executable's
/// `deps` directory.
pub fn switchyard_bin() -> anyhow::Result<PathBuf> {
    if let Ok(path) = std::env::var("SWITCHYARD_BIN") {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe()?;
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .context("test executable has no target directory")?;
    let bin = profile_dir.join(format!("switchyard{}", std::env::consts::EXE_SUFFIX));
    if !bin.exists() {
        bail!(
            "{} does not exist: build it first (`cargo build -p switchyard`)",
            bin.display()
        );
    }
    Ok(bin)
}

/// How role processes reach the broker and the registry, in one namespace.
#[derive(Debug, Clone)]
pub struct Connection {
    pub brokers: String,
    pub prefix: String,
    pub registry_url: String,
}

impl Connection {
    /// The environment's broker and namespace, with the registry at `registry_url`.
    pub fn new(env: &TestEnv, registry_url: &str) -> Self {
        Connection {
            brokers: env.brokers(),
            prefix: env.namespace.prefix().to_string(),
            registry_url: registry_url.to_string(),
        }
    }
}

/// The runners a role starts (each logs "stage started"), with the test config's three
/// senders (dispatch runs one per lane of each sender).
pub fn runners_of(role: &str) -> usize {
    match role {
        // validate and release.
        "validate" => 2,
        "route" => 1,
        // One consumer for first deliveries and the ten retry tiers.
        "callback" => 1,
        // Deliveries, rejections and the receipt deadlines.
        "report" => 3,
        // One consumer for all lanes of each of the three senders.
        "dispatch" => 3,
        // One consumer for every history topic.
        "history" => 1,
        _ => 0,
    }
}

/// The global options that put a process on `connection` as `instance_id`.
fn connection_args(connection: &Connection, instance_id: &str) -> Vec<String> {
    vec![
        "--brokers".into(),
        connection.brokers.clone(),
        "--topic-prefix".into(),
        connection.prefix.clone(),
        "--schema-registry-url".into(),
        connection.registry_url.clone(),
        "--instance-id".into(),
        instance_id.into(),
    ]
}

/// One `switchyard run <role>` process, restartable with the same arguments.
#[derive(Debug)]
pub struct RoleProcess {
    pub role: String,
    pub instance_id: String,
    args: Vec<String>,
    log_dir: PathBuf,
    starts: u32,
    log_path: PathBuf,
    child: Option<Child>,
    /// Extra environment and working directory (`spawn_command`).
    env: Vec<(String, String)>,
    dir: Option<PathBuf>,
}

impl RoleProcess {
    /// Start `switchyard run <role> <role_args>` as instance `instance_id`, logging to a file
    /// in `log_dir`.
    pub fn spawn(
        connection: &Connection,
        role: &str,
        instance_id: &str,
        role_args: &[String],
        log_dir: &Path,
    ) -> anyhow::Result<Self> {
        let mut args = connection_args(connection, instance_id);
        args.extend(["run".to_string(), role.to_string()]);
        args.extend(role_args.iter().cloned());
        Self::launch(role, instance_id, args, Vec::new(), None, log_dir)
    }

    /// Start `switchyard <global options> <command>` — any subcommand, e.g. `up …` or
    /// `sim smsc …` — in the repository's directory (where `up` finds `tests/smsc`), with
    /// `global` options after the connection's and `env` added to its environment; `name`
    /// names it in logs and log files.
    pub fn spawn_command(
        connection: &Connection,
        name: &str,
        instance_id: &str,
        global: &[String],
        command: &[String],
        env: &[(String, String)],
        log_dir: &Path,
    ) -> anyhow::Result<Self> {
        let mut args = connection_args(connection, instance_id);
        args.extend(global.iter().cloned());
        args.extend(command.iter().cloned());
        let dir = Some(crate::repo_root());
        Self::launch(name, instance_id, args, env.to_vec(), dir, log_dir)
    }

    /// Start `switchyard ARGS` as `name`, logging under `log_dir`.
    fn launch(
        name: &str,
        instance_id: &str,
        args: Vec<String>,
        env: Vec<(String, String)>,
        dir: Option<PathBuf>,
        log_dir: &Path,
    ) -> anyhow::Result<Self> {
        std::fs::create_dir_all(log_dir)?;
        let mut process = RoleProcess {
            role: name.to_string(),
            instance_id: instance_id.to_string(),
            args,
            log_dir: log_dir.to_path_buf(),
            starts: 0,
            log_path: PathBuf::new(),
            child: None,
            env,
            dir,
        };
        process.start_again()?;
        Ok(process)
    }

    /// Start the process again with the same arguments (after `kill9` or `terminate`); a new
    /// log file.
    pub fn start_again(&mut self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.child.is_none(),
            "{} {} is still running",
            self.role,
            self.instance_id
        );
        self.starts += 1;
        self.log_path = self.log_dir.join(format!(
            "{}-{}.{}.log",
            self.role, self.instance_id, self.starts
        ));
        let log = File::create(&self.log_path)?;
        let filter = std::env::var("SWITCHYARD_CHILD_LOG")
            .unwrap_or_else(|_| "info,rdkafka=warn".to_string());
        let mut command = Command::new(switchyard_bin()?);
        if let Some(dir) = &self.dir {
            command.current_dir(dir);
        }
        let child = command
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("RUST_LOG", filter)
            .env("NO_COLOR", "1")
            .env("RUST_BACKTRACE", "0")
            .env_remove("SWITCHYARD_PROCESSING")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .spawn()
            .with_context(|| format!("starting switchyard run {}", self.role))?;
        self.child = Some(child);
        Ok(())
    }

    /// The process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether it is still running (not exited, not killed).
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut().map(Child::try_wait) {
            Some(Ok(None)) => true,
            Some(_) | None => false,
        }
    }

    /// How it exited, if it did (the process is then reaped).
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// SIGKILL: a crash, nothing finished or committed.
    pub fn kill9(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }

    /// SIGTERM, then wait up to `timeout` for it to finish its batch and exit (SIGKILL and an
    /// error when it does not).
    pub async fn terminate(&mut self, timeout: Duration) -> anyhow::Result<ExitStatus> {
        let Some(mut child) = self.child.take() else {
            bail!("{} {} is not running", self.role, self.instance_id);
        };
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()?;
        anyhow::ensure!(status.success(), "kill -TERM failed");
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(status);
            }
            if tokio::time::Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!(
                    "{} {} did not exit within {timeout:?} of SIGTERM",
                    self.role,
                    self.instance_id
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Send `signal` (`TERM`, `INT`, `KILL`, …) and return at once.
    pub fn signal(&self, signal: &str) -> anyhow::Result<()> {
        let Some(pid) = self.pid() else {
            bail!("{} {} is not running", self.role, self.instance_id);
        };
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &pid.to_string()])
            .status()?;
        anyhow::ensure!(status.success(), "kill -{signal} {pid} failed");
        Ok(())
    }

    /// Wait until it exits, at most until `deadline`: how it exited (the process is then
    /// reaped and no longer running), or `None` if it still runs (it is left running).
    pub async fn wait_exit_until(
        &mut self,
        deadline: tokio::time::Instant,
    ) -> anyhow::Result<Option<ExitStatus>> {
        loop {
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                self.child = None;
                return Ok(Some(status));
            }
            if self.child.is_none() {
                bail!("{} {} is not running", self.role, self.instance_id);
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(None);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Every process it started, and theirs (from `/proc`), while it runs.
    pub fn descendants(&self) -> Vec<u32> {
        self.pid().map(descendants_of).unwrap_or_default()
    }

    /// The current start's log file.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// What the current start logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// The last `lines` lines of the current start's log.
    pub fn log_tail(&self, lines: usize) -> String {
        let log = self.log();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Wait until the current start's log holds `needle` at least `count` times; an error if
    /// the process exits or `timeout` passes first.
    pub async fn wait_for_log(
        &mut self,
        needle: &str,
        count: usize,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.log().matches(needle).count() >= count {
                return Ok(());
            }
            if !self.is_running() {
                let status = self.exit_status();
                bail!(
                    "{} {} exited ({status:?}) before logging {needle:?}:\n{}",
                    self.role,
                    self.instance_id,
                    self.log_tail(30)
                );
            }
            if tokio::time::Instant::now() >= deadline {
                bail!(
                    "{} {} logged {needle:?} {} of {count} times in {timeout:?}:\n{}",
                    self.role,
                    self.instance_id,
                    self.log().matches(needle).count(),
                    self.log_tail(30)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Wait until every runner of the role started and got its partitions (and, for roles
    /// that listen, until `port` accepts connections).
    pub async fn wait_ready(&mut self, port: Option<u16>, timeout: Duration) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        let runners = runners_of(&self.role);
        if runners > 0 {
            self.wait_for_log("stage started", runners, timeout).await?;
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            self.wait_for_log("partitions assigned", runners, left)
                .await?;
        }
        if let Some(port) = port {
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                if !self.is_running() || tokio::time::Instant::now() >= deadline {
                    bail!(
                        "{} {} does not listen on {port}:\n{}",
                        self.role,
                        self.instance_id,
                        self.log_tail(30)
                    );
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Ok(())
    }
}

impl Drop for RoleProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Every descendant of `pid` (children, their children, …), from `/proc`.
pub fn descendants_of(pid: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(child) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
                continue;
            };
            if let Some(parent) = proc_stat(child).map(|(_, parent)| parent) {
                parents.push((child, parent));
            }
        }
    }
    let mut found = vec![pid];
    let mut next = 0;
    while next < found.len() {
        let parent = found[next];
        found.extend(
            parents
                .iter()
                .filter(|(_, p)| *p == parent)
                .map(|(c, _)| *c),
        );
        next += 1;
    }
    found.remove(0);
    found
}

/// Whether `pid` is a live process (not gone, not a zombie waiting to be reaped).
pub fn process_alive(pid: u32) -> bool {
    proc_stat(pid).is_some_and(|(state, _)| state != 'Z' && state != 'X')
}

/// A process's command line (arguments joined by spaces), empty when it is gone.
pub fn process_command_line(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|bytes| {
            String::from_utf8_lossy(&bytes)
                .split('\0')
                .filter(|a| !a.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

/// State and parent pid from `/proc/<pid>/stat`.
fn proc_stat(pid: u32) -> Option<(char, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: the fields follow the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let parent = fields.next()?.parse().ok()?;
    Some((state, parent))
}
