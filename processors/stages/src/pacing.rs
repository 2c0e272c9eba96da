//! Per-customer, per-channel pacing (pure over a [`StateAccess`]). Each (customer, channel)
//! with a limit has a next free slot, `pace␟<customer>␟<channel>` → nanoseconds since the
//! epoch, spaced 1/limit apart with no burst. A message whose slot has come goes now; any other
//! takes the next slot and waits on `messages.paced` until then, so it never holds up the
//! records behind it (another customer's, or an unlimited channel's).
//!
//! A message that waits (paced, or held for the quiet hours) gets a ticket,
//! `ticket␟<message id>`: when it comes back it is judged without pacing or the quiet hours,
//! and the ticket turns to `released`, so a second copy of the release (the release runner is
//! at least once) is recognised and dropped instead of sent twice.

use switchyard_runtime::StateAccess;
use switchyard_schemas::StateEntry;

/// How long a ticket outlives its release time (a released message is recognised this long).
pub const TICKET_KEPT_MS: i64 = 24 * 3_600_000;

const NS_PER_MS: i64 = 1_000_000;
const NS_PER_SECOND: i64 = 1_000_000_000;

const RELEASED: &str = "released";

/// Why a message waited: it comes back past that rule only, and meets every other again (an
/// ad paced into the quiet hours is held; an ad held overnight is paced in the morning).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Held through the quiet hours (`messages.held`).
    QuietHours,
    /// Over its customer's rate (`messages.paced`).
    Pacing,
}

impl Wait {
    fn as_str(self) -> &'static str {
        match self {
            Wait::QuietHours => "waiting:quiet_hours",
            Wait::Pacing => "waiting:pacing",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "waiting:quiet_hours" => Some(Wait::QuietHours),
            "waiting:pacing" => Some(Wait::Pacing),
            _ => None,
        }
    }
}

fn slot_key(customer_id: &str, channel: &str) -> String {
    format!("pace\u{1f}{customer_id}\u{1f}{channel}")
}

fn ticket_key(message_id: &str) -> String {
    format!("ticket\u{1f}{message_id}")
}

/// When a message may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// Now.
    Now,
    /// At this time (ms since the epoch).
    At(i64),
}

/// Take the next slot of (`customer_id`, `channel`) limited to `per_second` at `now` (ms).
pub fn take_slot(
    state: &mut dyn StateAccess,
    customer_id: &str,
    channel: &str,
    per_second: i32,
    now: i64,
) -> Slot {
    // Nanoseconds, rounded up: never faster than the limit, and no drift worth a message.
    let per_second = i64::from(per_second.max(1));
    let interval_ns = (NS_PER_SECOND + per_second - 1) / per_second;
    let now_ns = now.saturating_mul(NS_PER_MS);
    let key = slot_key(customer_id, channel);
    let free_ns = state.get(&key).map_or(i64::MIN, |e| e.amount);
    // `now` has millisecond resolution: a slot within the current millisecond is now.
    let (slot, next_ns) = if free_ns < now_ns + NS_PER_MS {
        (Slot::Now, free_ns.max(now_ns) + interval_ns)
    } else {
        // Round up: never before the slot.
        (
            Slot::At((free_ns + NS_PER_MS - 1) / NS_PER_MS),
            free_ns + interval_ns,
        )
    };
    state.put(
        &key,
        StateEntry {
            text: None,
            amount: next_ns,
            // An idle pair leaves memory a second after its last slot.
            expires_at: Some(next_ns / NS_PER_MS + 1_000),
        },
    );
    slot
}

/// What a message's ticket says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ticket {
    /// No ticket: a new message.
    None,
    /// It waited for this reason and is back: judge it without that wait.
    Back(Wait),
    /// It was already released once: this is a second copy.
    AlreadyReleased,
}

/// Give a message waiting for `wait` its ticket.
pub fn issue_ticket(state: &mut dyn StateAccess, message_id: &str, wait: Wait, release_at: i64) {
    state.put(
        &ticket_key(message_id),
        StateEntry {
            text: Some(wait.as_str().to_string()),
            amount: release_at,
            expires_at: Some(release_at + TICKET_KEPT_MS),
        },
    );
}

/// Look at a message's ticket; a waiting one is marked released.
pub fn redeem_ticket(state: &mut dyn StateAccess, message_id: &str, now: i64) -> Ticket {
    let key = ticket_key(message_id);
    let Some(entry) = state.get(&key) else {
        return Ticket::None;
    };
    let Some(wait) = entry.text.as_deref().and_then(Wait::parse) else {
        return Ticket::AlreadyReleased;
    };
    state.put(
        &key,
        StateEntry {
            text: Some(RELEASED.to_string()),
            amount: now,
            expires_at: Some(now + TICKET_KEPT_MS),
        },
    );
    Ticket::Back(wait)
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_runtime::PartitionState;

    #[test]
    fn slots_are_spaced_by_the_limit_with_no_burst() {
        let mut state = PartitionState::default();
        assert_eq!(take_slot(&mut state, "a", "sms", 100, 1_000), Slot::Now);
        assert_eq!(
            take_slot(&mut state, "a", "sms", 100, 1_000),
            Slot::At(1_010)
        );
        assert_eq!(
            take_slot(&mut state, "a", "sms", 100, 1_001),
            Slot::At(1_020)
        );
        assert_eq!(
            take_slot(&mut state, "a", "lms", 100, 1_001),
            Slot::Now,
            "per channel"
        );
        assert_eq!(
            take_slot(&mut state, "b", "sms", 100, 1_001),
            Slot::Now,
            "per customer"
        );
        // Once the backlog of slots has passed, the next message goes at once.
        assert_eq!(take_slot(&mut state, "a", "sms", 100, 1_030), Slot::Now);
        assert_eq!(
            take_slot(&mut state, "a", "sms", 100, 1_030),
            Slot::At(1_040)
        );
    }

    #[test]
    fn fractional_intervals_do_not_drift() {
        let mut state = PartitionState::default();
        let mut last = 0;
        for _ in 0..3_001 {
            if let Slot::At(at) = take_slot(&mut state, "a", "sms", 3_000, 0) {
                last = at;
            }
        }
        assert!(
            (1_000..=1_001).contains(&last),
            "3,000 slots at 3,000/s after the first take a second: {last}"
        );
    }

    #[test]
    fn a_high_limit_admits_its_millisecond_of_messages_at_once() {
        let mut state = PartitionState::default();
        for _ in 0..1_000 {
            assert_eq!(take_slot(&mut state, "a", "sms", 1_000_000, 5), Slot::Now);
        }
        assert_eq!(take_slot(&mut state, "a", "sms", 1_000_000, 5), Slot::At(6));
    }

    #[test]
    fn a_ticket_is_redeemed_once() {
        let mut state = PartitionState::default();
        assert_eq!(redeem_ticket(&mut state, "m-1", 0), Ticket::None);
        issue_ticket(&mut state, "m-1", Wait::Pacing, 500);
        assert_eq!(
            redeem_ticket(&mut state, "m-1", 600),
            Ticket::Back(Wait::Pacing)
        );
        assert_eq!(
            redeem_ticket(&mut state, "m-1", 700),
            Ticket::AlreadyReleased
        );
    }
}
