//! `switchyard topics apply|list`.

use anyhow::Context;
use switchyard_topics::{ApplyOptions, Catalog, apply};

use crate::cli::{CatalogArgs, TopicsCommand};
use crate::context::Context as AppContext;

pub async fn run(app: &AppContext, command: TopicsCommand) -> anyhow::Result<i32> {
    match command {
        TopicsCommand::Apply {
            catalog,
            replication_factor,
            fail_on_drift,
        } => {
            let specs = Catalog::in_namespace(
                load(&catalog)?.topics(&catalog.senders),
                &app.kafka.namespace,
            );
            let options = ApplyOptions {
                brokers: app.kafka.brokers.clone(),
                replication_factor,
            };
            let report = apply(&specs, &options)
                .await
                .with_context(|| format!("applying topics to {}", app.kafka.brokers))?;
            println!("{report}");
            Ok(if fail_on_drift && !report.drift.is_empty() {
                2
            } else {
                0
            })
        }
        TopicsCommand::List { catalog } => {
            let specs = Catalog::in_namespace(
                load(&catalog)?.topics(&catalog.senders),
                &app.kafka.namespace,
            );
            for spec in specs {
                let retention = spec
                    .retention_ms
                    .map_or("forever".to_string(), |ms| format!("{} h", ms / 3_600_000));
                println!(
                    "{:<40} {:>3} partitions  {:<7}  {:<9}  key: {:<28} value: {}",
                    spec.name,
                    spec.partitions,
                    spec.cleanup.as_str(),
                    retention,
                    spec.key,
                    spec.record
                );
            }
            Ok(0)
        }
    }
}

fn load(args: &CatalogArgs) -> anyhow::Result<Catalog> {
    Ok(match &args.catalog {
        Some(path) => Catalog::load(path)?,
        None => Catalog::builtin()?,
    })
}
