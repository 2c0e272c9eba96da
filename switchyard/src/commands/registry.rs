//! `switchyard registry`: the schema registry server.

use std::net::SocketAddr;

use anyhow::Context;

use crate::context::Context as AppContext;

pub async fn run(app: &AppContext, listen: SocketAddr) -> anyhow::Result<i32> {
    let (bound, task) = switchyard_schema_registry::serve(
        &app.kafka,
        listen,
        app.metrics.clone(),
        app.shutdown.clone(),
    )
    .await
    .context("starting the schema registry")?;
    println!("schema registry listening on http://{bound}");
    task.await.context("registry task")?;
    Ok(0)
}
