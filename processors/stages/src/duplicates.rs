//! Duplicate client message ids (pure): per customer, within its window, a second message with
//! a taken `client_message_id` is refused, naming the first message. The window is a state
//! store entry `dup␟<customer>␟<client message id>` → first message id, expiring at the end
//! of the window (the runtime drops expired entries from memory and the changelog).

use switchyard_runtime::StateAccess;
use switchyard_schemas::StateEntry;

/// Hours in a customer's default window.
pub const DEFAULT_WINDOW_HOURS: i32 = 24;

const HOUR_MS: i64 = 3_600_000;

/// The state key of a customer's client message id.
pub fn key(customer_id: &str, client_message_id: &str) -> String {
    format!("dup\u{1f}{customer_id}\u{1f}{client_message_id}")
}

/// The message that took `client_message_id` first, if it is still in the window at `now` and
/// is not `message_id` itself (a held message coming back is not its own duplicate).
pub fn first_taker(
    state: &dyn StateAccess,
    customer_id: &str,
    client_message_id: &str,
    message_id: &str,
    now: i64,
) -> Option<String> {
    taken_by(state, customer_id, client_message_id, now)
        .filter(|first| *first != message_id)
        .map(str::to_string)
}

/// The message holding `client_message_id` in its window at `now`, if any.
pub fn taken_by<'a>(
    state: &'a dyn StateAccess,
    customer_id: &str,
    client_message_id: &str,
    now: i64,
) -> Option<&'a str> {
    let entry = state.get(&key(customer_id, client_message_id))?;
    entry
        .expires_at
        .is_none_or(|at| at > now)
        .then_some(entry.text.as_deref())
        .flatten()
}

/// Take `client_message_id` for `message_id` until `window_hours` after `now`.
pub fn take(
    state: &mut dyn StateAccess,
    customer_id: &str,
    client_message_id: &str,
    message_id: &str,
    now: i64,
    window_hours: i32,
) {
    let hours = if window_hours > 0 {
        window_hours
    } else {
        DEFAULT_WINDOW_HOURS
    };
    state.put(
        &key(customer_id, client_message_id),
        StateEntry {
            text: Some(message_id.to_string()),
            amount: 0,
            expires_at: Some(now + i64::from(hours) * HOUR_MS),
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_runtime::PartitionState;

    #[test]
    fn a_second_id_in_the_window_names_the_first_and_an_expired_one_does_not() {
        let mut state = PartitionState::default();
        assert_eq!(first_taker(&state, "acme", "c-1", "m-1", 0), None);
        take(&mut state, "acme", "c-1", "m-1", 0, 1);
        assert_eq!(
            first_taker(&state, "acme", "c-1", "m-2", HOUR_MS - 1).as_deref(),
            Some("m-1")
        );
        assert_eq!(first_taker(&state, "acme", "c-1", "m-2", HOUR_MS), None);
        assert_eq!(
            first_taker(&state, "beta", "c-1", "m-2", 10),
            None,
            "per customer"
        );
        assert_eq!(
            first_taker(&state, "acme", "c-1", "m-1", 10),
            None,
            "the same message again is not a duplicate"
        );
    }

    #[test]
    fn the_window_defaults_to_a_day() {
        let mut state = PartitionState::default();
        take(&mut state, "acme", "c-1", "m-1", 0, 0);
        assert_eq!(
            state.get(&key("acme", "c-1")).and_then(|e| e.expires_at),
            Some(24 * HOUR_MS)
        );
    }
}
