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

use std::collections::HashMap;
use std::sync::Mutex;

use futures::future::BoxFuture;
use switchyard_runtime::names::FAILOVER;
use switchyard_runtime::{ConfigTables, Origin, Output, Processor, StageError, StageInput, Table};
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

/// The route stage. The round-robin positions are soft state (see
/// docs/decisions/0005-route-round-robin-state.md).
#[derive(Debug)]
pub struct Route {
    tables: ConfigTables,
    health: Table<String, SenderHealth>,
    stale_after_ms: i64,
    positions: Mutex<HashMap<String, SmoothRoundRobin>>,
}

impl Route {
    /// Route by `tables`, leaving out senders `health` says are unusable.
    pub fn new(tables: ConfigTables, health: Table<String, SenderHealth>) -> Self {
        Route {
            tables,
            health,
            stale_after_ms: DEFAULT_STALE_AFTER_MS,
            positions: Mutex::default(),
        }
    }

    /// Where the next attempt of `routing` goes at `now`, or why nowhere.
    pub fn destination(&self, routing: &Routing, now: i64) -> Result<Destination, NoRoute> {
        let mut positions = self
            .positions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut choice = choice::Choice {
            tables: &self.tables,
            health: &self.health,
            positions: &mut positions,
            now,
            stale_after_ms: self.stale_after_ms,
            tried: routing.trail.iter().map(|h| h.sender.clone()).collect(),
            unusable: Vec::new(),
        };
        choice.destination(&routing.message, &routing.trail)
    }
}

impl Processor for Route {
    type Input = RouteInput;

    fn process(&self, input: RouteInput, _origin: Origin<'_>) -> Result<Vec<Output>, StageError> {
        let routing = input.into_routing();
        let now = now_millis();
        let destination = self.destination(&routing, now);
        Ok(route_outputs(routing, destination, now))
    }
}

#[cfg(test)]
mod tests;
