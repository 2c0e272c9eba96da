//! Command-line interface: global connection options and the subcommands.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// switchyard: a Kafka-native messaging platform.
#[derive(Debug, Parser)]
#[command(name = "switchyard", version, about)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every subcommand shares.
#[derive(Debug, Args)]
pub struct Global {
    /// Kafka bootstrap servers.
    #[arg(
        long,
        env = "KAFKA_BROKERS",
        default_value = "127.0.0.1:9092",
        global = true
    )]
    pub brokers: String,
    /// Extra librdkafka setting for every client, KEY=VALUE (repeatable), e.g.
    /// security.protocol=SASL_SSL.
    #[arg(long = "kafka-option", value_parser = parse_key_value, global = true)]
    pub kafka_options: Vec<(String, String)>,
    /// Schema registry used to encode and decode records.
    #[arg(
        long,
        env = "SCHEMA_REGISTRY_URL",
        default_value = "http://127.0.0.1:8081",
        global = true
    )]
    pub schema_registry_url: String,
    /// Serve Prometheus metrics at this address's /metrics (roles that run continuously).
    #[arg(long, env = "METRICS_ADDR", global = true)]
    pub metrics_addr: Option<SocketAddr>,
    /// Log format.
    #[arg(
        long,
        env = "LOG_FORMAT",
        value_enum,
        default_value = "text",
        global = true
    )]
    pub log_format: LogFormat,
}

/// How logs are written.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Manage the topics of the catalog.
    Topics {
        #[command(subcommand)]
        command: TopicsCommand,
    },
    /// Serve the Confluent-compatible schema registry, stored in the `_schemas` topic.
    Registry {
        /// Address to listen on.
        #[arg(long, env = "REGISTRY_LISTEN", default_value = "127.0.0.1:8081")]
        listen: SocketAddr,
    },
}

#[derive(Debug, Subcommand)]
pub enum TopicsCommand {
    /// Create every missing topic and report drift; safe to run again.
    Apply {
        #[command(flatten)]
        catalog: CatalogArgs,
        /// Replication factor of created topics (1 on one machine, 3 on a cluster).
        #[arg(long, default_value_t = 1)]
        replication_factor: i32,
        /// Exit with status 2 when an existing topic differs from the catalog.
        #[arg(long)]
        fail_on_drift: bool,
    },
    /// Print the topics the catalog declares.
    List {
        #[command(flatten)]
        catalog: CatalogArgs,
    },
}

#[derive(Debug, Args)]
pub struct CatalogArgs {
    /// Catalog file; the built-in one when absent.
    #[arg(long)]
    pub catalog: Option<PathBuf>,
    /// Also declare the topic of this sender (repeatable).
    #[arg(long = "sender")]
    pub senders: Vec<String>,
}

fn parse_key_value(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| format!("expected KEY=VALUE, got {text:?}"))
}
