//! Start the roles: validate, route, dispatch (with its receipts endpoint), report, callback,
//! history and ingress — each as tasks on the shared runtime.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use switchyard_callback::{Callback, WebhookSettings, run_callback};
use switchyard_history::{HistoryStore, Retention, run_history};
use switchyard_ingress::Ingress;
use switchyard_runtime::delay_gate::DEFAULT_HELD_PER_PARTITION;
use switchyard_runtime::{
    CancellationToken, ConfigTables, Health, KeySet, RoleState, RunnerOptions, Runtime, Table,
    names,
};
use switchyard_stages::clock::Clock;
use switchyard_stages::deadline::Deadline;
use switchyard_stages::release::Release;
use switchyard_stages::report::{Emitted, ReportDeliveries, ReportRejections};
use switchyard_stages::route::Route;
use switchyard_stages::validate::Validate;
use tokio::task::JoinHandle;

/// The exit status of a process whose roles did not all stop within the grace period.
pub use switchyard_runtime::shutdown::EXIT_OVERDUE;

/// A role a process can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    Validate,
    Route,
    Dispatch,
    Report,
    Callback,
    History,
    Ingress,
}

impl Role {
    /// The role's name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Role::Validate => "validate",
            Role::Route => "route",
            Role::Dispatch => "dispatch",
            Role::Report => "report",
            Role::Callback => "callback",
            Role::History => "history",
            Role::Ingress => "ingress",
        }
    }

    /// Every role, in pipeline order.
    pub const ALL: [Role; 7] = [
        Role::History,
        Role::Validate,
        Role::Route,
        Role::Dispatch,
        Role::Report,
        Role::Callback,
        Role::Ingress,
    ];
}

/// Where the roles listen and keep files.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The history store: `sqlite://PATH` (or a bare path) or `cql://HOST:PORT/KEYSPACE`.
    pub history_url: String,
    /// How long the history keeps messages (per customer, with a default).
    pub history_retention: Retention,
    /// The ingress's address.
    pub ingress_addr: SocketAddr,
    /// The ingress's connection limits (timeouts, most connections).
    pub ingress_limits: switchyard_ingress::ServerLimits,
    /// Where dispatch listens for carriers' receipts.
    pub receipts_addr: SocketAddr,
    /// The receipts URL given to carriers; by default `http://<receipts_addr>/receipts`.
    pub receipts_url: Option<String>,
    /// Length of a "minute" in the callback retry schedule (tests shrink it).
    pub callback_minute: Duration,
    /// Where webhooks may go (https and public addresses only in production mode), their
    /// timeout and per-endpoint isolation.
    pub webhooks: WebhookSettings,
    /// The time validate judges by (night hours, expiry): the system clock but in tests.
    pub clock: Clock,
}

