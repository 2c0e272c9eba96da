//! `switchyard config apply|show`.

use anyhow::Context as _;

use crate::cli::ConfigCommand;
use crate::context::Context;

/// Exit status of an apply refused because its prune needs `--yes`.
pub const NEEDS_CONFIRMATION: i32 = 3;

pub async fn run(app: &Context, command: ConfigCommand) -> anyhow::Result<i32> {
    let runtime = app.runtime(&app.schema_registry_url)?;
    match command {
        ConfigCommand::Apply {
            file,
            prune,
            yes,
            dry_run,
            prune_topics,
            replication_factor,
        } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let plan = switchyard_config::plan(&runtime, &text, prune).await?;
            if dry_run {
                println!("{}", plan.report);
                println!("dry run: nothing written");
                return Ok(0);
            }
            if plan.needs_confirmation() && !yes {
                println!("{}", plan.report);
                eprintln!(
                    "refusing to delete {} records (more than {}) without --yes; nothing written",
                    plan.report.deleted.len(),
                    switchyard_config::PRUNE_CONFIRM_ABOVE
                );
                return Ok(NEEDS_CONFIRMATION);
            }
            let mut report = plan.execute(&runtime, replication_factor).await?;
            if prune_topics {
                // After the tombstones: nothing routes to these senders any more.
                let left = std::mem::take(&mut report.sender_topics_left);
                report.sender_topics_deleted =
                    switchyard_config::delete_topics(&runtime, &left).await?;
            }
            println!("{report}");
        }
        ConfigCommand::Show => {
            for line in switchyard_config::show(&runtime).await? {
                println!("{line}");
            }
        }
    }
    Ok(0)
}
