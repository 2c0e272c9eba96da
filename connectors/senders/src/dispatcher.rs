//! The dispatch stage of one sender, whatever its kind: consumes its lane topics
//! (`sender.<name>.otp`, `sender.<name>`, …) with one consumer, a batch at a time from the
//! highest lane holding records, waits at the sender's [`Gate`] (lanes in priority order, the
//! window, the sender's rate), hands each request to the sender's [`Carrier`] and
//! writes what became of it (`outcome::outputs`). A
//! sender that has been failing (down, unbound) for its `failover_after_ms` sends what it
//! cannot take back to route (`failover`) instead of waiting; a shorter blip is waited out.

use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use switchyard_runtime::metrics::SenderOutcome;
use switchyard_runtime::{AsyncProcessor, Metrics, Origin, Output, StageError, Table, names};
use switchyard_schemas::{DispatchRequest, SenderDrain, now_millis};

use crate::common::CommonSettings;
use crate::failure::{DispatchFailure, Sent};
use crate::gate::Gate;
use crate::health::HealthTracker;
use crate::registry::Carrier;

/// The `outcome` label of a message handed back to route.
const FAILED_OVER: &str = "failed_over";
/// The `outcome` label of a message an operator's drain handed back to route.
const DRAINED: &str = "drained";

/// One sender's dispatcher.
#[derive(Clone)]
pub struct Dispatcher {
    pub sender: String,
    pub kind: String,
    pub carrier: Arc<dyn Carrier>,
    pub common: CommonSettings,
    /// Its health, shared with the heartbeat.
    pub health: Arc<Mutex<HealthTracker>>,
    /// The process's metrics (submits by outcome).
    pub metrics: Metrics,
    /// The sender's gate: its lanes in priority order.
    pub gate: Arc<Gate>,
    /// Operators' drains: while one stands for this sender, every request goes back to route.
    pub drains: Table<String, SenderDrain>,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher")
            .field("sender", &self.sender)
            .field("kind", &self.kind)
            .finish()
    }
}

impl Dispatcher {
    /// A dispatcher of the normal lane for `carrier`, healthy until it fails; its gate admits
    /// as many submits at once as the carrier's window, at no rate limit until one is set.
    pub fn new(
        sender: &str,
        kind: &str,
        carrier: Arc<dyn Carrier>,
        common: CommonSettings,
        metrics: Metrics,
    ) -> Self {
        let carrier_window = carrier.window().max(1);
        Dispatcher {
            sender: sender.to_string(),
            kind: kind.to_string(),
            carrier,
            common,
            health: Arc::new(Mutex::new(HealthTracker::new(now_millis()))),
            metrics,
            gate: Gate::new(names::LANES.len(), carrier_window, None),
            drains: Table::from_entries(names::SENDER_DRAINS, []),
        }
    }

    /// The same dispatcher, following operators' drains in `drains`.
    pub fn with_drains(self, drains: Table<String, SenderDrain>) -> Self {
        Dispatcher { drains, ..self }
    }

    /// The lane topics this dispatcher consumes, highest priority first.
    pub fn topics(&self) -> Vec<String> {
        names::sender_lanes(&self.sender)
    }

    /// The lane (an index of `names::LANES`, 0 = highest) of a record read from `topic`; a
    /// topic that is none of this sender's lanes counts as the normal lane.
    pub fn lane_of(&self, topic: &str) -> usize {
        names::LANES
            .iter()
            .position(|lane| names::sender_lane(&self.sender, lane) == topic)
            .or_else(|| names::LANES.iter().position(|l| *l == names::NORMAL_LANE))
            .unwrap_or(0)
    }

    fn tracker(&self) -> std::sync::MutexGuard<'_, HealthTracker> {
        self.health
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Count one submit of this sender as `outcome`.
    fn count(&self, outcome: &str) {
        self.metrics
            .sender_submits
            .get_or_create(&SenderOutcome {
                sender: self.sender.clone(),
                outcome: outcome.to_string(),
            })
            .inc();
    }

    fn fail_over_after_ms(&self) -> i64 {
        i64::try_from(self.common.failover_after.as_millis()).unwrap_or(i64::MAX)
    }