/// What could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Runtime(#[from] switchyard_runtime::RuntimeError),
    #[error(transparent)]
    History(#[from] switchyard_history::HistoryError),
    #[error("cannot listen: {0}")]
    Listen(#[from] std::io::Error),
    #[error("webhook client: {0}")]
    WebhookClient(#[from] reqwest::Error),
}

/// Running roles: their tasks, the addresses they bound and their health.
#[derive(Debug, Default)]
pub struct Running {
    pub tasks: Vec<JoinHandle<()>>,
    pub ingress: Option<SocketAddr>,
    pub receipts: Option<SocketAddr>,
    pub health: Health,
    unfinished: Unfinished,
}

impl Running {
    /// Wait until every task ended (after shutdown).
    pub async fn wait(self) {
        for task in self.tasks {
            let _ = task.await;
        }
    }

    /// Run until `shutdown` or until a role fails, then give the roles `grace` to finish their
    /// batches and commit. The process's exit code: 0 after a requested stop, 1 after a
    /// failure, [`EXIT_OVERDUE`] when a role did not stop within `grace` — it is then left
    /// running (logged, with what that means); the caller exits the process without waiting
    /// for it (`switchyard_runtime::shutdown::exit`), its uncommitted input is consumed again
    /// after the restart.
    pub async fn run_until(self, shutdown: &CancellationToken, grace: Duration) -> i32 {
        let failed = self.health.failed();
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = failed.cancelled() => {
                tracing::error!(health = ?self.health.report(), "a role failed; stopping the others");
                shutdown.cancel();
            }
        }
        let report = self.overdue_report();
        if tokio::time::timeout(grace, self.wait()).await.is_err() {
            return report.report(grace);
        }
        report.code(false)
    }

    /// What to do when the roles did not stop within the grace period (the shutdown
    /// watchdog's hook, `switchyard_runtime::shutdown::on_overdue`): log each role still
    /// running and what it leaves undone (once, however many times it is called), and give
    /// the exit code.
    pub fn overdue_report(&self) -> OverdueReport {
        OverdueReport {
            unfinished: self.unfinished.clone(),
            health: self.health.clone(),
        }
    }

    /// Start tracking `task` (a server) of `role`, named `name`: until it ends, it is
    /// unfinished.
    fn track(&mut self, role: Role, name: &str, task: JoinHandle<()>) {
        let unfinished = self.unfinished.clone();
        let key = unfinished.add(role, name);
        self.tasks.push(tokio::spawn(async move {
            let _ = task.await;
            unfinished.done(&key);
        }));
    }
}

/// The tasks of the roles that have not ended yet.
#[derive(Debug, Clone, Default)]
struct Unfinished {
    tasks: Arc<Mutex<BTreeMap<String, (Role, String)>>>,
    reported: Arc<AtomicBool>,
}

impl Unfinished {
    /// Note a running task; the key it is known by.
    fn add(&self, role: Role, name: &str) -> String {
        let mut tasks = self.tasks.lock().unwrap_or_else(PoisonError::into_inner);
        let mut key = name.to_string();
        let mut n = 1;
        while tasks.contains_key(&key) {
            n += 1;
            key = format!("{name}#{n}");
        }
        tasks.insert(key.clone(), (role, name.to_string()));
        key
    }

    fn done(&self, key: &str) {
        self.tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key);
    }

    fn still_running(&self) -> Vec<(Role, String)> {
        self.tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }
}

/// Logs what did not stop in time and gives the exit code; see [`Running::overdue_report`].
#[derive(Debug, Clone)]
pub struct OverdueReport {
    unfinished: Unfinished,
    health: Health,
}

impl OverdueReport {
    /// The exit code: 1 once a role failed, else [`EXIT_OVERDUE`] if `overdue`, else 0.
    fn code(&self, overdue: bool) -> i32 {
        match (self.health.is_healthy(), overdue) {
            (false, _) => 1,
            (true, true) => EXIT_OVERDUE,
            (true, false) => 0,
        }
    }

    /// The grace period expired: say which roles are still running and what that leaves
    /// undone (the first call only), and give the exit code.
    pub fn report(&self, grace: Duration) -> i32 {
        let code = self.code(true);
        if self.unfinished.reported.swap(true, Ordering::SeqCst) {
            return code;
        }
        let seconds = grace.as_secs_f64();
        let running = self.unfinished.still_running();
        for (role, name) in &running {
            let (role, name) = (role.name(), name.as_str());
            let what = if name == role {
                format!("role {role}")
            } else {
                format!("role {role} ({name})")
            };
            let consequence = match name {
                "ingress" => {
                    "requests in flight get no answer (a batch without its 202 was not \
                     acknowledged: clients send it again, with the same client_message_id)"
                }
                "receipts" => "receipts in flight are not acknowledged (carriers send them again)",
                _ => "its uncommitted batch will be consumed again after the restart",
            };
            tracing::error!(
                role,
                task = name,
                grace_seconds = seconds,
                "{what} did not stop within {seconds} s; {consequence}"
            );
        }
        if running.is_empty() {
            tracing::error!(
                grace_seconds = seconds,
                "every role stopped, but the process did not finish within {seconds} s of the \
                 shutdown request; leaving without waiting"
            );
        } else {
            tracing::error!(
                grace_seconds = seconds,
                exit_code = code,
                unfinished = running.len(),
                "leaving without waiting for the roles that did not stop (exit code {code})"
            );
        }
        code
    }
}

