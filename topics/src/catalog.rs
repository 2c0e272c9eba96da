//! The declarative topic catalog (`topics/catalog.toml`) and the concrete topics it names.

use std::path::Path;

use serde::Deserialize;

use crate::TopicsError;

/// The catalog shipped with switchyard.
pub const BUILTIN: &str = include_str!("../catalog.toml");

/// How a topic keeps its records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Cleanup {
    /// Records expire after `retention_ms`.
    #[default]
    Delete,
    /// Only the latest record per key is kept, forever.
    Compact,
}

impl Cleanup {
    /// The value of the broker's `cleanup.policy` setting.
    pub fn as_str(self) -> &'static str {
        match self {
            Cleanup::Delete => "delete",
            Cleanup::Compact => "compact",
        }
    }
}

/// One concrete topic to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    pub name: String,
    pub partitions: i32,
    pub cleanup: Cleanup,
    /// `None` for compacted topics (kept forever).
    pub retention_ms: Option<i64>,
    pub key: String,
    pub record: String,
}

impl TopicSpec {
    /// The broker settings this topic must have.
    pub fn configs(&self) -> Vec<(&'static str, String)> {
        let mut configs = vec![("cleanup.policy", self.cleanup.as_str().to_string())];
        if let Some(ms) = self.retention_ms {
            configs.push(("retention.ms", ms.to_string()));
        }
        configs
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Defaults {
    partitions: i32,
    retention_ms: i64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeadLetters {
    name: String,
    partitions: i32,
    retention_ms: i64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    name: String,
    key: String,
    record: String,
    #[serde(default)]
    cleanup: Cleanup,
    partitions: Option<i32>,
    retention_ms: Option<i64>,
    #[serde(default)]
    dead_letter: bool,
}

/// The parsed catalog.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    defaults: Defaults,
    dead_letters: DeadLetters,
    senders: Vec<Entry>,
    topic: Vec<Entry>,
}

impl Catalog {
    /// The catalog shipped with switchyard.
    pub fn builtin() -> Result<Self, TopicsError> {
        Self::parse(BUILTIN)
    }

    /// Read a catalog file.
    pub fn load(path: &Path) -> Result<Self, TopicsError> {
        let text = std::fs::read_to_string(path).map_err(|e| TopicsError::Catalog {
            reason: format!("cannot read {}: {e}", path.display()),
        })?;
        Self::parse(&text)
    }

    /// Parse catalog TOML and check it.
    pub fn parse(text: &str) -> Result<Self, TopicsError> {
        let catalog: Catalog = toml::from_str(text).map_err(|e| TopicsError::Catalog {
            reason: e.to_string(),
        })?;
        catalog.check()?;
        Ok(catalog)
    }

    fn check(&self) -> Result<(), TopicsError> {
        let mut seen = std::collections::HashSet::new();
        for entry in &self.topic {
            if !seen.insert(entry.name.as_str()) {
                return Err(TopicsError::Catalog {
                    reason: format!("topic {} is declared twice", entry.name),
                });
            }
            if entry.partitions.is_some_and(|p| p < 1) || self.defaults.partitions < 1 {
                return Err(TopicsError::Catalog {
                    reason: format!("topic {} needs at least one partition", entry.name),
                });
            }
        }
        if self.senders.len() != 1 || !self.senders[0].name.contains("{sender}") {
            return Err(TopicsError::Catalog {
                reason: "exactly one [[senders]] entry with {sender} in its name is required"
                    .into(),
            });
        }
        if !self.dead_letters.name.contains("{topic}") {
            return Err(TopicsError::Catalog {
                reason: "[dead_letters] name must contain {topic}".into(),
            });
        }
        Ok(())
    }

    /// The topic of one sender, e.g. `sender.skt-1`.
    pub fn sender_topic(&self, sender: &str) -> String {
        self.senders[0].name.replace("{sender}", sender)
    }

    /// Every lane topic of one sender (`sender.skt-1.otp`, `sender.skt-1`, …; decision 0023).
    pub fn sender_lane_topics(&self, sender: &str) -> Vec<String> {
        let base = self.sender_topic(sender);
        crate::names::LANES
            .iter()
            .map(|lane| {
                if *lane == crate::names::NORMAL_LANE {
                    base.clone()
                } else {
                    format!("{base}.{lane}")
                }
            })
            .collect()
    }

    /// The dead-letter topic of a topic, e.g. `deadletter.messages.accepted`.
    pub fn dead_letter_topic(&self, topic: &str) -> String {
        self.dead_letters.name.replace("{topic}", topic)
    }

    /// Every concrete topic: the declared ones, each lane of each given sender, and their dead
    /// letters.
    pub fn topics(&self, senders: &[String]) -> Vec<TopicSpec> {
        let mut specs = Vec::new();
        let sender_entries = senders
            .iter()
            .flat_map(|s| self.sender_lane_topics(s))
            .map(|name| Entry {
                name,
                ..self.senders[0].clone()
            });
        for entry in self.topic.iter().cloned().chain(sender_entries) {
            let spec = self.spec(&entry);
            if entry.dead_letter {
                specs.push(TopicSpec {
                    name: self.dead_letter_topic(&entry.name),
                    partitions: self.dead_letters.partitions,
                    cleanup: Cleanup::Delete,
                    retention_ms: Some(self.dead_letters.retention_ms),
                    key: entry.key.clone(),
                    record: format!("bytes of {} + reason headers", entry.name),
                });
            }
            specs.push(spec);
        }
        specs.sort_by(|a, b| a.name.cmp(&b.name));
        specs
    }

    /// The names of the topics declared one by one (not per sender, not dead letters).
    pub fn declared_names(&self) -> Vec<String> {
        self.topic.iter().map(|e| e.name.clone()).collect()
    }

    /// The same specs with every name in `namespace`.
    pub fn in_namespace(specs: Vec<TopicSpec>, namespace: &crate::Namespace) -> Vec<TopicSpec> {
        specs
            .into_iter()
            .map(|spec| TopicSpec {
                name: namespace.physical(&spec.name),
                ..spec
            })
            .collect()
    }

    /// The spec of one declared topic by name.
    pub fn topic(&self, name: &str) -> Option<TopicSpec> {
        self.topic
            .iter()
            .find(|e| e.name == name)
            .map(|e| self.spec(e))
    }

    fn spec(&self, entry: &Entry) -> TopicSpec {
        TopicSpec {
            name: entry.name.clone(),
            partitions: entry.partitions.unwrap_or(self.defaults.partitions),
            cleanup: entry.cleanup,
            retention_ms: match entry.cleanup {
                Cleanup::Compact => None,
                Cleanup::Delete => Some(entry.retention_ms.unwrap_or(self.defaults.retention_ms)),
            },
            key: entry.key.clone(),
            record: entry.record.clone(),
        }
    }
}

/// The retry tier topic for retry `n` (1..=10).
pub fn callback_retry_topic(n: u32) -> String {
    crate::names::callback_retry(n)
}

/// Minutes tier `n` waits after a failure: n² − n + 1 (1, 3, 7, 13, … 91).
pub fn callback_retry_delay_minutes(n: u32) -> u32 {
    n * n - n + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_catalog_has_every_pipeline_topic() {
        let catalog = Catalog::builtin().expect("parses");
        let names: Vec<String> = catalog.topics(&[]).into_iter().map(|t| t.name).collect();
        for topic in [
            "messages.accepted",
            "messages.validated",
            "messages.rejected",
            "messages.routed",
            "messages.dispatched",
            "messages.reports",
            "reports.final",
            "callbacks.exhausted",
            "config.customers",
            "config.clients",
            "config.senders",
            "config.routes",
            "config.policy",
            "config.numbering",
            "state.sender-health",
            "_schemas",
            "deadletter.messages.accepted",
        ] {
            assert!(names.iter().any(|n| n == topic), "{topic} missing");
        }
        for n in 1..=10 {
            assert!(names.contains(&callback_retry_topic(n)), "tier {n} missing");
        }
    }

    #[test]
    fn retry_tiers_follow_the_schedule() {
        let delays: Vec<u32> = (1..=10).map(callback_retry_delay_minutes).collect();
        assert_eq!(delays, vec![1, 3, 7, 13, 21, 31, 43, 57, 73, 91]);
    }

    #[test]
    fn sender_topics_follow_the_naming_rule() {
        let catalog = Catalog::builtin().expect("parses");
        let topics = catalog.topics(&["skt-1".to_string()]);
        let sender = topics
            .iter()
            .find(|t| t.name == "sender.skt-1")
            .expect("sender topic");
        assert_eq!(sender.cleanup, Cleanup::Delete);
        assert!(topics.iter().any(|t| t.name == "deadletter.sender.skt-1"));
        for lane in crate::names::sender_lanes("skt-1") {
            assert!(topics.iter().any(|t| t.name == lane), "{lane} declared");
            assert!(
                topics
                    .iter()
                    .any(|t| t.name == crate::names::dead_letter(&lane))
            );
        }
        assert_eq!(
            catalog.sender_lane_topics("skt-1"),
            crate::names::sender_lanes("skt-1")
        );
    }

    #[test]
    fn compacted_topics_have_no_retention() {
        let catalog = Catalog::builtin().expect("parses");
        let customers = catalog.topic("config.customers").expect("declared");
        assert_eq!(
            customers.configs(),
            vec![("cleanup.policy", "compact".to_string())]
        );
    }

    #[test]
    fn duplicate_topics_are_refused() {
        let text =
            BUILTIN.to_string() + "\n[[topic]]\nname = \"_schemas\"\nkey = \"k\"\nrecord = \"r\"\n";
        let err = Catalog::parse(&text).expect_err("duplicate");
        assert!(err.to_string().contains("declared twice"));
    }
}
