//! Registry errors, each with its HTTP status and Confluent error code.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use thiserror::Error;

/// What a registry call can fail with.
#[derive(Debug, Error)]
pub enum RegistryError {
    #[error("Subject '{0}' not found.")]
    SubjectNotFound(String),
    #[error("Version {1} not found for subject '{0}'.")]
    VersionNotFound(String, String),
    #[error("Schema {0} not found")]
    SchemaNotFound(String),
    #[error("Subject '{0}' does not have subject-level compatibility configured")]
    SubjectConfigNotFound(String),
    #[error("Invalid schema: {0}")]
    InvalidSchema(String),
    #[error("Invalid compatibility level: {0}")]
    InvalidCompatibility(String),
    #[error(
        "Schema being registered is incompatible with an earlier schema for subject \"{subject}\": {details}"
    )]
    Incompatible { subject: String, details: String },
    #[error("Invalid request: {0}")]
    BadRequest(String),
    /// The `_schemas` topic could not be read or written; a retry may help.
    #[error("Error in the backend data store: {0}")]
    Store(String),
}

impl RegistryError {
    /// A store error from anything displayable.
    pub fn store(e: impl std::fmt::Display) -> Self {
        RegistryError::Store(e.to_string())
    }

    /// Whether trying again later may succeed.
    pub fn is_retriable(&self) -> bool {
        matches!(self, RegistryError::Store(_))
    }

    /// HTTP status and Confluent error code.
    pub fn status_and_code(&self) -> (StatusCode, u32) {
        match self {
            RegistryError::SubjectNotFound(_) => (StatusCode::NOT_FOUND, 40401),
            RegistryError::VersionNotFound(..) => (StatusCode::NOT_FOUND, 40402),
            RegistryError::SchemaNotFound(_) => (StatusCode::NOT_FOUND, 40403),
            RegistryError::SubjectConfigNotFound(_) => (StatusCode::NOT_FOUND, 40408),
            RegistryError::InvalidSchema(_) => (StatusCode::UNPROCESSABLE_ENTITY, 42201),
            RegistryError::InvalidCompatibility(_) => (StatusCode::UNPROCESSABLE_ENTITY, 42203),
            RegistryError::BadRequest(_) => (StatusCode::UNPROCESSABLE_ENTITY, 422),
            RegistryError::Incompatible { .. } => (StatusCode::CONFLICT, 409),
            RegistryError::Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, 50001),
        }
    }
}

impl IntoResponse for RegistryError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if status.is_server_error() {
            tracing::error!(error = %self, "registry request failed");
        }
        let body = serde_json::json!({"error_code": code, "message": self.to_string()});
        (
            status,
            [(axum::http::header::CONTENT_TYPE, crate::api::CONTENT_TYPE)],
            Json(body).0.to_string(),
        )
            .into_response()
    }
}
