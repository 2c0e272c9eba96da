//! Role health of one process: each role says it is running or has failed; `/healthz` answers
//! 503 while any role has failed, and the process's main loop stops on the first failure so
//! it exits non-zero instead of serving half a pipeline. A stage failing the same work for too
//! long or too often is stuck (`stuck.rs`): `/healthz` answers 503 with the reason while it
//! lasts, and the stage keeps trying.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

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
    /// Per stage, its work items failing now (a batch, or a record of an unordered stage).
    failing: Arc<Mutex<BTreeMap<String, BTreeMap<String, Failing>>>>,
}

/// When a stage is stuck: failing the same work for at least `after`, or more than `attempts`
/// times in a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StuckLimits {
    pub after: Duration,
    pub attempts: u32,
}

impl Default for StuckLimits {
    /// 60 s or 10 failed attempts (with the runner's backoff, 10 attempts take about 45 s).
    fn default() -> Self {
        StuckLimits {
            after: Duration::from_secs(60),
            attempts: 10,
        }
    }
}

/// A stage failing the same work since `since`.
#[derive(Debug, Clone)]
struct Failing {
    since: Instant,
    attempts: u32,
    reason: String,
    limits: StuckLimits,
}

impl Failing {
    fn is_stuck(&self, now: Instant) -> bool {
        self.attempts > self.limits.attempts
            || now.saturating_duration_since(self.since) >= self.limits.after
    }
}

/// A stuck stage, as `/healthz` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StuckReport {
    /// Seconds since the work first failed.
    pub failing_for_seconds: u64,
    /// Failed attempts in a row.
    pub attempts: u32,
    /// The last failure.
    pub reason: String,
}

/// What `/healthz` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HealthReport {
    pub status: &'static str,
    pub roles: BTreeMap<String, RoleState>,
    /// Stages failing the same work for too long or too often (they keep trying).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub stuck: BTreeMap<String, StuckReport>,
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

    /// `item` of `stage` (a batch, or one record of an unordered stage) failed again at `now`
    /// (`reason`); returns whether it is stuck by `limits`. Its first failure starts its clock;
    /// its attempts count its own tries in a row, not those of the records beside it.
    pub fn note_failure(
        &self,
        (stage, item): (&str, &str),
        reason: &str,
        limits: StuckLimits,
        now: Instant,
    ) -> bool {
        let mut failing = self.failing.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = failing
            .entry(stage.to_string())
            .or_default()
            .entry(item.to_string())
            .or_insert_with(|| Failing {
                since: now,
                attempts: 0,
                reason: String::new(),
                limits,
            });
        entry.attempts += 1;
        entry.reason = reason.to_string();
        entry.limits = limits;
        entry.is_stuck(now)
    }

    /// `item` of `stage` is done (`None`: all of its work, e.g. a committed batch or a
    /// rebalance that took it away). Returns whether the stage was stuck at `now` and is no
    /// longer.
    pub fn note_progress(&self, stage: &str, item: Option<&str>, now: Instant) -> bool {
        let mut failing = self.failing.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(items) = failing.get_mut(stage) else {
            return false;
        };
        let was = items.values().any(|f| f.is_stuck(now));
        match item {
            Some(item) => {
                items.remove(item);
            }
            None => items.clear(),
        }
        let is = items.values().any(|f| f.is_stuck(now));
        if items.is_empty() {
            failing.remove(stage);
        }
        was && !is
    }

    /// The stages stuck at `now`, each by its longest-failing item.
    pub fn stuck_at(&self, now: Instant) -> BTreeMap<String, StuckReport> {
        self.failing
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter_map(|(stage, items)| {
                let worst = items
                    .values()
                    .filter(|f| f.is_stuck(now))
                    .min_by_key(|f| f.since)?;
                let report = StuckReport {
                    failing_for_seconds: now.saturating_duration_since(worst.since).as_secs(),
                    attempts: worst.attempts,
                    reason: worst.reason.clone(),
                };
                Some((stage.clone(), report))
            })
            .collect()
    }

    /// The report `/healthz` serves.
    pub fn report(&self) -> HealthReport {
        self.report_at(Instant::now())
    }

    /// The report at `now`: failing once a role failed, else stuck while a stage is.
    pub fn report_at(&self, now: Instant) -> HealthReport {
        let stuck = self.stuck_at(now);
        HealthReport {
            status: match (self.is_healthy(), stuck.is_empty()) {
                (false, _) => "failing",
                (true, false) => "stuck",
                (true, true) => "ok",
            },
            roles: self
                .roles
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
            stuck,
        }
    }
}

/// `GET /healthz`: 200 with every role's state, or 503 when one has failed or a stage is stuck.
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

    #[test]
    fn a_stage_failing_past_its_time_is_stuck_until_it_progresses() {
        let health = Health::default();
        let limits = StuckLimits {
            after: Duration::from_secs(30),
            attempts: 100,
        };
        let t0 = Instant::now();
        assert!(!health.note_failure(("validate", "batch"), "MessageSizeTooLarge", limits, t0));
        assert_eq!(health.report_at(t0 + Duration::from_secs(29)).status, "ok");
        // No further failure is noted (one long wait): the time alone makes it stuck.
        let report = health.report_at(t0 + Duration::from_secs(30));
        assert_eq!(report.status, "stuck");
        assert_eq!(
            report.stuck.get("validate"),
            Some(&StuckReport {
                failing_for_seconds: 30,
                attempts: 1,
                reason: "MessageSizeTooLarge".into()
            })
        );
        assert!(health.note_progress("validate", None, t0 + Duration::from_secs(31)));
        assert_eq!(health.report_at(t0 + Duration::from_secs(32)).status, "ok");
    }

    #[test]
    fn a_stage_failing_too_often_is_stuck_at_once() {
        let health = Health::default();
        let limits = StuckLimits {
            after: Duration::from_secs(3600),
            attempts: 3,
        };
        let t0 = Instant::now();
        for attempt in 1..=3 {
            assert!(
                !health.note_failure(("route", "b"), "broker down", limits, t0),
                "{attempt}"
            );
        }
        assert!(health.note_failure(("route", "b"), "broker down", limits, t0));
        assert_eq!(health.report_at(t0).stuck["route"].attempts, 4);
        // Another stage's progress does not clear it; a failed role outranks stuck.
        assert!(!health.note_progress("validate", None, t0));
        health.set("report", RoleState::Failed("gone".into()));
        assert_eq!(health.report_at(t0).status, "failing");
    }

    #[test]
    fn records_failing_side_by_side_count_their_own_tries_and_clear_their_own() {
        let health = Health::default();
        let limits = StuckLimits {
            after: Duration::from_secs(3600),
            attempts: 3,
        };
        let t0 = Instant::now();
        // 64 submits in flight each waiting out one busy answer: nobody is stuck.
        for record in 0..64 {
            let item = record.to_string();
            assert!(!health.note_failure(("dispatch.a", &item), "busy", limits, t0));
        }
        assert_eq!(health.report_at(t0).status, "ok");
        // One record failing on and on is, though the others finish.
        for _ in 0..3 {
            health.note_failure(("dispatch.a", "7"), "no topic", limits, t0);
        }
        for record in (0..64).filter(|r| *r != 7) {
            health.note_progress("dispatch.a", Some(&record.to_string()), t0);
        }
        assert_eq!(health.report_at(t0).stuck["dispatch.a"].reason, "no topic");
        assert!(health.note_progress("dispatch.a", Some("7"), t0));
        assert_eq!(health.report_at(t0).status, "ok");
    }
}
