//! RFC 7807 problem details: every error the ingress returns.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// The problem media type.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// The `WWW-Authenticate` challenge of a 401.
pub const CHALLENGE: &str = "Bearer realm=\"switchyard\"";

/// One invalid field of one message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// Index of the message in the batch (0 for a single message).
    pub index: usize,
    pub field: String,
    pub message: String,
}

/// A problem response.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// Headers the answer carries besides the body (`Retry-After`, `RateLimit-*`).
    #[serde(skip)]
    pub headers: Box<[(header::HeaderName, String)]>,
}

impl Problem {
    pub fn new(status: StatusCode, slug: &str, title: &str, detail: impl Into<String>) -> Self {
        Problem {
            kind: format!("https://switchyard.dev/problems/{slug}"),
            title: title.into(),
            status: status.as_u16(),
            detail: detail.into(),
            errors: Vec::new(),
            headers: Box::new([]),
        }
    }

    /// The same problem answered with `headers` too.
    pub fn with_headers(mut self, headers: Vec<(header::HeaderName, String)>) -> Self {
        self.headers = headers.into_boxed_slice();
        self
    }

    /// 401, with the `WWW-Authenticate` challenge RFC 7235 requires of it.
    pub fn unauthorized(detail: &str) -> Self {
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Missing or unknown API key",
            detail,
        )
        .with_headers(vec![(header::WWW_AUTHENTICATE, CHALLENGE.to_string())])
    }

    /// 400: a request that can be read two ways (two `Authorization` headers).
    pub fn ambiguous(detail: impl Into<String>) -> Self {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "ambiguous-request",
            "Ambiguous request",
            detail,
        )
    }

    /// 413: a body over [`crate::api::MAX_BODY_BYTES`], read or declared.
    pub fn body_too_large() -> Self {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body-too-large",
            "Request body too large",
            format!(
                "the body is larger than {} bytes; send fewer messages per request",
                crate::api::MAX_BODY_BYTES
            ),
        )
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::NOT_FOUND, "not-found", "Not found", detail)
    }

    pub fn invalid(detail: impl Into<String>, errors: Vec<FieldError>) -> Self {
        let mut problem = Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-message",
            "Invalid message",
            detail,
        );
        problem.errors = errors;
        problem
    }

    pub fn too_large(detail: impl Into<String>) -> Self {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            "Message too large",
            detail,
        )
    }

    /// A request body the ingress could not read: over [`crate::api::MAX_BODY_BYTES`] (413),
    /// or broken off (400).
    pub fn of_body(rejection: &axum::extract::rejection::BytesRejection) -> Self {
        let status = rejection.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            Problem::body_too_large()
        } else {
            Problem::new(
                status,
                "unreadable-body",
                "The request body could not be read",
                rejection.body_text(),
            )
        }
    }

    /// What a failed publish means for the client: never "retry" for a permanent refusal.
    pub fn of_publish(error: &switchyard_runtime::PublishError) -> Self {
        use switchyard_runtime::PublishError;
        match error {
            PublishError::TooLarge { .. } => Problem::too_large(error.to_string()),
            PublishError::Unavailable { .. } => {
                Problem::unavailable(format!("the broker did not acknowledge: {error}"))
            }
            PublishError::Refused { .. } => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "refused",
                "Refused by the broker",
                error.to_string(),
            ),
            PublishError::Encode(e) if e.is_retriable() => Problem::unavailable(error.to_string()),
            PublishError::Encode(_) => Problem::invalid(error.to_string(), Vec::new()),
        }
    }

    pub fn unavailable(detail: impl Into<String>) -> Self {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "Temporarily unavailable; retry",
            detail,
        )
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_string(&self).unwrap_or_default();
        let mut response = (status, [(header::CONTENT_TYPE, PROBLEM_JSON)], body).into_response();
        for (name, value) in self.headers.into_vec() {
            if let Ok(value) = header::HeaderValue::from_str(&value) {
                response.headers_mut().insert(name, value);
            }
        }
        response
    }
}
