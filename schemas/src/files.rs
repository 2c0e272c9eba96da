//! The `.avsc` files of `schemas/avro/`, resolved into self-contained schemas.
//!
//! A file names the types it shares with other files (`io.switchyard.Channel`, ...) by their
//! full name. Before a schema is parsed or registered, every such reference is replaced by the
//! referenced file's definition at its first use, so each registered schema stands alone and
//! keeps its docs and defaults (which the registry's compatibility check needs).

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use apache_avro::Schema;
use serde_json::Value as Json;

use crate::SchemaError;

/// Namespace of every switchyard type.
pub const NAMESPACE: &str = "io.switchyard";

macro_rules! avsc {
    ($($file:literal),* $(,)?) => {
        &[$(($file, include_str!(concat!("../avro/", $file)))),*]
    };
}

/// Every schema file: (file name, JSON text).
pub const FILES: &[(&str, &str)] = avsc![
    "channel.avsc",
    "priority.avsc",
    "result_status.avsc",
    "attachment.avsc",
    "fallback.avsc",
    "submission.avsc",
    "validated_message.avsc",
    "rejection.avsc",
    "route_hop.avsc",
    "routing_decision.avsc",
    "dispatch_request.avsc",
    "dispatch_outcome.avsc",
    "delivery_report.avsc",
    "final_report.avsc",
    "callback_attempt.avsc",
    "sender_health.avsc",
    "sender_drain.avsc",
    "night_ads.avsc",
    "customer_config.avsc",
    "api_client_config.avsc",
    "sender_config.avsc",
    "route_rule.avsc",
    "content_policy.avsc",
    "numbering_entry.avsc",
    "callback_result.avsc",
    "report_ack.avsc",
    "bill_code.avsc",
    "held_message.avsc",
    "state_entry.avsc",
    "balance_kind.avsc",
    "balance_event.avsc",
    "balance_command.avsc",
];

/// A schema resolved from its file: self-contained JSON plus the parsed form.
#[derive(Debug)]
pub struct LoadedSchema {
    /// Full Avro name, e.g. `io.switchyard.Submission`.
    pub full_name: String,
    /// Self-contained JSON, as registered with the schema registry.
    pub json: String,
    /// The parsed schema.
    pub parsed: Schema,
}

/// The resolved schema of a full name, loaded once per process.
pub fn loaded(full_name: &str) -> Result<&'static LoadedSchema, SchemaError> {
    static ALL: OnceLock<Result<HashMap<String, LoadedSchema>, SchemaError>> = OnceLock::new();
    let all = ALL.get_or_init(load_all).as_ref().map_err(Clone::clone)?;
    all.get(full_name)
        .ok_or_else(|| SchemaError::Unknown(full_name.to_string()))
}

/// Full names of every schema file, in file order.
pub fn full_names() -> Result<Vec<String>, SchemaError> {
    FILES
        .iter()
        .map(|(file, text)| parse_json(file, text).and_then(|j| full_name_of(file, &j)))
        .collect()
}

fn load_all() -> Result<HashMap<String, LoadedSchema>, SchemaError> {
    resolve(FILES)
}

/// Resolve a set of schema files (file name, JSON text) the way [`FILES`] is resolved, by full
/// name: e.g. an older version of the schemas, to check a change against it.
pub fn resolve(files: &[(&str, &str)]) -> Result<HashMap<String, LoadedSchema>, SchemaError> {
    let mut by_name = HashMap::new();
    for (file, text) in files {
        let json = parse_json(file, text)?;
        by_name.insert(full_name_of(file, &json)?, json);
    }
    let mut loaded = HashMap::new();
    for (name, json) in &by_name {
        let mut defined = HashSet::new();
        let resolved = inline(json.clone(), &by_name, &mut defined, NAMESPACE);
        let text = resolved.to_string();
        let parsed = Schema::parse_str(&text).map_err(|e| SchemaError::Invalid {
            name: name.clone(),
            reason: e.to_string(),
        })?;
        loaded.insert(
            name.clone(),
            LoadedSchema {
                full_name: name.clone(),
                json: text,
                parsed,
            },
        );
    }
    Ok(loaded)
}

fn parse_json(file: &str, text: &str) -> Result<Json, SchemaError> {
    serde_json::from_str(text).map_err(|e| SchemaError::Invalid {
        name: file.to_string(),
        reason: e.to_string(),
    })
}

fn full_name_of(file: &str, json: &Json) -> Result<String, SchemaError> {
    let name = json.get("name").and_then(Json::as_str);
    let namespace = json
        .get("namespace")
        .and_then(Json::as_str)
        .unwrap_or(NAMESPACE);
    match name {
        Some(n) if n.contains('.') => Ok(n.to_string()),
        Some(n) => Ok(format!("{namespace}.{n}")),
        None => Err(SchemaError::Invalid {
            name: file.to_string(),
            reason: "top-level schema has no name".into(),
        }),
    }
}

/// Replace references to other files' types by their definitions, at first use only.
fn inline(
    json: Json,
    files: &HashMap<String, Json>,
    defined: &mut HashSet<String>,
    namespace: &str,
) -> Json {
    match json {
        Json::String(name) => {
            let full = if name.contains('.') {
                name.clone()
            } else {
                format!("{namespace}.{name}")
            };
            match files.get(&full) {
                Some(definition) if !defined.contains(&full) => {
                    inline(definition.clone(), files, defined, namespace)
                }
                _ => Json::String(name),
            }
        }
        Json::Array(items) => Json::Array(
            items
                .into_iter()
                .map(|item| inline(item, files, defined, namespace))
                .collect(),
        ),
        Json::Object(mut object) => {
            let namespace = object
                .get("namespace")
                .and_then(Json::as_str)
                .unwrap_or(namespace)
                .to_string();
            let is_named = matches!(
                object.get("type").and_then(Json::as_str),
                Some("record" | "enum" | "fixed")
            );
            if let Some(name) = object
                .get("name")
                .and_then(Json::as_str)
                .filter(|_| is_named)
            {
                let full = if name.contains('.') {
                    name.to_string()
                } else {
                    format!("{namespace}.{name}")
                };
                defined.insert(full);
            }
            for key in ["type", "items", "values", "fields"] {
                if let Some(value) = object.remove(key) {
                    object.insert(key.to_string(), inline(value, files, defined, &namespace));
                }
            }
            Json::Object(object)
        }
        other => other,
    }
}
