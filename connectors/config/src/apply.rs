//! `switchyard config apply|show`: compare the file with what the config topics hold and
//! write only the differences (idempotent, like `kubectl apply`); `--prune` deletes entities
//! the file no longer declares.

use std::collections::BTreeMap;

use switchyard_runtime::{CancellationToken, ConfigTables, Output, Runtime, Table, names};
use switchyard_schemas::Record;
use switchyard_topics::{ApplyOptions, apply as apply_topics};

use crate::ConfigError;
use crate::file::{ConfigFile, Desired};
use crate::mask::Masked;

/// What an apply did (or, in a [`Plan`], would do), per topic.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ConfigReport {
    pub created: Vec<String>,
    pub updated: Vec<String>,
    pub deleted: Vec<String>,
    pub unchanged: usize,
    /// Topics of deleted senders (and their dead-letter topics): never deleted by an apply.
    pub sender_topics_left: Vec<String>,
    /// Topics of deleted senders deleted too (`--prune-topics`).
    pub sender_topics_deleted: Vec<String>,
}

impl std::fmt::Display for ConfigReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (verb, keys) in [
            ("created", &self.created),
            ("updated", &self.updated),
            ("deleted", &self.deleted),
        ] {
            for key in keys {
                writeln!(f, "{verb:<8} {key}")?;
            }
        }
        for topic in &self.sender_topics_left {
            writeln!(f, "left in place: topic {topic} of a deleted sender")?;
        }
        for topic in &self.sender_topics_deleted {
            writeln!(f, "deleted  topic {topic} of a deleted sender")?;
        }
        write!(
            f,
            "{} created, {} updated, {} deleted, {} unchanged",
            self.created.len(),
            self.updated.len(),
            self.deleted.len(),
            self.unchanged
        )
    }
}

/// A prune deleting more records than this needs confirming (`config apply --yes`).
pub const PRUNE_CONFIRM_ABOVE: usize = 3;

/// What applying a file would write; nothing is written until [`Plan::execute`].
#[derive(Debug)]
pub struct Plan {
    /// What the apply would do.
    pub report: ConfigReport,
    outputs: Vec<Output>,
    sender_topics: Vec<switchyard_topics::TopicSpec>,
}

impl Plan {
    /// Whether this plan deletes so many records that a person should confirm it.
    pub fn needs_confirmation(&self) -> bool {
        self.report.deleted.len() > PRUNE_CONFIRM_ABOVE
    }

    /// Create the sender topics the file needs, then write the records.
    pub async fn execute(
        self,
        runtime: &Runtime,
        replication_factor: i32,
    ) -> Result<ConfigReport, ConfigError> {
        // Every sender needs its topic before anything routes to it.
        apply_topics(
            &self.sender_topics,
            &ApplyOptions {
                brokers: runtime.kafka.brokers.clone(),
                replication_factor,
            },
        )
        .await?;
        write(runtime, self.outputs).await?;
        Ok(self.report)
    }
}

/// Apply a config file's text: [`plan`], then [`Plan::execute`].
pub async fn apply(
    runtime: &Runtime,
    text: &str,
    prune: bool,
    replication_factor: i32,
) -> Result<ConfigReport, ConfigError> {
    plan(runtime, text, prune)
        .await?
        .execute(runtime, replication_factor)
        .await
}

