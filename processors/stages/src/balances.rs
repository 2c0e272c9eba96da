//! Prepaid balances (pure): validate is the only writer of a customer's balance. It charges a
//! message's price (or refuses it when the balance cannot cover it), applies operators'
//! credits once per request id, and refunds a charged message that finally failed, once. Each
//! change is a `BalanceEvent` for the ledger, written in the same transaction as the state:
//!
//! - `bal␟<customer>` → amount = the balance (the snapshot; no expiry);
//! - `charge␟<message id>` → amount = what the message was charged (until refunded or
//!   [`CHARGE_KEPT_MS`] old);
//! - `credit␟<request id>` → a credit already applied (for [`CREDIT_IDS_KEPT_MS`]).

use switchyard_runtime::StateAccess;
use switchyard_schemas::{BalanceCommand, BalanceEvent, BalanceKind, StateEntry};

/// How long a charge can still be refunded: longer than any message stays in flight.
pub const CHARGE_KEPT_MS: i64 = 7 * 24 * 3_600_000;
/// How long a credit's request id is remembered: retrying a credit within this is harmless.
pub const CREDIT_IDS_KEPT_MS: i64 = 30 * 24 * 3_600_000;

/// The state key of a customer's balance.
pub fn balance_key(customer_id: &str) -> String {
    format!("bal\u{1f}{customer_id}")
}

/// The customer of a balance key.
pub fn customer_of(key: &str) -> Option<&str> {
    key.strip_prefix("bal\u{1f}")
}

fn charge_key(message_id: &str) -> String {
    format!("charge\u{1f}{message_id}")
}

fn credit_key(request_id: &str) -> String {
    format!("credit\u{1f}{request_id}")
}

/// A customer's balance (0 if never moved).
pub fn balance(state: &dyn StateAccess, customer_id: &str) -> i64 {
    state
        .get(&balance_key(customer_id))
        .map_or(0, |entry| entry.amount)
}

/// The balance cannot cover the price.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("balance {balance} is less than the price {price}")]
pub struct Insufficient {
    pub balance: i64,
    pub price: i64,
}

/// Charge `message_id` `price`. A message already charged is not charged again (`None`).
pub fn charge(
    state: &mut dyn StateAccess,
    customer_id: &str,
    message_id: &str,
    price: i64,
    now: i64,
) -> Result<Option<BalanceEvent>, Insufficient> {
    if state.get(&charge_key(message_id)).is_some() {
        return Ok(None);
    }
    let before = balance(state, customer_id);
    if before < price {
        return Err(Insufficient {
            balance: before,
            price,
        });
    }
    state.put(
        &charge_key(message_id),
        StateEntry {
            text: Some(customer_id.to_string()),
            amount: price,
            expires_at: Some(now + CHARGE_KEPT_MS),
        },
    );
    Ok(Some(set_balance(
        state,
        customer_id,
        BalanceKind::Debit,
        price,
        before - price,
        Some(message_id),
        None,
        None,
        now,
    )))
}

/// Apply a credit or a refund command; `None` when it changes nothing (a credit already
/// applied, a refund of a message never charged or already refunded, a command of the wrong
/// kind).
pub fn apply(
    state: &mut dyn StateAccess,
    command: &BalanceCommand,
    now: i64,
) -> Option<BalanceEvent> {
    let customer = command.customer_id.as_str();
    match command.kind {
        BalanceKind::Credit => {
            let key = credit_key(&command.request_id);
            if command.amount <= 0 || state.get(&key).is_some() {
                return None;
            }
            state.put(
                &key,
                StateEntry {
                    text: Some(customer.to_string()),
                    amount: command.amount,
                    expires_at: Some(now + CREDIT_IDS_KEPT_MS),
                },
            );
            let after = balance(state, customer).saturating_add(command.amount);
            Some(set_balance(
                state,
                customer,
                BalanceKind::Credit,
                command.amount,
                after,
                None,
                Some(&command.request_id),
                Some(&command.reason),
                now,
            ))
        }
        BalanceKind::Refund => {
            let message_id = command.message_id.as_deref()?;
            let key = charge_key(message_id);
            let charged = state.get(&key)?;
            // The charge names its customer: a refund for another customer's message is void.
            if charged.text.as_deref() != Some(customer) {
                return None;
            }
            let amount = charged.amount;
            state.delete(&key);
            let after = balance(state, customer).saturating_add(amount);
            Some(set_balance(
                state,
                customer,
                BalanceKind::Refund,
                amount,
                after,
                Some(message_id),
                None,
                Some(&command.reason),
                now,
            ))
        }
        BalanceKind::Debit => None,
    }
}