    fn throttled_fail_over_after_ms(&self) -> i64 {
        i64::try_from(self.common.throttled_failover_after.as_millis()).unwrap_or(i64::MAX)
    }

    async fn dispatch(
        &self,
        request: DispatchRequest,
        topic: &str,
    ) -> Result<Vec<Output>, StageError> {
        if let Some(drain) = self.drains.get(&self.sender) {
            // Decided here, once per record: sent, or handed back (decision 0024).
            self.count(DRAINED);
            tracing::info!(stage = "dispatch", %topic, message_id = %request.message_id, sender = %self.sender, to_group = ?drain.to_group, "drained: handed back to route");
            return Ok(crate::failover::drained(request, &drain, now_millis()));
        }
        if !self.carrier.bound() {
            // Nothing can be sent; the message waits for the bind or, once the sender has been
            // down long enough, goes to another sender.
            let now = now_millis();
            let failing_over = {
                let mut tracker = self.tracker();
                tracker.down("not bound", now);
                tracker.fail_over(now, self.fail_over_after_ms())
            };
            if failing_over {
                self.count(FAILED_OVER);
                tracing::info!(stage = "dispatch", %topic, message_id = %request.message_id, sender = %self.sender, "not bound: failing over");
                return Ok(crate::failover::failed_over(
                    request,
                    "not bound".into(),
                    now,
                ));
            }
            return Err(DispatchFailure::TryAnotherSender.stage_error(&self.sender, "not bound"));
        }
        // Higher lanes first, within the window and the sender's rate.
        let permit = self.gate.acquire(self.lane_of(topic)).await;
        // The permit is the submit in flight (`gate.in_flight()`) until it is dropped.
        let sent = self.carrier.send(&request).await;
        drop(permit);
        let now = now_millis();
        let (failing_over, throttled_too_long) = {
            let mut tracker = self.tracker();
            tracker.record(&sent, now);
            (
                tracker.fail_over(now, self.fail_over_after_ms()),
                tracker.throttled_too_long(now, self.throttled_fail_over_after_ms()),
            )
        };
        self.count(match &sent {
            Sent::Accepted { .. } => "taken",
            Sent::Failed { failure, .. } => failure.name(),
        });
        if let Sent::Failed { failure, detail } = &sent {
            tracing::info!(stage = "dispatch", %topic, message_id = %request.message_id, sender = %self.sender, kind = %self.kind, failure = failure.name(), %detail, failing_over, "not taken");
            if *failure == DispatchFailure::TryAnotherSender && failing_over {
                self.count(FAILED_OVER);
                return Ok(crate::failover::failed_over(request, detail.clone(), now));
            }
            if *failure == DispatchFailure::SlowDown && throttled_too_long {
                self.count(FAILED_OVER);
                let why = format!(
                    "throttled for over {} s: {detail}",
                    self.common.throttled_failover_after.as_secs()
                );
                return Ok(crate::failover::failed_over(request, why, now));
            }
        }
        crate::outcome::outputs(request, sent, now, self.common.receipt_deadline_ms())
    }
}

impl AsyncProcessor for Dispatcher {
    type Input = DispatchRequest;

    fn process<'a>(
        &'a self,
        input: DispatchRequest,
        origin: Origin<'a>,
    ) -> BoxFuture<'a, Result<Vec<Output>, StageError>> {
        Box::pin(self.dispatch(input, origin.topic))
    }

    fn concurrency(&self) -> usize {
        self.carrier.window().max(1)
    }

    /// A request whose outcome the broker cannot take ends failed (`unproducible`); if it was
    /// submitted, a later receipt finds its final report already written.
    fn unproducible(
        &self,
        input: DispatchRequest,
        _origin: Origin<'_>,
        reason: &str,
    ) -> Vec<Output> {
        let report = switchyard_schemas::unproducible::failed_report(
            "dispatch",
            &input.message_id,
            &input.message.submission,
            (input.attempt, &input.trail),
            reason,
            switchyard_schemas::now_millis(),
        );
        vec![Output::new(
            switchyard_runtime::names::REPORTS,
            report.message_id.clone(),
            report,
        )]
    }
}
