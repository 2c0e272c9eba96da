//! What validate decides with its state, after the rules (pure over a [`StateAccess`]): a
//! valid or held message whose client message id is taken in the window is a `duplicate`; a
//! valid message of a prepaid customer is charged its channel's price, or refused with
//! `insufficient_balance`. Only a message that passes takes its client message id, so a
//! refused one can be sent again.

use switchyard_runtime::{ConfigTables, StateAccess};
use switchyard_schemas::{BalanceEvent, Rejection, Submission};

use crate::validate::{Verdict, codes};
use crate::{balances, duplicates};

/// The verdict on a message with its state, and the ledger event it caused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admitted {
    pub verdict: Verdict,
    pub ledger: Option<BalanceEvent>,
}

/// Apply the duplicate window and the prepaid balance to the rules' `verdict`.
pub fn admit(
    verdict: Verdict,
    tables: &ConfigTables,
    state: &mut dyn StateAccess,
    now: i64,
) -> Admitted {
    let (message_id, submission) = match &verdict {
        Verdict::Valid(m) => (m.message_id.as_str(), &m.submission),
        Verdict::Held(h) => (h.message_id.as_str(), &h.submission),
        Verdict::Rejected(_) => {
            return Admitted {
                verdict,
                ledger: None,
            };
        }
    };
    // The rules passed, so the customer is configured.
    let Some(customer) = tables.customers.get(&submission.customer_id) else {
        return Admitted {
            verdict,
            ledger: None,
        };
    };
    let client_message_id = submission
        .client_message_id
        .as_deref()
        .filter(|id| !id.is_empty());
    if let Some(client_message_id) = client_message_id
        && let Some(first) = duplicates::first_taker(
            state,
            &submission.customer_id,
            client_message_id,
            message_id,
            now,
        )
    {
        let detail = format!(
            "client_message_id {client_message_id:?} was already used by message {first} within {} h",
            customer.dedup_window_hours
        );
        return refused(message_id, submission, codes::DUPLICATE, detail, now);
    }
    let mut ledger = None;
    if let Verdict::Valid(message) = &verdict
        && customer.prepaid
    {
        let channel = message.submission.channel.as_str();
        let Some(price) = customer.prices.get(channel).copied() else {
            let detail = format!("prepaid customer has no price for channel {channel}");
            return refused(message_id, submission, codes::NO_PRICE, detail, now);
        };
        match balances::charge(state, &message.customer_id, message_id, price, now) {
            Ok(event) => ledger = event,
            Err(insufficient) => {
                return refused(
                    message_id,
                    submission,
                    codes::INSUFFICIENT_BALANCE,
                    insufficient.to_string(),
                    now,
                );
            }
        }
    }
    if let Some(client_message_id) = client_message_id {
        duplicates::take(
            state,
            &submission.customer_id,
            client_message_id,
            message_id,
            now,
            customer.dedup_window_hours,
        );
    }
    Admitted { verdict, ledger }
}

fn refused(
    message_id: &str,
    submission: &Submission,
    code: &str,
    detail: String,
    now: i64,
) -> Admitted {
    Admitted {
        verdict: Verdict::Rejected(Rejection {
            message_id: message_id.to_string(),
            customer_id: submission.customer_id.clone(),
            code: code.to_string(),
            detail,
            submission: submission.clone(),
            rejected_at: now,
            rule: None,
        }),
        ledger: None,
    }
}
