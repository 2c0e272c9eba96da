//! `switchyard topics apply`: create the catalog's missing topics and report drift, through
//! rdkafka's admin client. Idempotent; never deletes or alters an existing topic.

use std::collections::HashMap;
use std::time::Duration;

use rdkafka::admin::{
    AdminClient, AdminOptions, ConfigResourceResult, NewTopic, ResourceSpecifier, TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::types::RDKafkaErrorCode;

use crate::{TopicSpec, TopicsError};

const TIMEOUT: Duration = Duration::from_secs(15);

/// A setting of an existing topic that differs from the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drift {
    pub topic: String,
    pub setting: String,
    pub want: String,
    pub have: String,
}

/// What an apply did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyReport {
    pub created: Vec<String>,
    pub unchanged: Vec<String>,
    pub drift: Vec<Drift>,
    /// Topics whose settings the broker would not describe (only partitions were compared).
    pub settings_unchecked: Vec<String>,
}

impl ApplyReport {
    /// True when nothing was created and nothing differs.
    pub fn is_clean(&self) -> bool {
        self.created.is_empty() && self.drift.is_empty()
    }
}

impl std::fmt::Display for ApplyReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for topic in &self.created {
            writeln!(f, "created    {topic}")?;
        }
        for d in &self.drift {
            writeln!(
                f,
                "drift      {}: {} is {} (catalog: {})",
                d.topic, d.setting, d.have, d.want
            )?;
        }
        if !self.settings_unchecked.is_empty() {
            writeln!(
                f,
                "note       the broker does not describe topic settings; only partitions were compared for {} topics",
                self.settings_unchecked.len()
            )?;
        }
        write!(
            f,
            "{} created, {} unchanged, {} drifted",
            self.created.len(),
            self.unchanged.len(),
            self.drift.len()
        )
    }
}

/// Options of an apply.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// Bootstrap servers, e.g. `127.0.0.1:9092`.
    pub brokers: String,
    /// Replication factor of created topics (1 on one machine).
    pub replication_factor: i32,
}

/// Create every missing topic of `specs` and report how existing ones differ.
pub async fn apply(
    specs: &[TopicSpec],
    options: &ApplyOptions,
) -> Result<ApplyReport, TopicsError> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &options.brokers)
        .create()?;
    let metadata = admin.inner().fetch_metadata(None, TIMEOUT)?;
    let existing: HashMap<String, i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.error().is_none())
        .map(|t| (t.name().to_string(), t.partitions().len() as i32))
        .collect();

    let mut report = ApplyReport::default();
    let missing: Vec<&TopicSpec> = specs
        .iter()
        .filter(|s| !existing.contains_key(&s.name))
        .collect();
    create(&admin, &missing, options.replication_factor, &mut report).await?;
    wait_until_visible(&admin, &report.created).await?;

    let present: Vec<&TopicSpec> = specs
        .iter()
        .filter(|s| existing.contains_key(&s.name))
        .collect();
    for spec in &present {
        let have = existing[&spec.name];
        if have != spec.partitions {
            report.drift.push(Drift {
                topic: spec.name.clone(),
                setting: "partitions".into(),
                want: spec.partitions.to_string(),
                have: have.to_string(),
            });
        }
    }
    compare_settings(&admin, &present, &mut report).await;
    for spec in present {
        if !report.drift.iter().any(|d| d.topic == spec.name) {
            report.unchanged.push(spec.name.clone());
        }
    }
    Ok(report)
}

async fn create(
    admin: &AdminClient<DefaultClientContext>,
    missing: &[&TopicSpec],
    replication_factor: i32,
    report: &mut ApplyReport,
) -> Result<(), TopicsError> {
    if missing.is_empty() {
        return Ok(());
    }
    let configs: Vec<Vec<(&str, String)>> = missing.iter().map(|s| s.configs()).collect();
    let new_topics: Vec<NewTopic<'_>> = missing
        .iter()
        .zip(&configs)
        .map(|(spec, configs)| {
            configs.iter().fold(
                NewTopic::new(
                    &spec.name,
                    spec.partitions,
                    TopicReplication::Fixed(replication_factor),
                ),
                |topic, (key, value)| topic.set(key, value),
            )
        })
        .collect();
    let results = admin
        .create_topics(
            &new_topics,
            &AdminOptions::new().operation_timeout(Some(TIMEOUT)),
        )
        .await?;
    for result in results {
        match result {
            Ok(name) => report.created.push(name),
            // Another apply created it meanwhile: that is what we wanted.
            Err((name, RDKafkaErrorCode::TopicAlreadyExists)) => report.unchanged.push(name),
            Err((topic, code)) => {
                return Err(TopicsError::Create {
                    topic,
                    reason: code.to_string(),
                });
            }
        }
    }
    Ok(())
}

/// Kafka answers CreateTopics before every broker's metadata has the topic: wait until the
/// created topics show with a leader for each partition, so whatever runs next finds them.
async fn wait_until_visible(
    admin: &AdminClient<DefaultClientContext>,
    created: &[String],
) -> Result<(), TopicsError> {
    if created.is_empty() {
        return Ok(());
    }
    let deadline = std::time::Instant::now() + TIMEOUT;
    loop {
        let metadata = admin.inner().fetch_metadata(None, TIMEOUT)?;
        let ready = created.iter().all(|name| {
            metadata.topics().iter().any(|t| {
                t.name() == name
                    && t.error().is_none()
                    && !t.partitions().is_empty()
                    && t.partitions().iter().all(|p| p.leader() >= 0)
            })
        });
        if ready {
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            return Err(TopicsError::Create {
                topic: created.join(", "),
                reason: format!("created but not visible within {TIMEOUT:?}"),
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn compare_settings(
    admin: &AdminClient<DefaultClientContext>,
    present: &[&TopicSpec],
    report: &mut ApplyReport,
) {
    if present.is_empty() {
        return;
    }
    let resources: Vec<ResourceSpecifier<'_>> = present
        .iter()
        .map(|s| ResourceSpecifier::Topic(&s.name))
        .collect();
    let results = match admin
        .describe_configs(
            &resources,
            &AdminOptions::new().request_timeout(Some(TIMEOUT)),
        )
        .await
    {
        Ok(results) => results,
        Err(e) => {
            tracing::warn!(error = %e, "broker cannot describe topic settings");
            report.settings_unchecked = present.iter().map(|s| s.name.clone()).collect();
            return;
        }
    };
    for (spec, result) in present.iter().zip(results) {
        match settings_of(result) {
            Some(have) => {
                for (key, want) in spec.configs() {
                    if let Some(value) = have.get(key).filter(|v| **v != want) {
                        report.drift.push(Drift {
                            topic: spec.name.clone(),
                            setting: key.to_string(),
                            want,
                            have: value.clone(),
                        });
                    }
                }
            }
            None => report.settings_unchecked.push(spec.name.clone()),
        }
    }
}

fn settings_of(result: ConfigResourceResult) -> Option<HashMap<String, String>> {
    let resource = result.ok()?;
    let settings: HashMap<String, String> = resource
        .entries
        .into_iter()
        .filter_map(|e| e.value.map(|v| (e.name, v)))
        .collect();
    (!settings.is_empty()).then_some(settings)
}
