//! `switchyard run <role>`: one role in this process.

use switchyard::pipeline::{Role, start};

use crate::cli::RoleArgs;
use crate::context::Context;

pub async fn run(app: &Context, role: Role, args: RoleArgs) -> anyhow::Result<i32> {
    let runtime = app.runtime(&app.schema_registry_url)?;
    let running = start(
        &runtime,
        &[role],
        &args.settings(switchyard_callback::WebhookMode::Production),
        &app.shutdown,
    )
    .await?;
    if let Some(ingress) = running.ingress {
        println!("ingress listening on http://{ingress}");
    }
    Ok(running
        .run_until(&app.shutdown, std::time::Duration::from_secs(15))
        .await)
}
