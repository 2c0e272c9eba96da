//! `switchyard senders`: each sender's health, backlog and throughput; `senders drain NAME
//! [--to GROUP]` and `senders undrain NAME` (decision 0024).

use switchyard_config::drain::{drain, undrain};
use switchyard_config::senders::{HEADER, list};

use crate::cli::SendersCommand;
use crate::context::Context;

pub async fn run(app: &Context, command: Option<SendersCommand>) -> anyhow::Result<i32> {
    let runtime = app.runtime(&app.schema_registry_url)?;
    match command {
        None => {
            let rows = list(&runtime).await?;
            if rows.is_empty() {
                eprintln!("no senders (declare them with `switchyard config apply`)");
                return Ok(0);
            }
            println!("{HEADER}");
            for row in &rows {
                println!("{row}");
            }
        }
        Some(SendersCommand::Drain { name, to, reason }) => {
            let drain = drain(&runtime, &name, to.as_deref(), &reason).await?;
            match &drain.to_group {
                Some(group) => println!(
                    "draining {name}: it gets nothing new, and its queue goes back to route, to {group} first"
                ),
                None => println!(
                    "draining {name}: it gets nothing new, and its queue goes back to route"
                ),
            }
        }
        Some(SendersCommand::Undrain { name }) => {
            if undrain(&runtime, &name).await? {
                println!("{name} takes traffic again");
            } else {
                println!("{name} was not drained; nothing changed");
            }
        }
    }
    Ok(0)
}
