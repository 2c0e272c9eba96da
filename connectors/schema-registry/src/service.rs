//! The registry's operations over its log: register, look up, check compatibility, configure.

use apache_avro::Schema;

use crate::RegistryError;
use crate::compatibility::{Compatibility, incompatibilities};
use crate::log::SchemaLog;
use crate::state::{ConfigValue, LogKey, SchemaValue, normalize};

/// How many times a registration retries after losing a race with another instance.
const RACE_RETRIES: usize = 5;

/// One registered version of a subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectVersion {
    pub subject: String,
    pub version: u32,
    pub id: u32,
    pub schema: String,
}

/// The registry service.
#[derive(Debug, Clone)]
pub struct Registry {
    log: SchemaLog,
    /// One registration at a time per instance (several instances are ordered by the log).
    writes: std::sync::Arc<tokio::sync::Mutex<()>>,
}

/// Check that a schema is Avro and valid; returns the parsed schema.
fn parse(schema: &str, schema_type: Option<&str>) -> Result<Schema, RegistryError> {
    if let Some(kind) = schema_type.filter(|t| !t.eq_ignore_ascii_case("AVRO")) {
        return Err(RegistryError::InvalidSchema(format!(
            "schema type {kind} is not supported; only AVRO"
        )));
    }
    Schema::parse_str(schema).map_err(|e| RegistryError::InvalidSchema(e.to_string()))
}

impl Registry {
    /// A registry over an opened log.
    pub fn new(log: SchemaLog) -> Self {
        Registry {
            log,
            writes: Default::default(),
        }
    }

    /// Register `schema` under `subject`: the same schema gets the same id; a new version must
    /// be compatible with the subject's level.
    pub async fn register(
        &self,
        subject: &str,
        schema: &str,
        schema_type: Option<&str>,
    ) -> Result<SubjectVersion, RegistryError> {
        let parsed = parse(schema, schema_type)?;
        let normalized = normalize(schema).map_err(RegistryError::InvalidSchema)?;
        let _guard = self.writes.lock().await;
        for _ in 0..RACE_RETRIES {
            self.log.catch_up().await?;
            let (existing, id, version) = {
                let state = self.log.read();
                let known_id = state.id_of(&normalized);
                let versions = state.versions(subject).unwrap_or_default();
                if let Some(&(version, id)) = versions.iter().find(|(_, id)| Some(*id) == known_id)
                {
                    return Ok(SubjectVersion {
                        subject: subject.into(),
                        version,
                        id,
                        schema: schema.into(),
                    });
                }
                let existing: Vec<Schema> = versions
                    .iter()
                    .filter_map(|(_, id)| state.schema(*id))
                    .filter_map(|s| Schema::parse_str(&s.schema).ok())
                    .collect();
                let problems =
                    incompatibilities(state.effective_compatibility(subject), &parsed, &existing);
                if !problems.is_empty() {
                    return Err(RegistryError::Incompatible {
                        subject: subject.into(),
                        details: problems.join("; "),
                    });
                }
                (
                    existing,
                    known_id.unwrap_or_else(|| state.next_id()),
                    state.next_version(subject),
                )
            };
            drop(existing);
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
            self.log
                .append(&to_json(&key)?, Some(&to_json(&value)?))
                .await?;
            let winner = self.log.read().version_id(subject, version);
            if winner == Some(id) {
                tracing::info!(subject, version, id, "schema registered");
                return Ok(SubjectVersion {
                    subject: subject.into(),
                    version,
                    id,
                    schema: schema.into(),
                });
            }
            // Another instance wrote first: make the log's last word on this key the winner's
            // (so compaction keeps it), then try again with fresh numbers.
            tracing::warn!(subject, version, "lost a registration race; retrying");
            self.rewrite_winner(subject, version).await?;
        }
        Err(RegistryError::Store(
            "too many concurrent registrations; try again".into(),
        ))
    }

    async fn rewrite_winner(&self, subject: &str, version: u32) -> Result<(), RegistryError> {
        let winner = {
            let state = self.log.read();
            state
                .version_id(subject, version)
                .and_then(|id| state.schema(id).map(|s| (id, s.schema.clone())))
        };
        let key = LogKey::Schema {
            subject: subject.into(),
            version,
            magic: 1,
        };
        match winner {
            Some((id, schema)) => {
                let value = SchemaValue {
                    subject: subject.into(),
                    version,
                    id,
                    schema,
                    schema_type: None,
                    deleted: false,
                };
                self.log
                    .append(&to_json(&key)?, Some(&to_json(&value)?))
                    .await
            }
            // Our record lost on its id, not its version: the retry reuses this key.
            None => Ok(()),
        }
    }

