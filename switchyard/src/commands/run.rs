//! `switchyard run <role>`: one role in this process, until SIGTERM/SIGINT; stopping is bounded
//! by `--shutdown-timeout-seconds`.

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
    // Past the grace period the watchdog logs what did not stop and exits, even if this task
    // never runs again (its threads stuck in librdkafka calls on a broker that is gone).
    switchyard_runtime::shutdown::on_overdue({
        let report = running.overdue_report();
        move |grace| report.report(grace)
    });
    let grace = switchyard_runtime::shutdown::grace();
    Ok(running.run_until(&app.shutdown, grace).await)
}
