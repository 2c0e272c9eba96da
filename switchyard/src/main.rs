//! The `switchyard` binary: parses the command line, sets up logging and runs a subcommand.

mod cli;
mod commands;
mod context;

use std::io::IsTerminal;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use cli::{Cli, Command, LogFormat};

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    init_logging(cli.global.log_format);
    // Before the signal handler starts: the bound on stopping after SIGTERM/SIGINT.
    switchyard_runtime::shutdown::set_grace(std::time::Duration::from_secs(
        cli.global.shutdown_timeout_seconds,
    ));
    let code = match run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("Error: {e:?}");
            1
        }
    };
    // Exit without unwinding the runtime: its drop would wait for blocking librdkafka calls
    // (30 s timeouts, more with a broker gone); children this process started are killed.
    switchyard_runtime::shutdown::exit(code);
}

async fn run(cli: Cli) -> anyhow::Result<i32> {
    let app = context::Context::new(&cli.global);
    if let Some(addr) = cli.global.metrics_addr {
        switchyard_runtime::serve_metrics(
            addr,
            app.metrics.clone(),
            app.health.clone(),
            app.shutdown.clone(),
        )
        .await?;
    }
    let code = match cli.command {
        Command::Topics { command } => commands::topics::run(&app, command).await?,
        Command::Registry { listen } => commands::registry::run(&app, listen).await?,
        Command::Config { command } => commands::config::run(&app, command).await?,
        Command::Policy { command } => commands::policy::run(&app, command).await?,
        Command::Balance { command } => commands::balance::run(&app, command).await?,
        Command::Senders { command } => commands::senders::run(&app, command).await?,
        Command::Callbacks { command } => commands::callbacks::run(&app, command).await?,
        Command::History { command } => commands::history::run(&app, command).await?,
        Command::Run { role, roles } => commands::run::run(&app, role, roles).await?,
        Command::Replay(args) => commands::replay::run(&app, args).await?,
        Command::Sim { command } => commands::sim::run(&app, command).await?,
        Command::Up {
            roles,
            registry,
            sim,
            inbox,
            inbox_secret,
            config,
            smsc_port,
        } => {
            let up = commands::up::Up {
                roles,
                registry,
                sim,
                inbox,
                inbox_secret,
                config,
                smsc_port,
            };
            commands::up::run(&app, up).await?
        }
    };
    Ok(code)
}

fn init_logging(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,rdkafka=warn"));
    // Colour codes only for a person at a terminal, never in files or pipes.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
