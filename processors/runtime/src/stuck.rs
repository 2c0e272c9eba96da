//! A runner's watch on its own progress: every failed attempt at the same work is noted, and
//! once the stage has failed for longer than its `StuckLimits` (or more times), `/healthz` says
//! it is stuck, with the reason, and `switchyard_stage_stuck{stage}` is 1 — before anyone
//! notices by lag. Finishing the work clears it.

use std::time::Instant;

use crate::metrics::StageLabel;
use crate::{Runtime, StuckLimits};

/// One runner's stuck watch. Cheap to share by reference across a batch's records.
#[derive(Debug, Clone)]
pub struct StuckWatch {
    stage: String,
    runtime_health: crate::Health,
    metrics: crate::Metrics,
    limits: StuckLimits,
}

impl StuckWatch {
    /// The watch of `stage`, with the runtime's limits.
    pub fn new(runtime: &Runtime, stage: &str) -> Self {
        StuckWatch {
            stage: stage.to_string(),
            runtime_health: runtime.health.clone(),
            metrics: runtime.metrics.clone(),
            limits: runtime.stuck,
        }
    }

    /// `item` (a batch, or one record) failed again (`reason`); it will be tried again.
    pub fn failed(&self, item: &str, reason: &str) {
        let stuck = self.runtime_health.note_failure(
            (&self.stage, item),
            reason,
            self.limits,
            Instant::now(),
        );
        let label = StageLabel {
            stage: self.stage.clone(),
        };
        if stuck && self.metrics.stage_stuck.get_or_create(&label).set(1) == 0 {
            self.metrics
                .stage_stuck_episodes
                .get_or_create(&label)
                .inc();
            tracing::error!(stage = %self.stage, %reason, "stage stuck: failing the same work past its limit; /healthz says so");
        }
    }

    /// `item` is done (`None`: all the stage's work: a committed batch, a rebalance that took
    /// its partitions away).
    pub fn progressed(&self, item: Option<&str>) {
        if self
            .runtime_health
            .note_progress(&self.stage, item, Instant::now())
        {
            tracing::info!(stage = %self.stage, "stage no longer stuck");
            let label = StageLabel {
                stage: self.stage.clone(),
            };
            if let Some(gauge) = self.metrics.stage_stuck.get(&label) {
                gauge.set(0);
            }
        }
    }
}
