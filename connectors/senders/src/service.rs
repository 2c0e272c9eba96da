//! The dispatch role: for every enabled sender in `config.senders`, one runner per priority
//! lane (consumer group `switchyard.dispatch.<sender>[.<lane>]`) sharing the sender's carrier
//! and gate, built by its kind from the registry, started as senders appear. A sender whose record cannot be built is logged and tried again when its record
//! changes (or, for a retriable start error, on the next look).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use switchyard_runtime::{
    CancellationToken, ConfigTables, RunnerOptions, Runtime, RuntimeError, Table, names,
};
use switchyard_schemas::SenderConfig;

use crate::common::split;
use crate::dispatcher::Dispatcher;
use crate::heartbeat::{Rates, run_heartbeat};
use crate::registry::{StartContext, kind};

/// How often the senders table is looked at for new senders.
const LOOK_EVERY: Duration = Duration::from_secs(2);

/// The table over `topic` once it caught up; `None` when stopped first.
async fn ready_unless_stopped<V>(
    runtime: &Runtime,
    topic: &str,
    shutdown: &CancellationToken,
) -> Result<Option<Table<String, V>>, RuntimeError>
where
    V: switchyard_schemas::Record + Clone + Send + Sync + 'static,
{
    match Table::start_ready(runtime, topic, shutdown.clone()).await {
        Ok(table) => Ok(Some(table)),
        Err(_) if shutdown.is_cancelled() => Ok(None),
        Err(e) => Err(e),
    }
}

/// Run a dispatcher for every enabled sender until `shutdown`. `receipt_url` is where HTTP
/// carriers send receipts (the receipts route of this process). Fails only if the senders'
/// heartbeats (which say how many instances share each sender's rate) cannot be read.
pub async fn run_dispatch(
    runtime: Runtime,
    tables: ConfigTables,
    receipt_url: String,
    shutdown: CancellationToken,
) -> Result<(), RuntimeError> {
    // A stop while the tables catch up is a stop, not a failure of the role.
    let Some(beats) = ready_unless_stopped(&runtime, names::SENDER_HEALTH, &shutdown).await? else {
        return Ok(());
    };
    let Some(drains) = ready_unless_stopped(&runtime, names::SENDER_DRAINS, &shutdown).await?
    else {
        return Ok(());
    };
    let context = Arc::new(StartContext::new(
        runtime.clone(),
        receipt_url,
        shutdown.clone(),
    ));
    let mut running = HashMap::new();
    let mut refused: HashMap<String, SenderConfig> = HashMap::new();
    let mut tasks = Vec::new();
    loop {
        for sender in tables.senders.snapshot().into_values() {
            if !sender.enabled
                || running.contains_key(&sender.name)
                || refused.get(&sender.name) == Some(&sender)
            {
                continue;
            }
            // The settings every kind shares are taken out; the kind reads the rest.
            let built = match (kind(&sender.kind), split(&sender.settings)) {
                (Ok(kind), Ok((common, rest))) => {
                    let own = SenderConfig {
                        settings: rest.into_iter().collect(),
                        ..sender.clone()
                    };
                    kind.start(&own, &context).await.map(|c| (c, common))
                }
                (Err(e), _) | (_, Err(e)) => Err(e),
            };
            let (carrier, common) = match built {
                Ok(built) => built,
                Err(e) => {
                    tracing::error!(stage = "dispatch", sender = %sender.name, kind = %sender.kind, error = %e, retriable = e.is_retriable(), "sender not started");
                    if !e.is_retriable() {
                        refused.insert(sender.name.clone(), sender);
                    }
                    continue;
                }
            };
            refused.remove(&sender.name);
            running.insert(sender.name.clone(), ());
            tracing::info!(stage = "dispatch", sender = %sender.name, kind = %sender.kind, "sender started");
            let dispatcher = Dispatcher::new(
                &sender.name,
                &sender.kind,
                carrier.clone(),
                common,
                runtime.metrics.clone(),
            )
            .with_drains(drains.clone());
            tasks.push(tokio::spawn(run_heartbeat(
                runtime.clone(),
                dispatcher.clone(),
                sender.endpoint.clone(),
                Rates {
                    senders: tables.senders.clone(),
                    beats: beats.clone(),
                },
                shutdown.clone(),
            )));
            let mut lanes = Vec::new();
            for (index, lane) in names::LANES.iter().enumerate() {
                let processor = Arc::new(dispatcher.in_lane(index));
                let topic = processor.topic();
                let mut options =
                    RunnerOptions::new(&names::dispatch_stage(&sender.name, lane), &[&topic])
                        .at_least_once();
                options.max_batch = 200;
                let (runtime, shutdown, name) =
                    (runtime.clone(), shutdown.clone(), sender.name.clone());
                lanes.push(tokio::spawn(async move {
                    if let Err(e) =
                        switchyard_runtime::run(&runtime, processor, options, shutdown).await
                    {
                        tracing::error!(stage = "dispatch", sender = %name, %topic, error = %e, "dispatcher stopped");
                    }
                }));
            }
            tasks.push(tokio::spawn(async move {
                for lane in lanes {
                    let _ = lane.await;
                }
                carrier.stop().await;
            }));
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(LOOK_EVERY) => {}
        }
    }
    for task in tasks {
        let _ = task.await;
    }
    Ok(())
}
