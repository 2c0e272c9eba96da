//! `switchyard balance credit|show`: operators add money to a prepaid customer's balance (a
//! `BalanceCommand` on `balance.commands`, applied once by validate per request id) and read
//! balances from validate's state snapshot (`state.validate`) and its ledger
//! (`ledger.balances`). The admin API will call the same functions.

use std::collections::BTreeMap;

use switchyard_runtime::{Output, Runtime, names};
use switchyard_schemas::{BalanceCommand, BalanceEvent, BalanceKind, StateEntry, now_millis};
use switchyard_stages::balances::customer_of;

use crate::ConfigError;
use crate::read::{last_values, tables};

/// A credit to request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credit {
    pub customer_id: String,
    /// Minor units; more than 0.
    pub amount: i64,
    pub reason: String,
    /// The idempotency key: the same request id twice credits once.
    pub request_id: String,
}

/// Write a credit command, after checking the customer is configured and prepaid and the
/// amount positive. Returns the request id.
pub async fn credit(runtime: &Runtime, credit: &Credit) -> Result<String, ConfigError> {
    if credit.amount <= 0 {
        return Err(ConfigError::File(format!(
            "AMOUNT must be more than 0 (got {})",
            credit.amount
        )));
    }
    if credit.request_id.trim().is_empty() {
        return Err(ConfigError::File("--request-id is empty".into()));
    }
    if credit.reason.trim().is_empty() {
        return Err(ConfigError::File("--reason is empty".into()));
    }
    let tables = tables(runtime).await?;
    match tables.customers.get(&credit.customer_id) {
        None => {
            return Err(ConfigError::File(format!(
                "customer {:?} is not configured",
                credit.customer_id
            )));
        }
        Some(customer) if !customer.prepaid => {
            return Err(ConfigError::File(format!(
                "customer {:?} is not prepaid (set prepaid = true in its config)",
                credit.customer_id
            )));
        }
        Some(_) => {}
    }
    let command = BalanceCommand {
        request_id: credit.request_id.clone(),
        customer_id: credit.customer_id.clone(),
        kind: BalanceKind::Credit,
        amount: credit.amount,
        message_id: None,
        reason: credit.reason.clone(),
        requested_at: now_millis(),
    };
    runtime
        .publish(
            "balance",
            &[Output::new(
                names::BALANCE_COMMANDS,
                credit.customer_id.clone(),
                command,
            )],
        )
        .await?;
    Ok(credit.request_id.clone())
}

/// One customer's balance as validate holds it, with its last ledger event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BalanceRow {
    pub customer_id: String,
    /// From the state snapshot (what validate charges against).
    pub balance: i64,
    /// The ledger's last event for this customer.
    pub last: Option<BalanceEvent>,
}

impl std::fmt::Display for BalanceRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}\t{}", self.customer_id, self.balance)?;
        if let Some(last) = &self.last {
            write!(
                f,
                "\t{} {} at {} ({})",
                last.kind.as_str(),
                last.amount,
                last.at,
                last.event_id
            )?;
        }
        Ok(())
    }
}

/// Every balance (or one customer's), read from the topics.
pub async fn show(
    runtime: &Runtime,
    customer: Option<&str>,
) -> Result<Vec<BalanceRow>, ConfigError> {
    let snapshot = last_values::<StateEntry>(runtime, names::STATE_VALIDATE).await?;
    let ledger = last_values::<BalanceEvent>(runtime, names::BALANCE_LEDGER).await?;
    let mut rows: BTreeMap<String, BalanceRow> = BTreeMap::new();
    for (key, entry) in snapshot {
        if let Some(id) = customer_of(&key) {
            rows.insert(
                id.to_string(),
                BalanceRow {
                    customer_id: id.to_string(),
                    balance: entry.amount,
                    last: ledger.get(id).cloned(),
                },
            );
        }
    }
    Ok(rows
        .into_values()
        .filter(|row| customer.is_none_or(|c| c == row.customer_id))
        .collect())
}
