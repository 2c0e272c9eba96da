//! `switchyard senders`: each sender's health, backlog and throughput.

use switchyard_config::senders::{HEADER, list};

use crate::context::Context;

pub async fn run(app: &Context) -> anyhow::Result<i32> {
    let runtime = app.runtime(&app.schema_registry_url)?;
    let rows = list(&runtime).await?;
    if rows.is_empty() {
        eprintln!("no senders (declare them with `switchyard config apply`)");
        return Ok(0);
    }
    println!("{HEADER}");
    for row in &rows {
        println!("{row}");
    }
    Ok(0)
}
