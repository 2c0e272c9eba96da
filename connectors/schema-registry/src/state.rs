//! The registry's state, rebuilt by applying the `_schemas` log in order. Records use the
//! Confluent Schema Registry's own key/value JSON, so its topic format is the familiar one.
//! When two instances race, the first record in the log wins; the loser rewrites its key.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::Compatibility;

/// Key of a `_schemas` record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "keytype", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LogKey {
    Schema {
        subject: String,
        version: u32,
        magic: u32,
    },
    Config {
        subject: Option<String>,
        magic: u32,
    },
    Noop {
        magic: u32,
    },
}

/// Value of a SCHEMA record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SchemaValue {
    pub subject: String,
    pub version: u32,
    pub id: u32,
    pub schema: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_type: Option<String>,
    #[serde(default)]
    pub deleted: bool,
}

/// Value of a CONFIG record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigValue {
    pub compatibility_level: Compatibility,
}

/// One version of a subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    pub id: u32,
    pub deleted: bool,
}

/// A registered schema text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSchema {
    pub schema: String,
    pub normalized: String,
}

/// Everything the registry knows.
#[derive(Debug, Clone, Default)]
pub struct RegistryState {
    schemas: HashMap<u32, StoredSchema>,
    ids_by_normalized: HashMap<String, u32>,
    subjects: BTreeMap<String, BTreeMap<u32, Version>>,
    global: Option<Compatibility>,
    per_subject: HashMap<String, Compatibility>,
}

/// Whitespace- and key-order-insensitive form of a schema, used to recognise "the same schema".
pub fn normalize(schema: &str) -> Result<String, String> {
    let json: serde_json::Value = serde_json::from_str(schema).map_err(|e| e.to_string())?;
    Ok(json.to_string())
}

