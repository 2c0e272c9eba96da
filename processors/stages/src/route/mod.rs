//! route: `messages.validated` and `messages.failover` → `sender.<name>` + `messages.routed`.
//! The carrier of the number (ported numbers first, then the longest prefix; non-phone channels
//! use the channel name as carrier), the rule for (customer, channel) or the default rule, a
//! sender group by smooth weighted round-robin over the ratios (1:1 over 10 messages is exactly
//! 5:5), then the group's senders in turn — only senders that may take traffic now (enabled,
//! heartbeating healthy on `state.sender-health`, or not heard of yet). A message back from
//! dispatch (`messages.failover`) goes to a sender not in its trail; when none is left, or no
//! route exists, a failed DeliveryReport carries the whole trail, so the message still gets its
//! final report.

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
    Codec, CodecError, DispatchRequest, SenderHealth, ValidatedMessage, now_millis,
};

pub use choice::{Destination, NoRoute};
pub use outputs::{ALL_SENDERS_FAILED, NO_ROUTE, Routing, UNUSABLE, route_outputs};
pub use round_robin::SmoothRoundRobin;
/// Output topics (plus `sender.<name>`).
pub use switchyard_runtime::names::{REPORTS, ROUTED};

/// A sender whose heartbeats stopped this long ago is unusable (dispatchers beat every second).
pub const DEFAULT_STALE_AFTER_MS: i64 = 5_000;

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
            },
            RouteInput::Failover(request) => Routing {
                attempt: request.attempt.saturating_add(1),
                trail: request.trail,
                message: request.message,
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
    stale_after_ms: i64,
    store: StateStore,
}

impl Route {
    /// Route by `tables`, leaving out senders `health` says are unusable.
    pub fn new(tables: ConfigTables, health: Table<String, SenderHealth>) -> Self {
        Route {
            tables,
            health,
            stale_after_ms: DEFAULT_STALE_AFTER_MS,
            // Positions never expire: the clock is only asked about expiry.
            store: StateStore::new(STATE_ROUTE, Arc::new(now_millis)),
        }
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
            positions,
            now,
            stale_after_ms: self.stale_after_ms,
            tried: routing.trail.iter().map(|h| h.sender.clone()).collect(),
            unusable: Vec::new(),
            last_resort: false,
        };
        choice.destination(&routing.message, &routing.trail)
    }
}

impl Processor for Route {
    type Input = RouteInput;

    fn process(&self, input: RouteInput, origin: Origin<'_>) -> Result<Vec<Output>, StageError> {
        let routing = input.into_routing();
        let now = now_millis();
        let mut state = self.store.lock(origin.partition);
        let destination = self.destination(&routing, now, &mut *state);
        Ok(route_outputs(routing, destination, now))
    }

    fn state(&self) -> Option<&StateStore> {
        Some(&self.store)
    }
}

#[cfg(test)]
mod tests;
