//! `switchyard balance credit CUSTOMER AMOUNT --reason …` and `switchyard balance show`.

use switchyard_config::balance::{self, Credit};

use crate::cli::BalanceCommand;
use crate::context::Context;

pub async fn run(app: &Context, command: BalanceCommand) -> anyhow::Result<i32> {
    let runtime = app.runtime(&app.schema_registry_url)?;
    match command {
        BalanceCommand::Credit {
            customer,
            amount,
            reason,
            request_id,
        } => {
            let request_id =
                request_id.unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
            let credit = Credit {
                customer_id: customer.clone(),
                amount,
                reason,
                request_id,
            };
            let id = balance::credit(&runtime, &credit).await?;
            println!(
                "credit of {amount} to {customer} requested (request id {id}); validate applies it once"
            );
        }
        BalanceCommand::Show { customer } => {
            let rows = balance::show(&runtime, customer.as_deref()).await?;
            println!("customer\tbalance\tlast ledger event");
            for row in &rows {
                println!("{row}");
            }
            if rows.is_empty() {
                eprintln!("no balance yet (credit one with `switchyard balance credit`)");
            }
        }
    }
    Ok(0)
}
