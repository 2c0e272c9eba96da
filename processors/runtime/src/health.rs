//! Role health of one process: each role says it is running or has failed; `/healthz` answers
//! 503 while any role has failed, and the process's main loop stops on the first failure so
//! it exits non-zero instead of serving half a pipeline.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

/// Where one role is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", content = "error", rename_all = "snake_case")]
pub enum RoleState {
    Starting,
    Running,
    Failed(String),
}

/// The health of every role of this process. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Health {
    roles: Arc<Mutex<BTreeMap<String, RoleState>>>,
    failed: CancellationToken,
}

/// What `/healthz` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HealthReport {
    pub status: &'static str,
    pub roles: BTreeMap<String, RoleState>,
}

impl Health {
    /// Record the state of `role`.
    pub fn set(&self, role: &str, state: RoleState) {
        let failed = matches!(state, RoleState::Failed(_));
        if let RoleState::Failed(error) = &state {
            tracing::error!(role, %error, "role failed");
        }
        self.roles
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(role.to_string(), state);
        if failed {
            self.failed.cancel();
        }
    }

    /// Cancelled once any role has failed.
    pub fn failed(&self) -> CancellationToken {
        self.failed.clone()
    }

    /// Whether every role is starting or running.
    pub fn is_healthy(&self) -> bool {
        !self.failed.is_cancelled()
    }

    /// The report `/healthz` serves.
    pub fn report(&self) -> HealthReport {
        HealthReport {
            status: if self.is_healthy() { "ok" } else { "failing" },
            roles: self
                .roles
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        }
    }
}

/// `GET /healthz`: 200 with every role's state, or 503 when one has failed.
pub fn health_router(health: Health) -> Router {
    Router::new().route(
        "/healthz",
        get(move || {
            let report = health.report();
            async move {
                let status = if report.status == "ok" {
                    StatusCode::OK
                } else {
                    StatusCode::SERVICE_UNAVAILABLE
                };
                (status, axum::Json(report)).into_response()
            }
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_failed_role_makes_the_process_unhealthy() {
        let health = Health::default();
        health.set("validate", RoleState::Running);
        assert!(health.is_healthy());
        assert_eq!(health.report().status, "ok");
        health.set("route", RoleState::Failed("no topic".into()));
        assert!(!health.is_healthy());
        assert!(health.failed().is_cancelled());
        let report = health.report();
        assert_eq!(report.status, "failing");
        assert_eq!(
            report.roles.get("route"),
            Some(&RoleState::Failed("no topic".into()))
        );
    }
}