/// Run a task of role `of` named `role`; its end before shutdown, or its error, marks the role
/// failed. Unfinished until it ends.
fn spawn_role<F>(
    (unfinished, of): (&Unfinished, Role),
    role: String,
    health: &Health,
    shutdown: &CancellationToken,
    task: F,
) -> JoinHandle<()>
where
    F: std::future::Future<Output = Result<(), String>> + Send + 'static,
{
    let (health, shutdown) = (health.clone(), shutdown.clone());
    health.set(&role, RoleState::Running);
    let (unfinished, key) = (unfinished.clone(), unfinished.add(of, &role));
    tokio::spawn(async move {
        match task.await {
            Err(error) => health.set(&role, RoleState::Failed(error)),
            Ok(()) if !shutdown.is_cancelled() => {
                health.set(&role, RoleState::Failed("stopped by itself".into()));
            }
            Ok(()) => {}
        }
        unfinished.done(&key);
    })
}

fn spawn_runner<P: switchyard_runtime::AsyncProcessor>(
    of: (&Unfinished, Role),
    runtime: &Runtime,
    processor: P,
    options: RunnerOptions,
    shutdown: &CancellationToken,
) -> JoinHandle<()> {
    let (task_runtime, task_shutdown) = (runtime.clone(), shutdown.clone());
    spawn_role(
        of,
        options.stage.clone(),
        &runtime.health,
        shutdown,
        async move {
            switchyard_runtime::run(&task_runtime, Arc::new(processor), options, task_shutdown)
                .await
                .map_err(|e| e.to_string())
        },
    )
}

