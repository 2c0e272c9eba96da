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
    /// Prefix of every topic, consumer group and transactional id, so several environments
    /// share one cluster (e.g. `staging.`). Empty: no prefix.
    #[arg(
        long,
        env = "SWITCHYARD_TOPIC_PREFIX",
        default_value = "",
        global = true
    )]
    pub topic_prefix: String,
    /// Guarantee of the topic-to-topic stages (validate, route, report): exactly_once uses
    /// Kafka transactions; at_least_once is for brokers without them.
    #[arg(
        long,
        env = "SWITCHYARD_PROCESSING",
        default_value = "exactly_once",
        global = true
    )]
    pub processing: switchyard_runtime::Processing,
    /// This process's name among the instances of its stages (part of each transactional id).
    /// Restart an instance with its old id to fence its unfinished transactions at once.
    /// Default: random per start.
    #[arg(long, env = "SWITCHYARD_INSTANCE_ID", global = true)]
    pub instance_id: Option<String>,
    /// The largest record the brokers accept (their `message.max.bytes`).
    #[arg(long, env = "KAFKA_MAX_RECORD_BYTES", default_value_t = switchyard_runtime::DEFAULT_MAX_RECORD_BYTES, global = true)]
    pub max_record_bytes: usize,
    /// A stage failing the same batch for this long is stuck: `/healthz` answers 503 with the
    /// reason and `switchyard_stage_stuck` is 1 (it keeps trying).
    #[arg(
        long,
        env = "SWITCHYARD_STUCK_AFTER_SECONDS",
        default_value_t = 60,
        global = true
    )]
    pub stuck_after_seconds: u64,
    /// ... or failing it more than this many times in a row.
    #[arg(
        long,
        env = "SWITCHYARD_STUCK_AFTER_ATTEMPTS",
        default_value_t = 10,
        global = true
    )]
    pub stuck_after_attempts: u32,
    /// How long an exactly-once stage's transaction gathers batches before it commits (it
    /// commits sooner when its input goes quiet).
    #[arg(
        long,
        env = "SWITCHYARD_COMMIT_INTERVAL_MS",
        default_value_t = 50,
        global = true
    )]
    pub commit_interval_ms: u64,
    /// Longest a stage's consumer waits on an idle fetch, in ms (a fetch is answered as soon
    /// as committed data arrives; after a pause, seek or rebalance a partition waits for the
    /// fetch in flight). Default 500 (decision 0029). Table readers never wait longer than
    /// 50 ms: they learn they caught up from an empty fetch.
    #[arg(long, env = "SWITCHYARD_FETCH_WAIT_MS", global = true)]
    pub fetch_wait_ms: Option<u32>,
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
    /// After SIGTERM/SIGINT (or a role's failure), how long the roles get to finish their
    /// batches and commit; then the process exits anyway (status 2), logging each role that
    /// did not stop — what it had not committed is consumed again after the restart.
    #[arg(
        long,
        env = "SWITCHYARD_SHUTDOWN_TIMEOUT_SECONDS",
        default_value_t = 30,
        global = true
    )]
    pub shutdown_timeout_seconds: u64,
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
    /// Apply or show the declarative config (customers, clients, senders, routes, numbering).
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Content policy: the keyword blocklist and the list of blocked messages.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Every sender: usable or not (from its dispatchers' heartbeats) and why, instances, in
    /// flight, throughput, error rate and backlog; or drain one.
    Senders {
        #[command(subcommand)]
        command: Option<SendersCommand>,
    },
    /// Prepaid balances: credit one, or show them.
    Balance {
        #[command(subcommand)]
        command: BalanceCommand,
    },
    /// Report callbacks: send a client's reports again.
    Callbacks {
        #[command(subcommand)]
        command: CallbacksCommand,
    },
    /// The message history store: rebuild one from the topics.
    History {
        #[command(subcommand)]
        command: HistoryCommand,
    },
    /// Run one role (scale a role by running more of them: they share its consumer group).
    Run {
        role: switchyard::pipeline::Role,
        #[command(flatten)]
        roles: RoleArgs,
    },
    /// Everything in one process: registry, every role, a carrier simulator and a webhook inbox.
    Up {
        #[command(flatten)]
        roles: RoleArgs,
        /// Registry address.
        #[arg(long, default_value = "127.0.0.1:8081")]
        registry: SocketAddr,
        /// Carrier simulator address (the demo config's senders point here).
        #[arg(long, default_value = "127.0.0.1:7001")]
        sim: SocketAddr,
        /// Webhook inbox address (the demo config's report URL points here); logs each report.
        #[arg(long, default_value = "127.0.0.1:8090")]
        inbox: SocketAddr,
        /// Signing secret the inbox checks signatures with.
        #[arg(long, default_value = "whsec-demo")]
        inbox_secret: String,
        /// Config file applied after the registry is up.
        #[arg(long)]
        config: Option<PathBuf>,
        /// SMSC simulator port (the demo config's SMPP sender points at 2775).
        #[arg(long, default_value_t = 2775)]
        smsc_port: u16,
    },
    /// Print a topic's records, decoded, as JSON lines or CSV (progress and summary on stderr).
    Replay(crate::commands::replay::ReplayArgs),
    /// Simulators for local runs and tests.
    Sim {
        #[command(subcommand)]
        command: SimCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Write what FILE declares to the config topics; only differences are written.
    Apply {
        file: PathBuf,
        /// Also delete entities FILE does not declare (the topics of deleted senders are left
        /// in place and listed).
        #[arg(long)]
        prune: bool,
        /// Confirm a prune that deletes more than 3 records; without it such an apply prints
        /// its plan, writes nothing and exits with status 3.
        #[arg(long)]
        yes: bool,
        /// Print what the apply would do and write nothing.
        #[arg(long)]
        dry_run: bool,
        /// With --prune: also delete the topics of deleted senders (messages still queued in
        /// them are lost). Without it they are left in place and listed.
        #[arg(long, requires = "prune")]
        prune_topics: bool,
        /// Replication factor of sender topics it creates.
        #[arg(long, default_value_t = 1)]
        replication_factor: i32,
    },
    /// Print what the config topics hold.
    Show,
}

#[derive(Debug, Subcommand)]
pub enum CallbacksCommand {
    /// Send the client's final reports finished in [--from, --to) again, with their original
    /// event ids (receivers deduplicate on them).
    Replay {
        /// The API client whose reports to send.
        #[arg(long)]
        client: String,
        /// Start: ms since the epoch, a duration back from now (`90m`, `12h`, `7d`), or a KST
        /// `YYYY-MM-DD[THH:MM]` (`Z` for UTC).
        #[arg(long)]
        from: String,
        /// End (exclusive), in the same forms; now by default.
        #[arg(long)]
        to: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Edit or list the blocked keywords of a policy (`config.policy`).
    Words {
        #[command(subcommand)]
        command: WordsCommand,
    },
    /// List the messages content policy blocked (read from messages.rejected), oldest first.
    Blocks {
        /// Only this customer's.
        #[arg(long)]
        customer: Option<String>,
        /// Only since: ms since the epoch, 90m / 12h / 7d ago, or YYYY-MM-DD[THH:MM] in KST
        /// (Z at the end for UTC).
        #[arg(long)]
        since: Option<String>,
        /// Only the most recent N.
        #[arg(long)]
        limit: Option<usize>,
    },
}

#[derive(Debug, Subcommand)]
pub enum BalanceCommand {
    /// Add AMOUNT (minor units, e.g. KRW) to a prepaid customer's balance. Applied once per
    /// request id: repeat the command with the printed `--request-id` if unsure it landed.
    Credit {
        customer: String,
        amount: i64,
        /// Why (kept in the ledger).
        #[arg(long)]
        reason: String,
        /// Idempotency key; a new one is made and printed if absent.
        #[arg(long)]
        request_id: Option<String>,
    },
    /// Print each prepaid balance (or one customer's) and its last ledger event.
    Show { customer: Option<String> },
}

#[derive(Debug, Subcommand)]
pub enum WordsCommand {
    /// Add words to the blocklist (matching ignores spaces, punctuation and width).
    Add {
        #[arg(required = true)]
        words: Vec<String>,
        /// The policy: "*" (every customer) or a customer id.
        #[arg(long, default_value = "*")]
        policy: String,
    },
    /// Remove words from the blocklist.
    Remove {
        #[arg(required = true)]
        words: Vec<String>,
        /// The policy: "*" (every customer) or a customer id.
        #[arg(long, default_value = "*")]
        policy: String,
    },
    /// Print each policy's words.
    List {
        /// Only this policy.
        #[arg(long)]
        policy: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum HistoryCommand {
    /// Rebuild a history store from the topics the history stage consumes: each read from the
    /// beginning up to its end at start, written idempotently into the store at `--into`.
    Rebuild {
        /// The store to fill: sqlite://PATH or cql://HOST:PORT/KEYSPACE (created if absent).
        #[arg(long)]
        into: String,
        /// Days the rebuilt store keeps messages (CQL TTLs count from the rebuild).
        #[arg(long, env = "HISTORY_RETENTION_DAYS")]
        retention_days: Option<u32>,
    },
}

#[derive(Debug, Subcommand)]
pub enum SimCommand {
    /// A carrier speaking the generic JSON API: accepts submits, sends receipts later.
    Carrier {
        #[arg(long, default_value = "127.0.0.1:7001")]
        listen: SocketAddr,
        /// Share of messages delivered (the rest fail with UNDELIV).
        #[arg(long, default_value_t = 1.0)]
        success_rate: f64,
        /// Delay before each receipt.
        #[arg(long, default_value_t = 50)]
        receipt_delay_ms: u64,
    },
    /// An SMSC for SMPP senders: `node tests/smsc/smsc.js` (the npm `smpp` package's server;
    /// `infra/install-smsc.sh` installs it), accepting any bind, sending receipts. Its other
    /// behaviours are `SMSC_*` variables (see the script's header).
    Smsc {
        #[arg(long, default_value_t = 2775)]
        port: u16,
    },
    /// A webhook receiver that checks signatures and logs each report.
    Webhooks {
        #[arg(long, default_value = "127.0.0.1:8090")]
        listen: SocketAddr,
        #[arg(long, default_value = "whsec-demo")]
        secret: String,
    },
}

/// Where roles listen and keep files.
#[derive(Debug, Args)]
pub struct RoleArgs {
    /// Ingress address.
    #[arg(long, env = "INGRESS_LISTEN", default_value = "127.0.0.1:8080")]
    pub ingress: SocketAddr,
    /// Ingress: ms from a request's first byte to its last header (0: none).
    #[arg(long, env = "INGRESS_HEADER_TIMEOUT_MS", default_value_t = 10_000)]
    pub ingress_header_timeout_ms: u64,
    /// Ingress: ms a connection with no request in flight stays open (0: none).
    #[arg(long, env = "INGRESS_IDLE_TIMEOUT_MS", default_value_t = 60_000)]
    pub ingress_idle_timeout_ms: u64,
    /// Ingress: most connections served at once; over it a new one is answered 503 with
    /// Retry-After.
    #[arg(long, env = "INGRESS_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub ingress_max_connections: usize,
    /// Address of dispatch's receipts endpoint.
    #[arg(long, env = "RECEIPTS_LISTEN", default_value = "127.0.0.1:7002")]
    pub receipts: SocketAddr,
    /// URL carriers send receipts to (default http://<receipts>/receipts).
    #[arg(long, env = "RECEIPTS_URL")]
    pub receipts_url: Option<String>,
    /// The history store (history and ingress): `sqlite://PATH` or
    /// `cql://HOST:PORT[,HOST:PORT…]/KEYSPACE` (ScyllaDB, Cassandra); a bare path is SQLite.
    /// Default: $HISTORY_PATH (older setting) if set, else sqlite://.data/history.db.
    #[arg(long, env = "HISTORY_URL")]
    pub history: Option<String>,
    /// Days the history keeps a message (customers' own `history_retention_days` override
    /// it); none: forever.
    #[arg(long, env = "HISTORY_RETENTION_DAYS")]
    pub history_retention_days: Option<u32>,
    /// Milliseconds in a "minute" of the callback retry schedule (shorten it to watch the
    /// whole schedule run in seconds).
    #[arg(long, env = "CALLBACK_MINUTE_MS", default_value_t = 60_000)]
    pub callback_minute_ms: u64,
    /// Webhook policy: `production` (https only, public addresses only) or `dev` (http and
    /// loopback too). Default: production for `run`, dev for `up`.
    #[arg(long, env = "WEBHOOK_MODE")]
    pub webhook_mode: Option<switchyard_callback::WebhookMode>,
    /// Networks webhooks may reach although they are not public (comma-separated CIDRs,
    /// e.g. 10.20.0.0/16).
    #[arg(long, env = "WEBHOOK_ALLOW", value_delimiter = ',')]
    pub webhook_allow: Vec<ipnet::IpNet>,
}

impl RoleArgs {
    /// The role settings; `default_mode` is the webhook mode when none is given.
    pub fn settings(
        &self,
        default_mode: switchyard_callback::WebhookMode,
    ) -> switchyard::pipeline::Settings {
        switchyard::pipeline::Settings {
            history_url: history_url(
                self.history.as_deref(),
                std::env::var("HISTORY_PATH").ok().as_deref(),
            ),
            history_retention: switchyard_history::Retention::new(self.history_retention_days),
            ingress_addr: self.ingress,
            ingress_limits: switchyard_ingress::ServerLimits {
                header_read_timeout: std::time::Duration::from_millis(
                    self.ingress_header_timeout_ms,
                ),
                idle_timeout: std::time::Duration::from_millis(self.ingress_idle_timeout_ms),
                max_connections: self.ingress_max_connections.max(1),
            },
            receipts_addr: self.receipts,
            receipts_url: self.receipts_url.clone(),
            callback_minute: std::time::Duration::from_millis(self.callback_minute_ms),
            webhooks: switchyard_callback::WebhookSettings {
                policy: switchyard_callback::WebhookPolicy {
                    mode: self.webhook_mode.unwrap_or(default_mode),
                    allow: self.webhook_allow.clone(),
                },
                ..Default::default()
            },
            clock: switchyard_stages::clock::Clock::system(),
        }
    }
}

/// The history store URL: `--history`/`$HISTORY_URL`, else `$HISTORY_PATH` (the setting before
/// URLs, a path), else the default SQLite file.
pub fn history_url(given: Option<&str>, history_path: Option<&str>) -> String {
    given
        .or(history_path.filter(|p| !p.is_empty()))
        .unwrap_or(DEFAULT_HISTORY_URL)
        .to_string()
}

/// Where the history is kept when nothing says otherwise.
pub const DEFAULT_HISTORY_URL: &str = "sqlite://.data/history.db";

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_history_url_falls_back_to_history_path_then_the_default() {
        assert_eq!(history_url(Some("cql://h/ks"), Some("/x.db")), "cql://h/ks");
        assert_eq!(history_url(None, Some("/x.db")), "/x.db");
        assert_eq!(history_url(None, Some("")), DEFAULT_HISTORY_URL);
        assert_eq!(history_url(None, None), "sqlite://.data/history.db");
    }
}

/// `switchyard senders …`.
#[derive(Debug, Subcommand)]
pub enum SendersCommand {
    /// Move a sender's queue off it: route sends it nothing new and its dispatchers hand every
    /// queued message back to route (to GROUP first, if given) until `senders undrain`.
    Drain {
        /// The sender to drain.
        name: String,
        /// The group its queue goes to first (else by the routing rule, as a failover).
        #[arg(long = "to", value_name = "GROUP")]
        to: Option<String>,
        /// Why (kept with the drain, and in each moved message's trail).
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// End a sender's drain: it takes traffic again.
    Undrain {
        /// The drained sender.
        name: String,
    },
}
