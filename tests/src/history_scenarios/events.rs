//! Events as the history stage makes them, for scenarios: realistic times from `T0`.

use switchyard_history::{CallbackState, Event, Stage, Summary};

/// 2026-11-22 15:00 UTC: scenario times are realistic milliseconds from here.
pub const T0: i64 = 1_795_359_600_000;

/// An event of message `id` at stage `stage`, setting `status` (if any) for customer acme.
pub fn stage_event(key: &str, id: &str, stage: Stage, status: Option<&str>, at: i64) -> Event {
    Event {
        event_key: key.into(),
        message_id: id.into(),
        kind: match stage {
            Stage::Accepted => "accepted",
            Stage::Validated => "validated",
            Stage::Routed => "routed",
            Stage::Submitted => "submitted",
            Stage::Reported => "report",
            Stage::Final => "final",
        },
        at,
        stage,
        summary: Summary {
            customer_id: Some("acme".into()),
            status: status.map(str::to_string),
            ..Summary::default()
        },
        detail: serde_json::json!({"k": key}),
    }
}

/// The final report of `id` for `customer` (sent by `client`), failed with 3001 or delivered.
pub fn final_event(
    id: &str,
    customer: &str,
    client: Option<&str>,
    done_at: i64,
    status: &str,
) -> Event {
    Event {
        event_key: format!("final/{id}"),
        message_id: id.into(),
        kind: "final",
        at: done_at,
        stage: Stage::Final,
        summary: Summary {
            customer_id: Some(customer.into()),
            client_id: client.map(str::to_string),
            client_message_id: Some(format!("c-{id}")),
            channel: Some("sms".into()),
            to: Some("01012345678".into()),
            status: Some(status.into()),
            result_code: Some(
                if status == "delivered" {
                    "0000"
                } else {
                    "3001"
                }
                .into(),
            ),
            result_text: Some(status.into()),
            carrier: Some("skt".into()),
            sender: Some("skt-a".into()),
            done_at: Some(done_at),
            ..Summary::default()
        },
        detail: serde_json::json!({"attempt": 1}),
    }
}

/// The `n`th webhook result (or ack) of `id`.
pub fn callback_event(id: &str, n: i64, state: CallbackState) -> Event {
    Event {
        event_key: format!("cb/{id}/{n}"),
        message_id: id.into(),
        kind: if state == CallbackState::Acked {
            "acked"
        } else {
            "callback"
        },
        at: T0 + 1_000 + n,
        stage: Stage::Accepted,
        summary: Summary {
            callback: Some(state),
            ..Summary::default()
        },
        detail: serde_json::json!({"n": n}),
    }
}

/// The accepted event of `id` (customer acme unless said), as the ingress records it.
pub fn accepted_event(
    id: &str,
    customer: &str,
    client: Option<&str>,
    channel: &str,
    to: &str,
    at: i64,
) -> Event {
    Event {
        event_key: format!("accepted/{id}"),
        message_id: id.into(),
        kind: "accepted",
        at,
        stage: Stage::Accepted,
        summary: Summary {
            customer_id: Some(customer.into()),
            client_id: client.map(str::to_string),
            client_message_id: Some(format!("c-{id}")),
            channel: Some(channel.into()),
            to: Some(to.into()),
            status: Some("accepted".into()),
            accepted_at: Some(at),
            ..Summary::default()
        },
        detail: serde_json::json!({}),
    }
}
