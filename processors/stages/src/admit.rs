//! What validate decides with its state, after the rules (pure over a [`StateAccess`]): a
//! valid or held message whose client message id is taken in the window is a `duplicate`; a
//! valid message of a prepaid customer is charged its channel's price, or refused with
//! `insufficient_balance`. Only a message that passes takes its client message id, so a
//! refused one can be sent again.

use switchyard_runtime::{ConfigTables, StateAccess};
use switchyard_schemas::{BalanceEvent, CustomerConfig, HeldMessage, Rejection, Submission};

use crate::pacing::{self, Slot};
use crate::validate::{Verdict, codes};
use crate::{balances, duplicates};

/// The verdict on a message with its state, and the ledger event it caused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admitted {
    pub verdict: Verdict,
    pub ledger: Option<BalanceEvent>,
}

/// Apply the duplicate window, the customer's pacing (unless the message is `released`: back
/// from waiting for its slot) and the prepaid balance to the rules' `verdict`.
pub fn admit(
    verdict: Verdict,
    tables: &ConfigTables,
    state: &mut dyn StateAccess,
    now: i64,
    released: bool,
) -> Admitted {
    let (message_id, submission) = match &verdict {
        Verdict::Valid(m) => (m.message_id.as_str(), &m.submission),
        Verdict::Held(h) | Verdict::Paced(h) => (h.message_id.as_str(), &h.submission),
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
    if let Verdict::Valid(message) = &verdict
        && !released
        && let Some(limit) = customer
            .tps_limits
            .get(message.submission.channel.as_str())
            .copied()
            .filter(|limit| *limit > 0)
        && let Slot::At(release_at) = pacing::take_slot(
            state,
            &message.customer_id,
            message.submission.channel.as_str(),
            limit,
            now,
        )
    {
        take_id(
            state,
            submission,
            client_message_id,
            message_id,
            now,
            &customer,
        );
        let channel = message.submission.channel.as_str();
        return Admitted {
            verdict: Verdict::Paced(HeldMessage {
                message_id: message.message_id.clone(),
                customer_id: message.customer_id.clone(),
                submission: message.submission.clone(),
                release_at,
                reason: format!("pacing: {limit}/s for {channel}"),
                held_at: now,
            }),
            ledger: None,
        };
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
    take_id(
        state,
        submission,
        client_message_id,
        message_id,
        now,
        &customer,
    );
    Admitted { verdict, ledger }
}

/// The message takes its client message id (if it has one) for the customer's window.
fn take_id(
    state: &mut dyn StateAccess,
    submission: &Submission,
    client_message_id: Option<&str>,
    message_id: &str,
    now: i64,
    customer: &CustomerConfig,
) {
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

#[cfg(test)]
mod tests {
    use switchyard_runtime::PartitionState;
    use switchyard_schemas::{BalanceCommand, BalanceKind, Channel, Priority};

    use super::*;
    use crate::fixtures::{submission, tables, tables_with};
    use crate::validate::{judge, validate};

    fn admitted(
        s: Submission,
        tables: &ConfigTables,
        state: &mut PartitionState,
        now: i64,
    ) -> Admitted {
        let verdict = validate(s, ("messages.accepted", 0, 1), tables, now);
        let admitted = admit(verdict, tables, state, now, false);
        state.commit();
        admitted
    }

    /// acme prepaid: sms 20, lms 50, kakao 8.
    fn prepaid_tables() -> ConfigTables {
        tables_with(|acme| {
            acme.prepaid = true;
            acme.prices = [("sms", 20), ("lms", 50), ("kakao", 8)]
                .into_iter()
                .map(|(channel, price)| (channel.to_string(), price))
                .collect();
        })
    }

    fn code(a: &Admitted) -> Option<&str> {
        match &a.verdict {
            Verdict::Rejected(r) => Some(&r.code),
            _ => None,
        }
    }

    fn with_client_id(id: &str, client_message_id: &str) -> Submission {
        let mut s = submission(id);
        s.client_message_id = Some(client_message_id.into());
        s
    }

    #[test]
    fn a_repeated_client_message_id_is_a_duplicate_naming_the_first() {
        let tables = tables();
        let mut state = PartitionState::default();
        assert_eq!(
            code(&admitted(
                with_client_id("m-1", "c-9"),
                &tables,
                &mut state,
                1_000
            )),
            None
        );
        let second = admitted(with_client_id("m-2", "c-9"), &tables, &mut state, 2_000);
        let Verdict::Rejected(r) = &second.verdict else {
            panic!("not rejected: {second:?}");
        };
        assert_eq!(r.code, codes::DUPLICATE);
        assert!(r.detail.contains("m-1"), "{}", r.detail);
        assert_eq!(
            code(&admitted(
                with_client_id("m-3", "c-10"),
                &tables,
                &mut state,
                2_000
            )),
            None
        );
        let after_window = 1_000 + 24 * 3_600_000;
        assert_eq!(
            code(&admitted(
                with_client_id("m-4", "c-9"),
                &tables,
                &mut state,
                after_window
            )),
            None,
            "the window is over"
        );
    }

    #[test]
    fn a_message_the_rules_reject_does_not_take_its_client_message_id() {
        let tables = tables();
        let mut state = PartitionState::default();
        let mut bad = with_client_id("m-1", "c-9");
        bad.to = "not a number".into();
        assert_eq!(
            code(&admitted(bad, &tables, &mut state, 1_000)),
            Some(crate::validate::codes::INVALID_RECIPIENT)
        );
        assert_eq!(
            code(&admitted(
                with_client_id("m-2", "c-9"),
                &tables,
                &mut state,
                2_000
            )),
            None
        );
    }

    #[test]
    fn a_held_message_coming_back_is_not_its_own_duplicate() {
        let tables = tables();
        let mut state = PartitionState::default();
        assert_eq!(
            code(&admitted(
                with_client_id("m-1", "c-9"),
                &tables,
                &mut state,
                1_000
            )),
            None
        );
        assert_eq!(
            code(&admitted(
                with_client_id("m-1", "c-9"),
                &tables,
                &mut state,
                5_000
            )),
            None
        );
    }

    #[test]
    fn a_prepaid_message_is_charged_its_channel_price_or_refused() {
        let tables = prepaid_tables();
        let mut state = PartitionState::default();
        let refused = admitted(with_client_id("m-1", "c-1"), &tables, &mut state, 1);
        assert_eq!(code(&refused), Some(codes::INSUFFICIENT_BALANCE));
        assert!(refused.ledger.is_none());
        let credit = BalanceCommand {
            request_id: "r-1".into(),
            customer_id: "acme".into(),
            kind: BalanceKind::Credit,
            amount: 30,
            message_id: None,
            reason: "top-up".into(),
            requested_at: 0,
        };
        assert!(balances::apply(&mut state, &credit, 2).is_some());
        state.commit();
        let sent = admitted(with_client_id("m-2", "c-1"), &tables, &mut state, 3);
        assert_eq!(code(&sent), None, "the refused message did not take c-1");
        let debit = sent.ledger.expect("charged");
        assert_eq!((debit.amount, debit.balance_after), (20, 10));
        let mut lms = with_client_id("m-3", "c-3");
        lms.channel = Channel::Lms;
        lms.subject = Some("s".into());
        assert_eq!(
            code(&admitted(lms, &tables, &mut state, 4)),
            Some(codes::INSUFFICIENT_BALANCE)
        );
        assert_eq!(balances::balance(&state, "acme"), 10);
    }

    #[test]
    fn judge_writes_the_debit_to_the_ledger_before_the_validated_message() {
        let tables = prepaid_tables();
        let mut state = PartitionState::default();
        state.put(
            &balances::balance_key("acme"),
            switchyard_schemas::StateEntry {
                text: None,
                amount: 100,
                expires_at: None,
            },
        );
        let mut s = submission("m-1");
        s.priority = Priority::Normal;
        let outputs = judge(s, ("messages.accepted", 0, 1), &tables, &mut state, 10);
        let topics: Vec<&str> = outputs.iter().map(|o| o.topic.as_str()).collect();
        assert_eq!(topics, ["ledger.balances", "messages.validated"]);
    }

    #[test]
    fn over_its_rate_a_message_is_paced_to_its_slot_and_comes_back_once() {
        let tables = tables_with(|acme| {
            acme.tps_limits = [("sms".to_string(), 2)].into_iter().collect();
        });
        let mut state = PartitionState::default();
        let mut topics = Vec::new();
        for i in 0..3 {
            let outputs = judge(
                with_client_id(&format!("m-{i}"), &format!("c-{i}")),
                ("messages.accepted", 0, i),
                &tables,
                &mut state,
                1_000,
            );
            state.commit();
            topics.push(outputs[0].topic.clone());
            if i == 2 {
                let paced: &switchyard_schemas::HeldMessage = outputs[0].value().expect("held");
                assert_eq!(paced.release_at, 2_000, "slots every 500 ms");
                assert_eq!(outputs[0].due(), Some(2_000));
            }
        }
        assert_eq!(
            topics,
            ["messages.validated", "messages.paced", "messages.paced"]
        );
        // m-2 comes back at its slot: judged without pacing, once.
        let back = judge(
            with_client_id("m-2", "c-2"),
            ("messages.accepted", 0, 9),
            &tables,
            &mut state,
            2_000,
        );
        state.commit();
        assert_eq!(back[0].topic, "messages.validated");
        let again = judge(
            with_client_id("m-2", "c-2"),
            ("messages.accepted", 0, 10),
            &tables,
            &mut state,
            2_001,
        );
        assert!(again.is_empty(), "a second copy of the release is dropped");
        // Another channel and another customer are not paced.
        let mut kakao = with_client_id("m-9", "c-9");
        kakao.channel = Channel::Kakao;
        kakao.template_code = Some("T1".into());
        let other = judge(
            kakao,
            ("messages.accepted", 0, 11),
            &tables,
            &mut state,
            2_001,
        );
        assert_ne!(other[0].topic, "messages.paced");
    }
}
