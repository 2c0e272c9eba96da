//! `switchyard callbacks replay --client ID --from … [--to …]`.

use switchyard_config::policy::parse_since;
use switchyard_schemas::now_millis;

use crate::cli::CallbacksCommand;
use crate::context::Context;

pub async fn run(app: &Context, command: CallbacksCommand) -> anyhow::Result<i32> {
    let runtime = app.runtime(&app.schema_registry_url)?;
    match command {
        CallbacksCommand::Replay { client, from, to } => {
            let now = now_millis();
            let from = parse_since(&from, now).map_err(|e| anyhow::anyhow!("--from: {e}"))?;
            let to = to
                .map(|t| parse_since(&t, now))
                .transpose()
                .map_err(|e| anyhow::anyhow!("--to: {e}"))?
                .unwrap_or(now);
            anyhow::ensure!(from < to, "--from must be before --to");
            let queued = switchyard_callback::replay::replay(&runtime, &client, from, to).await?;
            println!("{queued} reports of {client} queued for replay");
        }
    }
    Ok(0)
}
