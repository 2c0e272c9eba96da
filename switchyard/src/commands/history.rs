//! `switchyard history rebuild --into URL`: a history store rebuilt from the topics.

use switchyard_history::{HistoryStore, Retention};

use crate::cli::HistoryCommand;
use crate::context::Context;

pub async fn run(app: &Context, command: HistoryCommand) -> anyhow::Result<i32> {
    match command {
        HistoryCommand::Rebuild {
            into,
            retention_days,
        } => {
            let runtime = app.runtime(&app.schema_registry_url)?;
            let store = HistoryStore::open_with(&into, Retention::new(retention_days))
                .await
                .map_err(|e| anyhow::anyhow!("--into {into}: {e}"))?;
            let started = std::time::Instant::now();
            let report = switchyard_history::rebuild::rebuild(&runtime, &store).await?;
            for (topic, written, skipped) in &report.topics {
                println!("{topic}: {written} events, {skipped} undecodable records skipped");
            }
            println!(
                "{} events into {} ({}) in {:.1?}",
                report.events(),
                into,
                store.engine(),
                started.elapsed()
            );
        }
    }
    Ok(0)
}