/// Check a config file and compare it with what the config topics hold; writes nothing.
pub async fn plan(runtime: &Runtime, text: &str, prune: bool) -> Result<Plan, ConfigError> {
    let desired = ConfigFile::parse(text)?.desired()?;
    let senders: Vec<String> = desired.senders.keys().cloned().collect();
    let sender_topics: Vec<String> = senders
        .iter()
        .flat_map(|s| names::sender_lanes(s))
        .collect();
    let specs: Vec<_> = runtime
        .catalog
        .topics(&senders)
        .into_iter()
        .filter(|t| {
            sender_topics
                .iter()
                .any(|topic| t.name == *topic || t.name == names::dead_letter(topic))
        })
        .collect();
    let specs = switchyard_topics::Catalog::in_namespace(specs, &runtime.kafka.namespace);

    let shutdown = CancellationToken::new();
    let current = ConfigTables::start(runtime, shutdown.clone()).await;
    shutdown.cancel();
    let current = current?;
    let mut outputs = Vec::new();
    let mut report = ConfigReport::default();
    if prune {
        let mut gone: Vec<String> = current
            .senders
            .snapshot()
            .into_keys()
            .filter(|name| !desired.senders.contains_key(name))
            .collect();
        gone.sort();
        for name in gone {
            for topic in names::sender_lanes(&name) {
                report.sender_topics_left.push(names::dead_letter(&topic));
                report.sender_topics_left.push(topic);
            }
        }
    }
    if !prune {
        // Clients the file leaves alone stay: the keys must be distinct among all of them.
        let mut after: BTreeMap<String, _> = current.clients.snapshot().into_iter().collect();
        after.extend(desired.clients.clone());
        crate::check::distinct_keys(&after)?;
    }
    let Desired {
        customers,
        clients,
        senders,
        routes,
        numbering,
        bill_codes,
        policies,
    } = desired;
    diff(
        &current.customers,
        customers,
        prune,
        &mut outputs,
        &mut report,
    );
    diff(&current.clients, clients, prune, &mut outputs, &mut report);
    diff(&current.senders, senders, prune, &mut outputs, &mut report);
    diff(&current.routes, routes, prune, &mut outputs, &mut report);
    diff(
        &current.numbering,
        numbering,
        prune,
        &mut outputs,
        &mut report,
    );
    diff(
        &current.bill_codes,
        bill_codes,
        prune,
        &mut outputs,
        &mut report,
    );
    diff(&current.policy, policies, prune, &mut outputs, &mut report);
    Ok(Plan {
        report,
        outputs,
        sender_topics: specs,
    })
}

fn diff<V: Record + Clone + PartialEq>(
    current: &Table<String, V>,
    desired: BTreeMap<String, V>,
    prune: bool,
    outputs: &mut Vec<Output>,
    report: &mut ConfigReport,
) {
    let topic = current.topic().to_string();
    let existing = current.snapshot();
    if prune {
        for key in existing.keys().filter(|k| !desired.contains_key(*k)) {
            outputs.push(Output::tombstone(&topic, key));
            report.deleted.push(format!("{topic} {key}"));
        }
    }
    for (key, value) in desired {
        match existing.get(&key) {
            Some(old) if *old == value => report.unchanged += 1,
            Some(_) => {
                report.updated.push(format!("{topic} {key}"));
                outputs.push(Output::new(&topic, key, value));
            }
            None => {
                report.created.push(format!("{topic} {key}"));
                outputs.push(Output::new(&topic, key, value));
            }
        }
    }
}

async fn write(runtime: &Runtime, outputs: Vec<Output>) -> Result<(), ConfigError> {
    runtime.publish("config", &outputs).await?;
    Ok(())
}

/// Every config record the topics hold, as `topic key json` lines, sorted; secrets (signing
/// secrets, secret sender settings, credentials in URLs) masked.
pub async fn show(runtime: &Runtime) -> Result<Vec<String>, ConfigError> {
    let shutdown = CancellationToken::new();
    let tables = ConfigTables::start(runtime, shutdown.clone()).await;
    shutdown.cancel();
    let tables = tables?;
    let mut lines = Vec::new();
    lines.extend(lines_of(&tables.customers));
    lines.extend(lines_of(&tables.clients));
    lines.extend(lines_of(&tables.senders));
    lines.extend(lines_of(&tables.routes));
    lines.extend(lines_of(&tables.numbering));
    lines.extend(lines_of(&tables.bill_codes));
    lines.extend(lines_of(&tables.policy));
    Ok(lines)
}

fn lines_of<V: Record + Clone + Masked>(table: &Table<String, V>) -> Vec<String> {
    let mut entries: Vec<(String, V)> = table.snapshot().into_iter().collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    entries
        .into_iter()
        .map(|(key, value)| {
            let json = serde_json::to_string(&value.masked()).unwrap_or_else(|e| format!("<{e}>"));
            format!("{} {key} {json}", table.topic())
        })
        .collect()
}