impl RegistryState {
    /// Apply one log record. Malformed or losing records are reported and leave state as is.
    pub fn apply(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<(), String> {
        let key: LogKey = serde_json::from_slice(key).map_err(|e| format!("bad key: {e}"))?;
        match (key, value) {
            (LogKey::Noop { .. }, _) => Ok(()),
            (
                LogKey::Schema {
                    subject, version, ..
                },
                None,
            ) => {
                if let Some(versions) = self.subjects.get_mut(&subject) {
                    versions.remove(&version);
                    if versions.is_empty() {
                        self.subjects.remove(&subject);
                    }
                }
                Ok(())
            }
            (
                LogKey::Schema {
                    subject, version, ..
                },
                Some(value),
            ) => {
                let value: SchemaValue =
                    serde_json::from_slice(value).map_err(|e| format!("bad value: {e}"))?;
                if value.subject != subject || value.version != version {
                    return Err("key and value disagree".into());
                }
                self.apply_schema(value)
            }
            (LogKey::Config { subject, .. }, None) => {
                match subject {
                    Some(subject) => {
                        self.per_subject.remove(&subject);
                    }
                    None => self.global = None,
                }
                Ok(())
            }
            (LogKey::Config { subject, .. }, Some(value)) => {
                let value: ConfigValue =
                    serde_json::from_slice(value).map_err(|e| format!("bad value: {e}"))?;
                match subject {
                    Some(subject) => {
                        self.per_subject.insert(subject, value.compatibility_level);
                    }
                    None => self.global = Some(value.compatibility_level),
                }
                Ok(())
            }
        }
    }

    fn apply_schema(&mut self, value: SchemaValue) -> Result<(), String> {
        let normalized = normalize(&value.schema)?;
        if let Some(existing) = self.schemas.get(&value.id)
            && existing.normalized != normalized
        {
            return Err(format!("id {} already names another schema", value.id));
        }
        if let Some(&other) = self.ids_by_normalized.get(&normalized)
            && other != value.id
        {
            return Err(format!("schema already has id {other}"));
        }
        let versions = self.subjects.entry(value.subject.clone()).or_default();
        if let Some(existing) = versions.get(&value.version)
            && existing.id != value.id
        {
            return Err(format!(
                "{} version {} already has id {}",
                value.subject, value.version, existing.id
            ));
        }
        versions.insert(
            value.version,
            Version {
                id: value.id,
                deleted: value.deleted,
            },
        );
        self.ids_by_normalized.insert(normalized.clone(), value.id);
        self.schemas.insert(
            value.id,
            StoredSchema {
                schema: value.schema,
                normalized,
            },
        );
        Ok(())
    }

    /// The schema with this id.
    pub fn schema(&self, id: u32) -> Option<&StoredSchema> {
        self.schemas.get(&id)
    }

    /// The id of this schema text, if registered anywhere.
    pub fn id_of(&self, normalized: &str) -> Option<u32> {
        self.ids_by_normalized.get(normalized).copied()
    }

    /// The next free id.
    pub fn next_id(&self) -> u32 {
        self.schemas.keys().max().map_or(1, |m| m + 1)
    }

    /// Subjects with at least one live version.
    pub fn subjects(&self) -> Vec<String> {
        self.subjects
            .iter()
            .filter(|(_, versions)| versions.values().any(|v| !v.deleted))
            .map(|(s, _)| s.clone())
            .collect()
    }

    /// Live versions of a subject, oldest first; `None` when the subject is unknown.
    pub fn versions(&self, subject: &str) -> Option<Vec<(u32, u32)>> {
        let live: Vec<(u32, u32)> = self
            .subjects
            .get(subject)?
            .iter()
            .filter(|(_, v)| !v.deleted)
            .map(|(version, v)| (*version, v.id))
            .collect();
        (!live.is_empty()).then_some(live)
    }

    /// The next version number of a subject (deleted versions keep their numbers).
    pub fn next_version(&self, subject: &str) -> u32 {
        self.subjects
            .get(subject)
            .and_then(|versions| versions.keys().max())
            .map_or(1, |m| m + 1)
    }

    /// The id registered under (subject, version), deleted or not.
    pub fn version_id(&self, subject: &str, version: u32) -> Option<u32> {
        self.subjects.get(subject)?.get(&version).map(|v| v.id)
    }

    /// Subject-level compatibility, if set.
    pub fn subject_compatibility(&self, subject: &str) -> Option<Compatibility> {
        self.per_subject.get(subject).copied()
    }

    /// Global compatibility (BACKWARD unless set).
    pub fn global_compatibility(&self) -> Compatibility {
        self.global.unwrap_or_default()
    }

    /// The level that applies to a subject.
    pub fn effective_compatibility(&self, subject: &str) -> Compatibility {
        self.subject_compatibility(subject)
            .unwrap_or_else(|| self.global_compatibility())
    }

    /// Subjects and versions that use an id.
    pub fn usages(&self, id: u32) -> Vec<(String, u32)> {
        self.subjects
            .iter()
            .flat_map(|(subject, versions)| {
                versions
                    .iter()
                    .filter(move |(_, v)| v.id == id && !v.deleted)
                    .map(move |(version, _)| (subject.clone(), *version))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema_record(subject: &str, version: u32, id: u32, schema: &str) -> (Vec<u8>, Vec<u8>) {
        let key = LogKey::Schema {
            subject: subject.into(),
            version,
            magic: 1,
        };
        let value = SchemaValue {
            subject: subject.into(),
            version,
            id,
            schema: schema.into(),
            schema_type: None,
            deleted: false,
        };
        (
            serde_json::to_vec(&key).expect("key"),
            serde_json::to_vec(&value).expect("value"),
        )
    }

    #[test]
    fn replaying_the_log_rebuilds_ids_and_versions() {
        let mut state = RegistryState::default();
        for (k, v) in [
            schema_record("a-value", 1, 1, r#"{"type":"string"}"#),
            schema_record("a-value", 2, 2, r#"{"type":"long"}"#),
            schema_record("b-value", 1, 1, r#"{ "type" : "string" }"#),
        ] {
            state.apply(&k, Some(&v)).expect("applies");
        }
        assert_eq!(state.versions("a-value"), Some(vec![(1, 1), (2, 2)]));
        assert_eq!(state.versions("b-value"), Some(vec![(1, 1)]));
        assert_eq!(state.next_id(), 3);
        assert_eq!(state.usages(1).len(), 2);
        assert_eq!(
            state.id_of(&normalize(r#"{"type":   "string"}"#).expect("json")),
            Some(1)
        );
    }

    #[test]
    fn first_record_in_the_log_wins_a_race() {
        let mut state = RegistryState::default();
        let (k, v) = schema_record("a-value", 1, 1, r#"{"type":"string"}"#);
        state.apply(&k, Some(&v)).expect("first");
        let (k, v) = schema_record("a-value", 1, 2, r#"{"type":"long"}"#);
        assert!(state.apply(&k, Some(&v)).is_err(), "same version, other id");
        let (k, v) = schema_record("c-value", 1, 1, r#"{"type":"long"}"#);
        assert!(state.apply(&k, Some(&v)).is_err(), "same id, other schema");
        assert_eq!(state.version_id("a-value", 1), Some(1));
    }

    #[test]
    fn config_records_set_and_clear_levels() {
        let mut state = RegistryState::default();
        assert_eq!(state.global_compatibility(), Compatibility::Backward);
        let key = serde_json::to_vec(&LogKey::Config {
            subject: Some("a".into()),
            magic: 0,
        })
        .expect("key");
        let value = serde_json::to_vec(&ConfigValue {
            compatibility_level: Compatibility::Full,
        })
        .expect("value");
        state.apply(&key, Some(&value)).expect("applies");
        assert_eq!(state.effective_compatibility("a"), Compatibility::Full);
        state.apply(&key, None).expect("tombstone");
        assert_eq!(state.effective_compatibility("a"), Compatibility::Backward);
    }

    #[test]
    fn confluent_key_format_is_understood() {
        let mut state = RegistryState::default();
        let key = br#"{"keytype":"SCHEMA","subject":"t-value","version":1,"magic":1}"#;
        let value =
            br#"{"subject":"t-value","version":1,"id":7,"schema":"\"string\"","deleted":false}"#;
        state.apply(key, Some(value)).expect("applies");
        assert_eq!(
            state.schema(7).map(|s| s.schema.as_str()),
            Some("\"string\"")
        );
        state
            .apply(br#"{"keytype":"NOOP","magic":0}"#, None)
            .expect("noop");
    }
}
