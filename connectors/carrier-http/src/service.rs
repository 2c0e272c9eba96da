//! The dispatch role: one runner per enabled HTTP sender in `config.senders` (consumer group
//! `switchyard.dispatch.<sender>`), started as senders appear.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use switchyard_runtime::{CancellationToken, ConfigTables, RunnerOptions, Runtime, names};

use crate::dispatcher::HttpSender;

/// Run a dispatcher for every HTTP sender until `shutdown`. `receipt_url` is where carriers
/// send receipts (the receipts route of this process).
pub async fn run_dispatch(
    runtime: Runtime,
    tables: ConfigTables,
    receipt_url: String,
    shutdown: CancellationToken,
) {
    let mut running = HashSet::new();
    let mut tasks = Vec::new();
    loop {
        for sender in tables.senders.snapshot().into_values() {
            if !sender.enabled || sender.kind != "http" || running.contains(&sender.name) {
                continue;
            }
            running.insert(sender.name.clone());
            let topic = names::sender(&sender.name);
            let mut options =
                RunnerOptions::new(&format!("dispatch.{}", sender.name), &[&topic]).at_least_once();
            options.max_batch = 200;
            let processor = Arc::new(HttpSender::new(sender, receipt_url.clone()));
            let (runtime, shutdown) = (runtime.clone(), shutdown.clone());
            tasks.push(tokio::spawn(async move {
                if let Err(e) =
                    switchyard_runtime::run(&runtime, processor, options, shutdown).await
                {
                    tracing::error!(error = %e, "dispatcher stopped");
                }
            }));
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
    }
    for task in tasks {
        let _ = task.await;
    }
}
