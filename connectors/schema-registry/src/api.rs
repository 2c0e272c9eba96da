//! The Confluent Schema Registry REST API subset that serializers and tools use.

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{Compatibility, Registry, RegistryError};

/// The registry's media type.
pub const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

/// All routes of the registry API.
pub fn router(registry: Registry) -> Router {
    Router::new()
        .route("/", get(|| async { reply(json!({})) }))
        .route("/schemas/types", get(|| async { reply(json!(["AVRO"])) }))
        .route("/schemas/ids/{id}", get(schema_by_id))
        .route("/schemas/ids/{id}/schema", get(raw_schema_by_id))
        .route("/schemas/ids/{id}/subjects", get(subjects_by_id))
        .route("/schemas/ids/{id}/versions", get(versions_by_id))
        .route("/subjects", get(subjects))
        .route("/subjects/{subject}", post(lookup))
        .route("/subjects/{subject}/versions", get(versions).post(register))
        .route("/subjects/{subject}/versions/{version}", get(version))
        .route(
            "/subjects/{subject}/versions/{version}/schema",
            get(raw_version),
        )
        .route(
            "/compatibility/subjects/{subject}/versions/{version}",
            post(compatibility),
        )
        .route("/config", get(global_config).put(set_global_config))
        .route(
            "/config/{subject}",
            get(subject_config).put(set_subject_config),
        )
        .with_state(registry)
}

fn reply(body: Value) -> Response {
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], body.to_string()).into_response()
}

/// A registration or lookup body: `{"schema": "...", "schemaType": "AVRO"}`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SchemaBody {
    schema: String,
    schema_type: Option<String>,
    #[serde(default)]
    references: Vec<Value>,
}

/// Parse a JSON body whatever its content type (clients send the registry media type).
fn body<T: serde::de::DeserializeOwned>(bytes: &Bytes) -> Result<T, RegistryError> {
    serde_json::from_slice(bytes).map_err(|e| RegistryError::BadRequest(format!("body: {e}")))
}

fn schema_body(bytes: &Bytes) -> Result<SchemaBody, RegistryError> {
    let parsed: SchemaBody = body(bytes)?;
    if !parsed.references.is_empty() {
        return Err(RegistryError::InvalidSchema(
            "schema references are not supported; send a self-contained schema".into(),
        ));
    }
    Ok(parsed)
}

fn id_param(id: &str) -> Result<u32, RegistryError> {
    id.parse()
        .map_err(|_| RegistryError::SchemaNotFound(id.to_string()))
}

async fn schema_by_id(
    State(r): State<Registry>,
    Path(id): Path<String>,
) -> Result<Response, RegistryError> {
    Ok(reply(json!({"schema": r.schema_by_id(id_param(&id)?)?})))
}

async fn raw_schema_by_id(
    State(r): State<Registry>,
    Path(id): Path<String>,
) -> Result<Response, RegistryError> {
    Ok((
        [(header::CONTENT_TYPE, CONTENT_TYPE)],
        r.schema_by_id(id_param(&id)?)?,
    )
        .into_response())
}

async fn subjects_by_id(
    State(r): State<Registry>,
    Path(id): Path<String>,
) -> Result<Response, RegistryError> {
    let subjects: Vec<String> = r
        .usages(id_param(&id)?)?
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    Ok(reply(json!(subjects)))
}

async fn versions_by_id(
    State(r): State<Registry>,
    Path(id): Path<String>,
) -> Result<Response, RegistryError> {
    let usages: Vec<Value> = r
        .usages(id_param(&id)?)?
        .into_iter()
        .map(|(subject, version)| json!({"subject": subject, "version": version}))
        .collect();
    Ok(reply(json!(usages)))
}

async fn subjects(State(r): State<Registry>) -> Response {
    reply(json!(r.subjects()))
}

async fn versions(
    State(r): State<Registry>,
    Path(subject): Path<String>,
) -> Result<Response, RegistryError> {
    Ok(reply(json!(r.versions(&subject)?)))
}

async fn register(
    State(r): State<Registry>,
    Path(subject): Path<String>,
    bytes: Bytes,
) -> Result<Response, RegistryError> {
    let request = schema_body(&bytes)?;
    let registered = r
        .register(&subject, &request.schema, request.schema_type.as_deref())
        .await?;
    Ok(reply(json!({
        "id": registered.id,
        "subject": registered.subject,
        "version": registered.version,
        "schema": registered.schema,
    })))
}

async fn lookup(
    State(r): State<Registry>,
    Path(subject): Path<String>,
    bytes: Bytes,
) -> Result<Response, RegistryError> {
    let request = schema_body(&bytes)?;
    let found = r
        .lookup(&subject, &request.schema, request.schema_type.as_deref())
        .await?;
    Ok(reply(
        json!({"subject": found.subject, "id": found.id, "version": found.version, "schema": found.schema}),
    ))
}

async fn version(
    State(r): State<Registry>,
    Path((subject, version)): Path<(String, String)>,
) -> Result<Response, RegistryError> {
    let found = r.version(&subject, &version)?;
    Ok(reply(
        json!({"subject": found.subject, "id": found.id, "version": found.version, "schema": found.schema}),
    ))
}

async fn raw_version(
    State(r): State<Registry>,
    Path((subject, version)): Path<(String, String)>,
) -> Result<Response, RegistryError> {
    Ok((
        [(header::CONTENT_TYPE, CONTENT_TYPE)],
        r.version(&subject, &version)?.schema,
    )
        .into_response())
}

async fn compatibility(
    State(r): State<Registry>,
    Path((subject, version)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    bytes: Bytes,
) -> Result<Response, RegistryError> {
    let request = schema_body(&bytes)?;
    let problems = r.check(
        &subject,
        &version,
        &request.schema,
        request.schema_type.as_deref(),
    )?;
    let verbose = query.get("verbose").is_some_and(|v| v == "true");
    let mut answer = json!({"is_compatible": problems.is_empty()});
    if verbose {
        answer["messages"] = json!(problems);
    }
    Ok(reply(answer))
}

#[derive(Debug, Deserialize)]
struct ConfigBody {
    compatibility: String,
}

fn level(bytes: &Bytes) -> Result<Compatibility, RegistryError> {
    let request: ConfigBody = body(bytes)?;
    Compatibility::parse(&request.compatibility)
        .ok_or(RegistryError::InvalidCompatibility(request.compatibility))
}

async fn global_config(State(r): State<Registry>) -> Response {
    reply(json!({"compatibilityLevel": r.global_compatibility()}))
}

async fn set_global_config(
    State(r): State<Registry>,
    bytes: Bytes,
) -> Result<Response, RegistryError> {
    let level = level(&bytes)?;
    r.set_compatibility(None, level).await?;
    Ok(reply(json!({"compatibility": level})))
}

async fn subject_config(
    State(r): State<Registry>,
    Path(subject): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, RegistryError> {
    let default_to_global = query.get("defaultToGlobal").is_some_and(|v| v == "true");
    let level = match r.subject_compatibility(&subject) {
        Some(level) => level,
        None if default_to_global => r.effective_compatibility(&subject),
        None => return Err(RegistryError::SubjectConfigNotFound(subject)),
    };
    Ok(reply(json!({"compatibilityLevel": level})))
}

async fn set_subject_config(
    State(r): State<Registry>,
    Path(subject): Path<String>,
    bytes: Bytes,
) -> Result<Response, RegistryError> {
    let level = level(&bytes)?;
    r.set_compatibility(Some(&subject), level).await?;
    Ok(reply(json!({"compatibility": level})))
}
