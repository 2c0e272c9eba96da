//! Compatibility levels and the check between a new schema and existing versions, using
//! apache-avro's own schema-resolution checker.

use apache_avro::Schema;
use apache_avro::schema_compatibility::SchemaCompatibility;
use serde::{Deserialize, Serialize};

/// A subject's (or the global) compatibility level, as in Confluent's registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Compatibility {
    None,
    #[default]
    Backward,
    BackwardTransitive,
    Forward,
    ForwardTransitive,
    Full,
    FullTransitive,
}

impl Compatibility {
    /// Parse a level name (`BACKWARD`, `full_transitive`, ...).
    pub fn parse(text: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(text.to_ascii_uppercase())).ok()
    }

    fn transitive(self) -> bool {
        matches!(
            self,
            Compatibility::BackwardTransitive
                | Compatibility::ForwardTransitive
                | Compatibility::FullTransitive
        )
    }

    fn backward(self) -> bool {
        matches!(
            self,
            Compatibility::Backward
                | Compatibility::BackwardTransitive
                | Compatibility::Full
                | Compatibility::FullTransitive
        )
    }

    fn forward(self) -> bool {
        matches!(
            self,
            Compatibility::Forward
                | Compatibility::ForwardTransitive
                | Compatibility::Full
                | Compatibility::FullTransitive
        )
    }
}

/// Why `candidate` cannot follow `existing` (oldest first) under `level`; empty = compatible.
pub fn incompatibilities(
    level: Compatibility,
    candidate: &Schema,
    existing: &[Schema],
) -> Vec<String> {
    let against: &[Schema] = if level.transitive() {
        existing
    } else {
        existing.last().map(std::slice::from_ref).unwrap_or(&[])
    };
    let mut problems = Vec::new();
    for (index, old) in against.iter().enumerate() {
        if level.backward()
            && let Err(e) = SchemaCompatibility::can_read(old, candidate)
        {
            problems.push(format!(
                "new schema cannot read data written with version {}: {e}",
                index + 1
            ));
        }
        if level.forward()
            && let Err(e) = SchemaCompatibility::can_read(candidate, old)
        {
            problems.push(format!(
                "version {} cannot read data written with the new schema: {e}",
                index + 1
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(fields: &str) -> Schema {
        Schema::parse_str(&format!(
            r#"{{"type":"record","name":"R","fields":[{fields}]}}"#
        ))
        .expect("valid")
    }

    #[test]
    fn adding_a_field_with_default_is_backward_compatible() {
        let v1 = schema(r#"{"name":"a","type":"string"}"#);
        let v2 = schema(r#"{"name":"a","type":"string"},{"name":"b","type":"int","default":0}"#);
        assert!(
            incompatibilities(Compatibility::Backward, &v2, std::slice::from_ref(&v1)).is_empty()
        );
        assert!(incompatibilities(Compatibility::Full, &v2, &[v1]).is_empty());
    }

    #[test]
    fn adding_a_field_without_default_is_not_backward_compatible() {
        let v1 = schema(r#"{"name":"a","type":"string"}"#);
        let v2 = schema(r#"{"name":"a","type":"string"},{"name":"b","type":"int"}"#);
        assert_eq!(
            incompatibilities(Compatibility::Backward, &v2, std::slice::from_ref(&v1)).len(),
            1
        );
        // Old readers ignore the new field: forward compatible.
        assert!(
            incompatibilities(Compatibility::Forward, &v2, std::slice::from_ref(&v1)).is_empty()
        );
        assert!(incompatibilities(Compatibility::None, &v2, &[v1]).is_empty());
    }

    #[test]
    fn transitive_checks_every_version() {
        let v1 = schema(r#"{"name":"a","type":"string"}"#);
        let v2 = schema(r#"{"name":"a","type":"string"},{"name":"b","type":"int","default":0}"#);
        // v3 drops a's default-less presence... it needs `b` without default: fine against v2 only if v2 wrote b.
        let v3 = schema(r#"{"name":"a","type":"string"},{"name":"b","type":"int"}"#);
        assert!(
            incompatibilities(Compatibility::Backward, &v3, &[v1.clone(), v2.clone()]).is_empty()
        );
        assert_eq!(
            incompatibilities(Compatibility::BackwardTransitive, &v3, &[v1, v2]).len(),
            1
        );
    }

    #[test]
    fn levels_parse_case_insensitively() {
        assert_eq!(
            Compatibility::parse("full_transitive"),
            Some(Compatibility::FullTransitive)
        );
        assert_eq!(
            Compatibility::parse("BACKWARD"),
            Some(Compatibility::Backward)
        );
        assert_eq!(Compatibility::parse("sideways"), None);
    }
}