    /// The version of `subject` holding `schema`, if registered there.
    pub async fn lookup(
        &self,
        subject: &str,
        schema: &str,
        schema_type: Option<&str>,
    ) -> Result<SubjectVersion, RegistryError> {
        parse(schema, schema_type)?;
        let normalized = normalize(schema).map_err(RegistryError::InvalidSchema)?;
        self.log.catch_up().await?;
        let state = self.log.read();
        let versions = state
            .versions(subject)
            .ok_or_else(|| RegistryError::SubjectNotFound(subject.into()))?;
        let id = state.id_of(&normalized);
        versions
            .into_iter()
            .find(|(_, v_id)| Some(*v_id) == id)
            .map(|(version, id)| SubjectVersion {
                subject: subject.into(),
                version,
                id,
                schema: schema.into(),
            })
            .ok_or_else(|| RegistryError::SchemaNotFound("under this subject".into()))
    }

    /// The schema text of an id.
    pub fn schema_by_id(&self, id: u32) -> Result<String, RegistryError> {
        self.log
            .read()
            .schema(id)
            .map(|s| s.schema.clone())
            .ok_or_else(|| RegistryError::SchemaNotFound(id.to_string()))
    }

    /// Subjects and versions using an id.
    pub fn usages(&self, id: u32) -> Result<Vec<(String, u32)>, RegistryError> {
        self.schema_by_id(id)?;
        Ok(self.log.read().usages(id))
    }

    /// Every subject with a live version.
    pub fn subjects(&self) -> Vec<String> {
        self.log.read().subjects()
    }

    /// Live version numbers of a subject.
    pub fn versions(&self, subject: &str) -> Result<Vec<u32>, RegistryError> {
        self.log
            .read()
            .versions(subject)
            .map(|v| v.into_iter().map(|(version, _)| version).collect())
            .ok_or_else(|| RegistryError::SubjectNotFound(subject.into()))
    }

    /// One version (`latest`, `-1` or a number) of a subject.
    pub fn version(&self, subject: &str, version: &str) -> Result<SubjectVersion, RegistryError> {
        let state = self.log.read();
        let versions = state
            .versions(subject)
            .ok_or_else(|| RegistryError::SubjectNotFound(subject.into()))?;
        let found = match version {
            "latest" | "-1" => versions.last().copied(),
            number => {
                let wanted: u32 = number.parse().map_err(|_| {
                    RegistryError::BadRequest(format!(
                        "version {number:?} is not a number or latest"
                    ))
                })?;
                versions.into_iter().find(|(v, _)| *v == wanted)
            }
        };
        let (version_number, id) =
            found.ok_or_else(|| RegistryError::VersionNotFound(subject.into(), version.into()))?;
        let schema = state
            .schema(id)
            .map(|s| s.schema.clone())
            .ok_or_else(|| RegistryError::SchemaNotFound(id.to_string()))?;
        Ok(SubjectVersion {
            subject: subject.into(),
            version: version_number,
            id,
            schema,
        })
    }

    /// Whether `schema` could be registered as the next version of `subject`, checked against
    /// `version` (or every version for a transitive level); the reasons when not.
    pub fn check(
        &self,
        subject: &str,
        version: &str,
        schema: &str,
        schema_type: Option<&str>,
    ) -> Result<Vec<String>, RegistryError> {
        let parsed = parse(schema, schema_type)?;
        let level = self.log.read().effective_compatibility(subject);
        let against: Vec<Schema> = match level {
            Compatibility::BackwardTransitive
            | Compatibility::ForwardTransitive
            | Compatibility::FullTransitive => {
                let state = self.log.read();
                state
                    .versions(subject)
                    .ok_or_else(|| RegistryError::SubjectNotFound(subject.into()))?
                    .iter()
                    .filter_map(|(_, id)| state.schema(*id))
                    .filter_map(|s| Schema::parse_str(&s.schema).ok())
                    .collect()
            }
            _ => {
                let existing = self.version(subject, version)?;
                vec![
                    Schema::parse_str(&existing.schema)
                        .map_err(|e| RegistryError::InvalidSchema(e.to_string()))?,
                ]
            }
        };
        Ok(incompatibilities(level, &parsed, &against))
    }

    /// The global level.
    pub fn global_compatibility(&self) -> Compatibility {
        self.log.read().global_compatibility()
    }

    /// A subject's own level (`None` if it has none).
    pub fn subject_compatibility(&self, subject: &str) -> Option<Compatibility> {
        self.log.read().subject_compatibility(subject)
    }

    /// A subject's effective level (its own, else the global one).
    pub fn effective_compatibility(&self, subject: &str) -> Compatibility {
        self.log.read().effective_compatibility(subject)
    }

    /// Set the global level (`subject` None) or a subject's level.
    pub async fn set_compatibility(
        &self,
        subject: Option<&str>,
        level: Compatibility,
    ) -> Result<(), RegistryError> {
        let key = LogKey::Config {
            subject: subject.map(str::to_string),
            magic: 0,
        };
        let value = ConfigValue {
            compatibility_level: level,
        };
        self.log
            .append(&to_json(&key)?, Some(&to_json(&value)?))
            .await
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, RegistryError> {
    serde_json::to_vec(value).map_err(RegistryError::store)
}
