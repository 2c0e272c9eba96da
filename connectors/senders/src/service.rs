//! The dispatch role: for every enabled sender in `config.senders`, one runner over its lane
//! topics in strict priority (consumer group `switchyard.dispatch.<sender>.lanes`; on first
//! start it carries over where the per-lane groups of earlier versions stopped), built by its
//! kind from the registry, started as senders appear. A sender whose record cannot be built is
//! logged and tried again when its record changes (or, for a retriable start error, on the
//! next look).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use switchyard_runtime::{
    CancellationToken, ConfigTables, OldGroup, RunnerOptions, Runtime, RuntimeError, Table,
    carry_offsets, names,
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

/// The consumer group of `sender`'s dispatchers: one for all its lanes.
pub fn dispatch_group(sender: &str) -> String {
    format!("switchyard.dispatch.{sender}.lanes")
}

/// The per-lane groups of versions before one group read every lane, each with its lane topic.
fn lane_groups(sender: &str) -> Vec<OldGroup> {
    names::LANES
        .iter()
        .map(|lane| {
            OldGroup::new(
                format!("switchyard.{}", names::dispatch_stage(sender, lane)),
                names::sender_lane(sender, lane),
            )
        })
        .collect()
}

/// Carry the per-lane groups' offsets over to `group` (`switchyard_runtime::group_upgrade`):
/// reading the lanes from the beginning instead would send every message again. Waits while
/// an old dispatcher still reads a lane (it would send what this one sends) and retries until
/// the broker takes the offsets; `false` when stopped first.
async fn carried_over(
    runtime: &Runtime,
    sender: &str,
    group: &str,
    shutdown: &CancellationToken,
) -> bool {
    carry_offsets(
        &runtime.kafka,
        "dispatch",
        group,
        &lane_groups(sender),
        shutdown,
    )
    .await
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
            let processor = Arc::new(dispatcher);
            let topics = processor.topics();
            let topic_refs: Vec<&str> = topics.iter().map(String::as_str).collect();
            let stage = names::dispatch_stage(&sender.name, names::NORMAL_LANE);
            let mut options = RunnerOptions::new(&stage, &topic_refs).lanes_in_priority_order();
            options.group_id = dispatch_group(&sender.name);
            options.max_batch = 200;
            let (runtime, shutdown, name) =
                (runtime.clone(), shutdown.clone(), sender.name.clone());
            tasks.push(tokio::spawn(async move {
                if carried_over(&runtime, &name, &options.group_id, &shutdown).await
                    && let Err(e) =
                        switchyard_runtime::run(&runtime, processor, options, shutdown).await
                {
                    tracing::error!(stage = "dispatch", sender = %name, error = %e, "dispatcher stopped");
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
