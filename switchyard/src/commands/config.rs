//! `switchyard config apply|show`.

use anyhow::Context as _;

use crate::cli::ConfigCommand;
use crate::context::Context;

pub async fn run(app: &Context, command: ConfigCommand) -> anyhow::Result<i32> {
    let runtime = app.runtime(&app.schema_registry_url)?;
    match command {
        ConfigCommand::Apply {
            file,
            prune,
            replication_factor,
        } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let report =
                switchyard_config::apply(&runtime, &text, prune, replication_factor).await?;
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