/// Start `roles` on `runtime`; they run until `shutdown`.
pub async fn start(
    runtime: &Runtime,
    roles: &[Role],
    settings: &Settings,
    shutdown: &CancellationToken,
) -> Result<Running, StartError> {
    let needs_history = roles
        .iter()
        .any(|r| matches!(r, Role::History | Role::Ingress));
    if needs_history {
        // A history URL naming no engine is refused before waiting for anything.
        switchyard_history::StoreUrl::parse(&settings.history_url)?;
    }
    if !runtime.wait_for_brokers(shutdown).await {
        return Ok(Running::default());
    }
    let tables = ConfigTables::start(runtime, shutdown.clone()).await?;
    let mut running = Running {
        health: runtime.health.clone(),
        ..Running::default()
    };
    let history = if needs_history {
        // Waits (logged, with backoff) while the store is unreachable, like the brokers.
        // Customers' own `history_retention_days` apply as the customers table changes.
        let retention = settings
            .history_retention
            .clone()
            .following(tables.customers.clone());
        match HistoryStore::open_waiting(&settings.history_url, retention, shutdown).await? {
            Some(store) => Some(store),
            None => return Ok(running),
        }
    } else {
        None
    };
    for role in roles {
        match role {
            Role::Validate => {
                running.tasks.push(spawn_runner(
                    (&running.unfinished, *role),
                    runtime,
                    Validate::new(tables.clone(), settings.clock.clone()),
                    // Its state (money) needs transactions: exactly once in every mode.
                    RunnerOptions::new("validate", &[names::ACCEPTED, names::BALANCE_COMMANDS])
                        .exactly_once(),
                    shutdown,
                ));
                // Held and paced messages go back to validate at their time.
                running.tasks.push(spawn_runner(
                    (&running.unfinished, *role),
                    runtime,
                    Release,
                    RunnerOptions::new("release", &[names::HELD, names::PACED])
                        .due_per_record(DEFAULT_HELD_PER_PARTITION),
                    shutdown,
                ));
            }
            Role::Route => {
                // Which senders can take traffic: the dispatchers' heartbeats.
                let health =
                    Table::start_ready(runtime, names::SENDER_HEALTH, shutdown.clone()).await?;
                // Which senders operators drain.
                let drains =
                    Table::start_ready(runtime, names::SENDER_DRAINS, shutdown.clone()).await?;
                running.tasks.push(spawn_runner(
                    (&running.unfinished, *role),
                    runtime,
                    Route::new(tables.clone(), health).with_drains(drains),
                    // Its round-robin positions are a state store: exactly once in every mode.
                    RunnerOptions::new("route", &[names::VALIDATED, names::FAILOVER])
                        .exactly_once(),
                    shutdown,
                ));
            }
            Role::Report => {
                let emitted = Arc::new(Emitted::new(
                    KeySet::start_ready(runtime, names::FINAL, shutdown.clone()).await?,
                ));
                running.tasks.push(spawn_runner(
                    (&running.unfinished, *role),
                    runtime,
                    ReportDeliveries(emitted.clone()),
                    RunnerOptions::new("report", &[names::REPORTS]),
                    shutdown,
                ));
                running.tasks.push(spawn_runner(
                    (&running.unfinished, *role),
                    runtime,
                    ReportRejections(emitted.clone()),
                    RunnerOptions::new("report.rejected", &[names::REJECTED]),
                    shutdown,
                ));
                // Submitted messages without a final report by their sender's receipt
                // deadline end unknown (decision 0020).
                running.tasks.push(spawn_runner(
                    (&running.unfinished, *role),
                    runtime,
                    Deadline(emitted),
                    RunnerOptions::new("report.deadline", &[names::DEADLINES])
                        .due_per_record(DEFAULT_HELD_PER_PARTITION),
                    shutdown,
                ));
            }
            Role::Callback => {
                let callback = Callback::new(
                    tables.clone(),
                    settings.callback_minute,
                    settings.webhooks.clone(),
                )?;
                // One consumer for first deliveries, replays and the ten retry tiers, each
                // tier's records held until due (`switchyard_callback::role`).
                let (runtime, shutdown) = (runtime.clone(), shutdown.clone());
                let health = runtime.health.clone();
                let of = (&running.unfinished, Role::Callback);
                running
                    .tasks
                    .push(spawn_role(of, "callback".into(), &health, &shutdown, {
                        let shutdown = shutdown.clone();
                        async move {
                            run_callback(&runtime, callback, shutdown)
                                .await
                                .map_err(|e| e.to_string())
                        }
                    }));
            }
            Role::History => {
                let (runtime, store, shutdown) = (
                    runtime.clone(),
                    history.clone().expect("opened above"),
                    shutdown.clone(),
                );
                let health = runtime.health.clone();
                let of = (&running.unfinished, Role::History);
                running
                    .tasks
                    .push(spawn_role(of, "history".into(), &health, &shutdown, {
                        let shutdown = shutdown.clone();
                        async move {
                            run_history(runtime, store, shutdown).await;
                            Ok(())
                        }
                    }));
            }
            Role::Dispatch => {
                let app = switchyard_carrier_http::receipts::router(runtime.clone());
                let (bound, task) = switchyard_runtime::serve_http(
                    settings.receipts_addr,
                    app,
                    shutdown.clone(),
                    "receipts",
                )
                .await?;
                running.receipts = Some(bound);
                running.track(Role::Dispatch, "receipts", task);
                let url = settings
                    .receipts_url
                    .clone()
                    .unwrap_or_else(|| format!("http://{bound}/receipts"));
                let (runtime, tables, shutdown) =
                    (runtime.clone(), tables.clone(), shutdown.clone());
                let health = runtime.health.clone();
                let of = (&running.unfinished, Role::Dispatch);
                running
                    .tasks
                    .push(spawn_role(of, "dispatch".into(), &health, &shutdown, {
                        let shutdown = shutdown.clone();
                        async move {
                            switchyard_senders::run_dispatch(runtime, tables, url, shutdown)
                                .await
                                .map_err(|e| e.to_string())?;
                            Ok(())
                        }
                    }));
            }
            Role::Ingress => {
                let ingress = Ingress {
                    runtime: runtime.clone(),
                    tables: tables.clone(),
                    history: history.clone().expect("opened above"),
                    limits: Arc::default(),
                };
                let (bound, task) = switchyard_ingress::serve_with(
                    settings.ingress_addr,
                    ingress,
                    settings.ingress_limits,
                    shutdown.clone(),
                )
                .await?;
                running.ingress = Some(bound);
                // Waited for at shutdown: a request begun before SIGTERM still gets its answer.
                running.track(Role::Ingress, "ingress", task);
            }
        }
    }
    Ok(running)
}
