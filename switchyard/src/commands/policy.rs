//! `switchyard policy words add|remove|list` and `switchyard policy blocks`.

use switchyard_config::policy::{self, BlockFilter};
use switchyard_schemas::now_millis;

use crate::cli::{PolicyCommand, WordsCommand};
use crate::context::Context;

pub async fn run(app: &Context, command: PolicyCommand) -> anyhow::Result<i32> {
    let runtime = app.runtime(&app.schema_registry_url)?;
    match command {
        PolicyCommand::Words { command } => match command {
            WordsCommand::Add { words, policy } => {
                println!("{}", policy::add_words(&runtime, &policy, &words).await?);
            }
            WordsCommand::Remove { words, policy } => {
                println!("{}", policy::remove_words(&runtime, &policy, &words).await?);
            }
            WordsCommand::List { policy } => {
                for (id, words) in policy::list_words(&runtime, policy.as_deref()).await? {
                    println!("{id}\t{}", words.join(", "));
                }
            }
        },
        PolicyCommand::Blocks {
            customer,
            since,
            limit,
        } => {
            let since = since
                .map(|s| policy::parse_since(&s, now_millis()))
                .transpose()
                .map_err(|e| anyhow::anyhow!("--since: {e}"))?;
            let filter = BlockFilter {
                customer,
                since,
                limit,
            };
            let blocks = policy::blocks(&runtime, &filter).await?;
            println!("time\trule\tcode\tmessage_id\tcustomer\tdetail");
            for block in &blocks {
                println!("{block}");
            }
            eprintln!("{} blocks", blocks.len());
        }
    }
    Ok(0)
}
