//! Start the roles: validate, route, dispatch (with its receipts endpoint), report, callback,
//! history and ingress — each as tasks on the shared runtime.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use switchyard_callback::schedule::tier_delay;
use switchyard_callback::{Callback, RetryTier, WebhookSettings};
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
}

impl Running {
    /// Wait until every task ended (after shutdown).
    pub async fn wait(self) {
        for task in self.tasks {
            let _ = task.await;
        }
    }

    /// Run until `shutdown` or until a role fails, then give the roles `grace` to finish their
    /// batches and commit; whatever is still running then is abandoned (its input is consumed
    /// again next time). The process's exit code: 0 after a requested stop, 1 after a failure.
    pub async fn run_until(self, shutdown: &CancellationToken, grace: Duration) -> i32 {
        let failed = self.health.failed();
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = failed.cancelled() => {
                tracing::error!(health = ?self.health.report(), "a role failed; stopping the others");
                shutdown.cancel();
            }
        }
        let code = if self.health.is_healthy() { 0 } else { 1 };
        let aborts: Vec<_> = self.tasks.iter().map(JoinHandle::abort_handle).collect();
        if tokio::time::timeout(grace, self.wait()).await.is_err() {
            tracing::warn!(
                grace_seconds = grace.as_secs(),
                "roles did not stop in time; leaving anyway"
            );
            aborts.iter().for_each(tokio::task::AbortHandle::abort);
        }
        code
    }
}

/// Run a role's task; its end before shutdown, or its error, marks the role failed.
fn spawn_role<F>(
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
    tokio::spawn(async move {
        match task.await {
            Err(error) => health.set(&role, RoleState::Failed(error)),
            Ok(()) if !shutdown.is_cancelled() => {
                health.set(&role, RoleState::Failed("stopped by itself".into()));
            }
            Ok(()) => {}
        }
    })
}

fn spawn_runner<P: switchyard_runtime::AsyncProcessor>(
    runtime: &Runtime,
    processor: P,
    options: RunnerOptions,
    shutdown: &CancellationToken,
) -> JoinHandle<()> {
    let (task_runtime, task_shutdown) = (runtime.clone(), shutdown.clone());
    spawn_role(
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
                    runtime,
                    Validate::new(tables.clone(), settings.clock.clone()),
                    // Its state (money) needs transactions: exactly once in every mode.
                    RunnerOptions::new("validate", &[names::ACCEPTED, names::BALANCE_COMMANDS])
                        .exactly_once(),
                    shutdown,
                ));
                // Held and paced messages go back to validate at their time.
                running.tasks.push(spawn_runner(
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
                    runtime,
                    ReportDeliveries(emitted.clone()),
                    RunnerOptions::new("report", &[names::REPORTS]),
                    shutdown,
                ));
                running.tasks.push(spawn_runner(
                    runtime,
                    ReportRejections(emitted.clone()),
                    RunnerOptions::new("report.rejected", &[names::REJECTED]),
                    shutdown,
                ));
                // Submitted messages without a final report by their sender's receipt
                // deadline end unknown (decision 0020).
                running.tasks.push(spawn_runner(
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
                running.tasks.push(spawn_runner(
                    runtime,
                    callback.clone(),
                    RunnerOptions::new("callback", &[names::FINAL, names::CALLBACK_REPLAY])
                        .unordered(),
                    shutdown,
                ));
                for tier in 1..=names::CALLBACK_RETRY_TIERS {
                    let topic = names::callback_retry(tier);
                    let delay = tier_delay(tier, settings.callback_minute);
                    running.tasks.push(spawn_runner(
                        runtime,
                        RetryTier(callback.clone()),
                        RunnerOptions::new(&format!("callback.retry.{tier}"), &[&topic])
                            .delayed(delay),
                        shutdown,
                    ));
                }
            }
            Role::History => {
                let (runtime, store, shutdown) = (
                    runtime.clone(),
                    history.clone().expect("opened above"),
                    shutdown.clone(),
                );
                let health = runtime.health.clone();
                running
                    .tasks
                    .push(spawn_role("history".into(), &health, &shutdown, {
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
                running.tasks.push(task);
                let url = settings
                    .receipts_url
                    .clone()
                    .unwrap_or_else(|| format!("http://{bound}/receipts"));
                let (runtime, tables, shutdown) =
                    (runtime.clone(), tables.clone(), shutdown.clone());
                let health = runtime.health.clone();
                running
                    .tasks
                    .push(spawn_role("dispatch".into(), &health, &shutdown, {
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
                let (bound, task) =
                    switchyard_ingress::serve(settings.ingress_addr, ingress, shutdown.clone())
                        .await?;
                running.ingress = Some(bound);
                // Waited for at shutdown: a request begun before SIGTERM still gets its answer.
                running.tasks.push(task);
            }
        }
    }
    Ok(running)
}