#[allow(clippy::too_many_arguments)]
fn set_balance(
    state: &mut dyn StateAccess,
    customer_id: &str,
    kind: BalanceKind,
    amount: i64,
    after: i64,
    message_id: Option<&str>,
    request_id: Option<&str>,
    reason: Option<&str>,
    now: i64,
) -> BalanceEvent {
    state.put(
        &balance_key(customer_id),
        StateEntry {
            text: None,
            amount: after,
            expires_at: None,
        },
    );
    let subject = message_id.or(request_id).unwrap_or_default();
    BalanceEvent {
        event_id: format!("{}:{subject}", kind.as_str()),
        customer_id: customer_id.to_string(),
        kind,
        amount,
        balance_after: after,
        message_id: message_id.map(str::to_string),
        request_id: request_id.map(str::to_string),
        reason: reason.map(str::to_string).filter(|r| !r.is_empty()),
        at: now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_runtime::PartitionState;

    fn credit(request_id: &str, amount: i64) -> BalanceCommand {
        BalanceCommand {
            request_id: request_id.into(),
            customer_id: "acme".into(),
            kind: BalanceKind::Credit,
            amount,
            message_id: None,
            reason: "top-up".into(),
            requested_at: 0,
        }
    }

    fn refund(customer: &str, message_id: &str) -> BalanceCommand {
        BalanceCommand {
            request_id: format!("refund:{message_id}"),
            customer_id: customer.into(),
            kind: BalanceKind::Refund,
            amount: 0,
            message_id: Some(message_id.into()),
            reason: "failed".into(),
            requested_at: 0,
        }
    }

    #[test]
    fn credits_apply_once_per_request_id() {
        let mut state = PartitionState::default();
        let event = apply(&mut state, &credit("r-1", 100), 5).expect("applied");
        assert_eq!(
            (event.kind, event.amount, event.balance_after),
            (BalanceKind::Credit, 100, 100)
        );
        assert_eq!(event.event_id, "credit:r-1");
        assert_eq!(apply(&mut state, &credit("r-1", 100), 6), None);
        assert_eq!(
            apply(&mut state, &credit("r-2", 0), 6),
            None,
            "nothing to add"
        );
        assert_eq!(balance(&state, "acme"), 100);
    }

    #[test]
    fn a_charge_needs_the_balance_and_happens_once_per_message() {
        let mut state = PartitionState::default();
        apply(&mut state, &credit("r-1", 25), 0);
        let debit = charge(&mut state, "acme", "m-1", 20, 1)
            .expect("covered")
            .expect("new");
        assert_eq!((debit.kind, debit.balance_after), (BalanceKind::Debit, 5));
        assert_eq!(
            charge(&mut state, "acme", "m-1", 20, 2),
            Ok(None),
            "already charged"
        );
        assert_eq!(
            charge(&mut state, "acme", "m-2", 20, 3),
            Err(Insufficient {
                balance: 5,
                price: 20
            })
        );
        assert_eq!(balance(&state, "acme"), 5);
    }

    #[test]
    fn a_refund_gives_back_the_charge_once_and_only_to_its_customer() {
        let mut state = PartitionState::default();
        apply(&mut state, &credit("r-1", 50), 0);
        charge(&mut state, "acme", "m-1", 20, 1).expect("covered");
        assert_eq!(apply(&mut state, &refund("beta", "m-1"), 2), None);
        let event = apply(&mut state, &refund("acme", "m-1"), 2).expect("refunded");
        assert_eq!((event.amount, event.balance_after), (20, 50));
        assert_eq!(
            apply(&mut state, &refund("acme", "m-1"), 3),
            None,
            "only once"
        );
        assert_eq!(apply(&mut state, &refund("acme", "never-charged"), 3), None);
        assert_eq!(balance(&state, "acme"), 50);
    }
}
