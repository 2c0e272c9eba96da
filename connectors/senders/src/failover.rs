//! The records of a message its sender cannot take, or may not because an operator drains it
//! (pure): back to route on `messages.failover`, its trail's last hop saying what happened, so
//! route can pick another sender; and a failed `messages.dispatched` outcome for the history.

use switchyard_runtime::Output;
use switchyard_runtime::names::FAILOVER;
use switchyard_schemas::{DispatchRequest, DispatchStatus, FailureClass, SenderDrain};

use crate::outcome::outcome;

/// The outcome a trail records for a sender that could not take the message.
pub const SENDER_DOWN: &str = "sender_down";

/// The outcome a trail records for a message an operator's drain moved off its sender.
pub const DRAINED: &str = "drained";

/// The records of `request` failing over from its sender at `now`, because of `detail`.
pub fn failed_over(request: DispatchRequest, detail: String, now: i64) -> Vec<Output> {
    handed_back(request, SENDER_DOWN, detail, now)
}

/// The records of `request` moved off its sender by `drain` at `now` (to the drain's group
/// first, if it names one).
pub fn drained(mut request: DispatchRequest, drain: &SenderDrain, now: i64) -> Vec<Output> {
    request.prefer_group = drain.to_group.clone();
    let mut detail = match &drain.to_group {
        Some(group) => format!("drained by an operator to group {group}"),
        None => "drained by an operator".to_string(),
    };
    if !drain.reason.is_empty() {
        detail = format!("{detail}: {}", drain.reason);
    }
    handed_back(request, DRAINED, detail, now)
}

/// `request` back to route, its hop marked `hop_outcome` because of `detail`.
fn handed_back(
    mut request: DispatchRequest,
    hop_outcome: &str,
    detail: String,
    now: i64,
) -> Vec<Output> {
    match request.trail.last_mut() {
        Some(hop) if hop.sender == request.sender && hop.attempt == request.attempt => {
            hop.outcome = Some(hop_outcome.into());
            hop.reason = Some(detail.clone());
            hop.at = now;
        }
        // A request from before trails were kept: its hop is made up from the request.
        _ => request.trail.push(switchyard_schemas::RouteHop {
            attempt: request.attempt,
            carrier: request.carrier.clone(),
            sender_group: request.sender_group.clone(),
            sender: request.sender.clone(),
            outcome: Some(hop_outcome.into()),
            at: now,
            reason: Some(detail.clone()),
        }),
    }
    let key = request.message_id.clone();
    vec![
        Output::new(FAILOVER, key, request.clone()),
        outcome(
            request,
            DispatchStatus::Failed,
            Some(FailureClass::SenderDown),
            None,
            Some(format!("handed back to route ({hop_outcome}): {detail}")),
            now,
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::tests::request;
    use switchyard_runtime::names::DISPATCHED;
    use switchyard_schemas::DispatchOutcome;

    #[test]
    fn the_request_goes_back_to_route_with_the_reason_in_its_trail() {
        let mut r = request();
        r.trail = vec![switchyard_schemas::RouteHop {
            attempt: r.attempt,
            carrier: r.carrier.clone(),
            sender_group: r.sender_group.clone(),
            sender: r.sender.clone(),
            outcome: None,
            at: 1,
            reason: None,
        }];
        let outputs = failed_over(r, "connection refused".into(), 50);
        let topics: Vec<&str> = outputs.iter().map(|o| o.topic.as_str()).collect();
        assert_eq!(topics, vec![FAILOVER, DISPATCHED]);
        let back = outputs[0].value::<DispatchRequest>().expect("request");
        assert_eq!(back.trail.len(), 1);
        let hop = &back.trail[0];
        assert_eq!(
            (hop.outcome.as_deref(), hop.reason.as_deref(), hop.at),
            (Some(SENDER_DOWN), Some("connection refused"), 50)
        );
        let outcome = outputs[1].value::<DispatchOutcome>().expect("outcome");
        assert_eq!(outcome.status, DispatchStatus::Failed);
        assert_eq!(outcome.failure_class, Some(FailureClass::SenderDown));
    }

    #[test]
    fn a_drained_request_goes_back_preferring_the_drains_group() {
        let drain = SenderDrain {
            sender: "skt-a".into(),
            to_group: Some("spare".into()),
            requested_at: 1,
            reason: "carrier maintenance".into(),
        };
        let outputs = drained(request(), &drain, 60);
        let back = outputs[0].value::<DispatchRequest>().expect("request");
        assert_eq!(back.prefer_group.as_deref(), Some("spare"));
        let hop = back.trail.last().expect("hop");
        assert_eq!(hop.outcome.as_deref(), Some(DRAINED));
        assert_eq!(
            hop.reason.as_deref(),
            Some("drained by an operator to group spare: carrier maintenance")
        );
    }

    #[test]
    fn a_request_without_a_trail_gets_its_hop() {
        let mut r = request();
        r.trail.clear();
        let outputs = failed_over(r, "not bound".into(), 50);
        let back = outputs[0].value::<DispatchRequest>().expect("request");
        assert_eq!(back.trail.len(), 1);
        assert_eq!(back.trail[0].reason.as_deref(), Some("not bound"));
    }
}
