//! The records one routing decision becomes (pure): the request on its lane of `sender.<name>` and the
//! decision on `messages.routed`, or a failed report carrying the message's whole trail when
//! no sender can take it.

use switchyard_runtime::Output;
use switchyard_runtime::names::{REPORTS, ROUTED, sender_lane};
use switchyard_schemas::{
    DeliveryReport, DispatchRequest, ResultStatus, RouteHop, RoutingDecision, ValidatedMessage,
    event_id,
};

use super::choice::{Destination, NoRoute};

/// Result code of a message no sender can take on its first attempt.
pub const NO_ROUTE: &str = "no_route";
/// Result code of a message every sender it could go to failed (or was unusable) for.
pub const ALL_SENDERS_FAILED: &str = "all_senders_failed";
/// The outcome a trail records for a sender left out because it was unusable.
pub const UNUSABLE: &str = "unusable";

/// One message at route: what it is and where it has been.
#[derive(Debug, Clone, PartialEq)]
pub struct Routing {
    pub message: ValidatedMessage,
    /// The hops so far (empty for a message from validate), each with its outcome.
    pub trail: Vec<RouteHop>,
    /// This attempt's number (1 for a message from validate).
    pub attempt: i32,
    /// A group to try first (an operator drained the last sender `--to` it).
    pub prefer_group: Option<String>,
}

/// The records of `routing` sent to `destination`'s `lane` (or failed) at `now`.
pub fn route_outputs(
    routing: Routing,
    destination: Result<Destination, NoRoute>,
    lane: &str,
    now: i64,
) -> Vec<Output> {
    let Routing {
        message,
        mut trail,
        attempt,
        prefer_group: _,
    } = routing;
    let id = message.message_id.clone();
    match destination {
        Ok(d) => {
            trail.push(RouteHop {
                attempt,
                carrier: d.carrier.clone(),
                sender_group: d.group.clone(),
                sender: d.sender.name.clone(),
                outcome: None,
                at: now,
                reason: None,
            });
            let s = &message.submission;
            let decision = RoutingDecision {
                message_id: id.clone(),
                customer_id: message.customer_id.clone(),
                channel: s.channel,
                to: s.to.clone(),
                carrier: d.carrier.clone(),
                sender_group: d.group.clone(),
                sender: d.sender.name.clone(),
                attempt,
                priority: s.priority,
                trail: trail.clone(),
                routed_at: now,
            };
            let request = DispatchRequest {
                message_id: id.clone(),
                customer_id: message.customer_id.clone(),
                carrier: d.carrier,
                sender_group: d.group,
                sender: d.sender.name.clone(),
                attempt,
                message,
                trail,
                routed_at: now,
                prefer_group: None,
            };
            vec![
                Output::new(sender_lane(&d.sender.name, lane), id.clone(), request),
                Output::new(ROUTED, id, decision),
            ]
        }
        Err(no_route) => {
            tracing::info!(stage = "route", topic = REPORTS, message_id = %id, reason = %no_route.reason, attempt, "no sender can take it");
            vec![Output::new(
                REPORTS,
                id,
                failed_report(message, trail, attempt, no_route, now),
            )]
        }
    }
}

/// The failed report of a message no sender can take: its trail, plus a hop for every sender
/// of the rule that was left out for its health (outcome `unusable`, with why).
fn failed_report(
    message: ValidatedMessage,
    mut trail: Vec<RouteHop>,
    attempt: i32,
    no_route: NoRoute,
    now: i64,
) -> DeliveryReport {
    let first = trail.is_empty();
    for (carrier, sender, why) in no_route.unusable {
        if trail.iter().any(|h| h.sender == sender.name) {
            continue;
        }
        trail.push(RouteHop {
            attempt,
            carrier,
            sender_group: sender.group,
            sender: sender.name,
            outcome: Some(UNUSABLE.into()),
            at: now,
            reason: Some(why),
        });
    }
    let code = if first { NO_ROUTE } else { ALL_SENDERS_FAILED };
    let s = message.submission;
    let last = trail
        .iter()
        .rev()
        .find(|h| h.outcome.as_deref() != Some(UNUSABLE));
    DeliveryReport {
        event_id: event_id(&[&message.message_id, "route", code, &attempt.to_string()]),
        message_id: message.message_id,
        customer_id: message.customer_id,
        client_id: s.client_id,
        client_message_id: s.client_message_id,
        channel: s.channel,
        to: s.to,
        carrier: last.map(|h| h.carrier.clone()).unwrap_or_default(),
        sender: last.map(|h| h.sender.clone()).unwrap_or_default(),
        carrier_message_id: None,
        status: ResultStatus::Failed,
        carrier_code: String::new(),
        result_code: code.into(),
        result_text: no_route.reason,
        attempt: if first { 0 } else { attempt - 1 },
        submitted_at: None,
        reported_at: now,
        trail,
    }
}
