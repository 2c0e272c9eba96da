//! route: `messages.validated` and `messages.failover` → `sender.<name>` + `messages.routed`.
//! The carrier of the number (ported numbers first, then the longest prefix; non-phone channels
//! use the channel name as carrier), the rule for (customer, channel) or the default rule, a
//! sender group by smooth weighted round-robin over the ratios (1:1 over 10 messages is exactly
//! 5:5), then the group's senders in turn — only senders that may take traffic now (enabled,
//! heartbeating healthy on `state.sender-health`, or not heard of yet, and not drained by an
//! operator on `state.sender-drains`). A message back from dispatch (`messages.failover`) goes
//! to a sender not in its trail (in the drain's group first, if it names one), once per
//! attempt however often it is handed back; when none is left, or no route exists, a failed
//! DeliveryReport carries the whole trail, so the message still gets its final report.

mod choice;
mod outputs;
mod round_robin;

use std::sync::Arc;

use futures::future::BoxFuture;
use switchyard_runtime::names::{FAILOVER, STATE_ROUTE};
use switchyard_runtime::{
    ConfigTables, Origin, Output, Processor, StageError, StageInput, StateAccess, StateStore, Table,
};
use switchyard_schemas::{
    Codec, CodecError, DispatchRequest, SenderDrain, SenderHealth, StateEntry, ValidatedMessage,
    now_millis,
};

pub use choice::{Destination, NoRoute};
pub use outputs::{ALL_SENDERS_FAILED, NO_ROUTE, Routing, UNUSABLE, route_outputs};
pub use round_robin::SmoothRoundRobin;
/// Output topics (plus `sender.<name>`).
pub use switchyard_runtime::names::{REPORTS, ROUTED};

/// How long route remembers that it routed an attempt handed back from dispatch, to drop a
/// second copy (a dispatcher that crashed after handing it back, before committing): a day.
pub const HANDED_BACK_KEPT_MS: i64 = 24 * 3_600_000;

/// A sender whose heartbeats stopped this long ago is unusable (dispatchers beat every second).
pub const DEFAULT_STALE_AFTER_MS: i64 = switchyard_schemas::HEARTBEAT_STALE_AFTER_MS;

/// What route reads.
#[derive(Debug, Clone, PartialEq)]
pub enum RouteInput {
    /// A validated message, on its first attempt.
    Validated(Box<ValidatedMessage>),
    /// A message its sender could not take, with the trail so far.
    Failover(Box<DispatchRequest>),
}

impl StageInput for RouteInput {
    fn decode<'a>(
        codec: &'a Codec,
        topic: &'a str,
        payload: &'a [u8],
    ) -> BoxFuture<'a, Result<Self, CodecError>> {
        Box::pin(async move {
            if topic == FAILOVER {
                codec
                    .decode(payload)
                    .await
                    .map(|r| RouteInput::Failover(Box::new(r)))
            } else {
                codec
                    .decode(payload)
                    .await
                    .map(|m| RouteInput::Validated(Box::new(m)))
            }
        })
    }
}

impl RouteInput {
    /// The message, its trail and this attempt's number.
    pub fn into_routing(self) -> Routing {
        match self {
            RouteInput::Validated(message) => Routing {
                message: *message,
                trail: Vec::new(),
                attempt: 1,
                prefer_group: None,
            },
            RouteInput::Failover(request) => Routing {
                attempt: request.attempt.saturating_add(1),
                trail: request.trail,
                message: request.message,
                prefer_group: request.prefer_group,
            },
        }
    }
}

/// The route stage. Its round-robin positions live in a runtime state store on `state.route`,
/// per input partition, so a restart or a rebalance picks on where it left off (decision
/// 0022; this replaces the soft state of decision 0005).
#[derive(Debug)]
pub struct Route {
    tables: ConfigTables,
    health: Table<String, SenderHealth>,
    drains: Table<String, SenderDrain>,
    stale_after_ms: i64,
    store: StateStore,
}

impl Route {
    /// Route by `tables`, leaving out senders `health` says are unusable.
    pub fn new(tables: ConfigTables, health: Table<String, SenderHealth>) -> Self {
        Route {
            tables,
            health,
            drains: Table::from_entries(switchyard_runtime::names::SENDER_DRAINS, []),
            stale_after_ms: DEFAULT_STALE_AFTER_MS,
            // Positions never expire: the clock is only asked about expiry.
            store: StateStore::new(STATE_ROUTE, Arc::new(now_millis)),
        }
    }

    /// The same route, sending nothing to senders `drains` says operators drain.
    pub fn with_drains(self, drains: Table<String, SenderDrain>) -> Self {
        Route { drains, ..self }
    }

    /// Where the next attempt of `routing` goes at `now`, or why nowhere; the round-robin
    /// positions are read from and moved in `positions` (the input partition's state).
    pub fn destination(
        &self,
        routing: &Routing,
        now: i64,
        positions: &mut dyn StateAccess,
    ) -> Result<Destination, NoRoute> {
        let mut choice = choice::Choice {
            tables: &self.tables,
            health: &self.health,
            drains: &self.drains,
            positions,
            now,
            stale_after_ms: self.stale_after_ms,
            tried: routing.trail.iter().map(|h| h.sender.clone()).collect(),
            unusable: Vec::new(),
            last_resort: false,
        };
        choice.destination(
            &routing.message,
            &routing.trail,
            routing.prefer_group.as_deref(),
        )
    }
}

impl Processor for Route {
    type Input = RouteInput;

    fn process(&self, input: RouteInput, origin: Origin<'_>) -> Result<Vec<Output>, StageError> {
        let now = now_millis();
        let mut state = self.store.lock(origin.partition);
        if let RouteInput::Failover(request) = &input
            && !first_hand_back(&mut *state, request, now)
        {
            tracing::warn!(stage = "route", topic = FAILOVER, message_id = %request.message_id, attempt = request.attempt, "a second copy of a handed-back attempt: dropped, the first was routed");
            return Ok(Vec::new());
        }
        let routing = input.into_routing();
        let destination = self.destination(&routing, now, &mut *state);
        let lane = crate::lane::lane_of(&routing.message, &self.tables);
        Ok(route_outputs(routing, destination, lane, now))
    }

    fn unproducible(&self, input: RouteInput, _origin: Origin<'_>, reason: &str) -> Vec<Output> {
        let routing = input.into_routing();
        let report = switchyard_schemas::unproducible::failed_report(
            "route",
            &routing.message.message_id,
            &routing.message.submission,
            (routing.attempt, &routing.trail),
            reason,
            now_millis(),
        );
        vec![Output::new(REPORTS, report.message_id.clone(), report)]
    }

    fn state(&self) -> Option<&StateStore> {
        Some(&self.store)
    }
}

/// Whether this is the first time `request` (its message and attempt) came back from dispatch;
/// remembers it in `state` if so. Every copy after the first is dropped, so a handed-back
/// attempt is routed once (decision 0024).
pub fn first_hand_back(state: &mut dyn StateAccess, request: &DispatchRequest, now: i64) -> bool {
    let key = format!(
        "back\u{241F}{}\u{241F}{}",
        request.message_id, request.attempt
    );
    if state.get(&key).is_some() {
        return false;
    }
    state.put(
        &key,
        StateEntry {
            text: None,
            amount: 0,
            expires_at: Some(now + HANDED_BACK_KEPT_MS),
        },
    );
    true
}

#[cfg(test)]
mod tests;
