//! The whole pipeline in one test process: broker, registry, carrier simulator, webhook
//! receiver, a config pointing at them, and every role — what `switchyard up` runs.

use std::time::Duration;

use switchyard::pipeline::{Role, Running, Settings, start};
use switchyard_callback::receiver::Inbox;
use switchyard_carrier_http::simulator::{self, SimulatorSettings};
use switchyard_runtime::{CancellationToken, Processing};

use crate::Stack;

/// The API key of the test client.
pub const API_KEY: &str = "sk-test-key";
/// The signing secret of the test client.
pub const SECRET: &str = "whsec-test";

/// Role settings for a test: the history store in `dir`, every listener on a free port, a
/// 100 ms callback "minute", webhooks in dev mode (loopback receivers).
pub fn local_settings(dir: &std::path::Path) -> Settings {
    Settings {
        history_url: format!("sqlite://{}", dir.join("history.db").display()),
        history_retention: Default::default(),
        ingress_addr: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        ingress_limits: Default::default(),
        receipts_addr: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        receipts_url: None,
        callback_minute: Duration::from_millis(100),
        webhooks: switchyard_callback::WebhookSettings {
            policy: switchyard_callback::WebhookPolicy {
                mode: switchyard_callback::WebhookMode::Dev,
                allow: Vec::new(),
            },
            ..Default::default()
        },
        clock: switchyard_stages::clock::Clock::system(),
    }
}

/// POST `count` SMS (`to` 0101…, `client_message_id` `<tag>-<i>` from `from` on) as one batch
/// with the test client's key; the message ids answered, in order.
pub async fn post_batch(
    http: &reqwest::Client,
    url: &str,
    tag: &str,
    from: usize,
    count: usize,
) -> anyhow::Result<Vec<String>> {
    let messages: Vec<serde_json::Value> = (from..from + count)
        .map(|i| {
            serde_json::json!({
                "channel": "sms",
                "to": format!("0101{:07}", i % 10_000_000),
                "text": format!("{tag} {i}"),
                "client_message_id": format!("{tag}-{i}"),
            })
        })
        .collect();
    let ids = post_messages(http, url, messages).await?;
    anyhow::ensure!(ids.len() == count, "{} ids for {count} messages", ids.len());
    Ok(ids)
}

/// POST `messages` (JSON objects of the API) as one batch with the test client's key; the
/// message ids answered, in order.
pub async fn post_messages(
    http: &reqwest::Client,
    url: &str,
    messages: Vec<serde_json::Value>,
) -> anyhow::Result<Vec<String>> {
    let response = http
        .post(format!("{url}/v1/messages"))
        .bearer_auth(API_KEY)
        .json(&serde_json::json!({ "messages": messages }))
        .send()
        .await?;
    anyhow::ensure!(
        response.status() == 202,
        "POST answered {}",
        response.status()
    );
    let body: serde_json::Value = response.json().await?;
    Ok(body["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["message_id"].as_str().map(String::from))
        .collect())
}

/// A running pipeline and its surroundings.
#[derive(Debug)]
pub struct Pipeline {
    pub inbox: Inbox,
    pub settings: Settings,
    pub running: Running,
    pub shutdown: CancellationToken,
    pub ingress_url: String,
    _history: tempfile::TempDir,
    pub stack: Stack,
}

/// The test config: customer `acme` (sms, lms), client `acme-web` reporting to `report_url`,
/// SKT split 1:1 between two groups, KT one group.
pub fn config(sim_url: &str, report_url: &str) -> String {
    format!(
        r#"
[[customers]]
id = "acme"
channels = ["sms", "lms"]

[[clients]]
id = "acme-web"
customer = "acme"
api_key = "{API_KEY}"
report_url = "{report_url}"
signing_secret = "{SECRET}"

[[senders]]
name = "skt-a"
group = "skt-direct"
channel = "sms"
carriers = ["skt"]
endpoint = "{sim_url}"

[[senders]]
name = "skt-b"
group = "skt-aggregator"
channel = "sms"
carriers = ["skt"]
endpoint = "{sim_url}"

[[senders]]
name = "kt-a"
group = "kt-direct"
channel = "sms"
carriers = ["kt"]
endpoint = "{sim_url}"

[[routes]]
customer = "acme"
channel = "sms"
carriers = [
    {{ carrier = "skt", groups = [{{ group = "skt-direct", ratio = 1 }}, {{ group = "skt-aggregator", ratio = 1 }}] }},
    {{ carrier = "kt", groups = [{{ group = "kt-direct", ratio = 1 }}] }},
]

[[numbering]]
prefix = "0101"
carrier = "skt"

[[numbering]]
prefix = "0109"
carrier = "kt"
"#
    )
}

/// Price of an SMS for `acme` under [`with_every_rule`].
pub const RULED_SMS_PRICE: i64 = 9;

/// The test config with every validate rule on for `acme`: prepaid with prices, a TPS limit
/// on each channel (far above what a test offers), bill codes, the duplicate window, and a
/// keyword blocklist (global and the customer's own). Credit acme before sending.
pub fn with_every_rule(config: String) -> String {
    let acme = "id = \"acme\"\nchannels = [\"sms\", \"lms\"]\n";
    let ruled = format!(
        "{acme}prepaid = true\nprices = {{ sms = {RULED_SMS_PRICE}, lms = 30 }}\n\
         tps_limits = {{ sms = 1000000, lms = 1000000 }}\nbill_codes = [\"B1\"]\n\
         dedup_window_hours = 24\n"
    );
    assert!(config.contains(acme), "the test config declares acme");
    config.replacen(acme, &ruled, 1)
        + r#"
[[bill_codes]]
customer = "acme"
code = "AD-1"
ad_check = true

[policy]
blocked_keywords = ["대출", "카지노", "도박", "바카라", "토토", "불법", "작업대출", "급전", "사채", "비아그라"]

[[policies]]
id = "acme"
blocked_keywords = ["경마", "홀덤"]
"#
}

impl Pipeline {
    /// Start everything except the roles in `except` (a test may run those itself).
    pub async fn start(except: &[Role], sim: SimulatorSettings) -> anyhow::Result<Self> {
        Self::start_on(crate::TestEnv::new()?, except, sim).await
    }

    /// The same in the environment given.
    pub async fn start_on(
        env: crate::TestEnv,
        except: &[Role],
        sim: SimulatorSettings,
    ) -> anyhow::Result<Self> {
        Self::start_with(env, except, sim, Processing::default()).await
    }

    /// The same with topic-to-topic stages running with the `processing` guarantee (the
    /// runtime's `--processing`; stages calling the outside world stay at least once).
    pub async fn start_with(
        env: crate::TestEnv,
        except: &[Role],
        sim: SimulatorSettings,
        processing: Processing,
    ) -> anyhow::Result<Self> {
        Self::start_configured(env, except, sim, processing, "", |_| {}).await
    }

    /// The same with `extra` appended to the test config (more customers, bill codes,
    /// policies) and the role settings adjusted by `adjust` (e.g. a manual clock).
    pub async fn start_configured(
        env: crate::TestEnv,
        except: &[Role],
        sim: SimulatorSettings,
        processing: Processing,
        extra: &str,
        adjust: impl FnOnce(&mut Settings),
    ) -> anyhow::Result<Self> {
        Self::start_reconfigured(env, except, sim, processing, |base| base + extra, adjust).await
    }

    /// The same with the test config rewritten by `configure` (e.g. [`with_every_rule`]).
    pub async fn start_reconfigured(
        env: crate::TestEnv,
        except: &[Role],
        sim: SimulatorSettings,
        processing: Processing,
        configure: impl FnOnce(String) -> String,
        adjust: impl FnOnce(&mut Settings),
    ) -> anyhow::Result<Self> {
        Self::start_tuned(env, except, sim, configure, adjust, |runtime| {
            runtime.processing = processing;
        })
        .await
    }

    /// The same with the roles' runtime adjusted by `tune` before anything starts (the
    /// processing guarantee, the record limit, the stuck limits).
    pub async fn start_tuned(
        env: crate::TestEnv,
        except: &[Role],
        sim: SimulatorSettings,
        configure: impl FnOnce(String) -> String,
        adjust: impl FnOnce(&mut Settings),
        tune: impl FnOnce(&mut switchyard_runtime::Runtime),
    ) -> anyhow::Result<Self> {
        let mut stack = Stack::on(env, &[]).await?;
        tune(&mut stack.runtime);
        let shutdown = CancellationToken::new();
        let sim_addr = simulator::serve("127.0.0.1:0".parse()?, sim, shutdown.clone()).await?;
        let (inbox_addr, inbox) = switchyard_callback::receiver::serve(
            "127.0.0.1:0".parse()?,
            SECRET,
            false,
            shutdown.clone(),
        )
        .await?;
        let text = configure(config(
            &format!("http://{sim_addr}/submit"),
            &format!("http://{inbox_addr}/webhooks/switchyard"),
        ));
        switchyard_config::apply(&stack.runtime, &text, false, 1).await?;
        let history = tempfile::tempdir()?;
        let mut settings = local_settings(history.path());
        adjust(&mut settings);
        let roles: Vec<Role> = Role::ALL
            .into_iter()
            .filter(|r| !except.contains(r))
            .collect();
        let running = start(&stack.runtime, &roles, &settings, &shutdown).await?;
        let ingress_url = format!(
            "http://{}",
            running
                .ingress
                .ok_or_else(|| anyhow::anyhow!("no ingress"))?
        );
        Ok(Pipeline {
            stack,
            inbox,
            settings,
            running,
            shutdown,
            ingress_url,
            _history: history,
        })
    }

    /// Final reports per message id, read back from `reports.final`.
    pub async fn final_reports(
        &self,
    ) -> anyhow::Result<std::collections::HashMap<String, Vec<switchyard_schemas::FinalReport>>>
    {
        use rdkafka::Message;
        let mut reports: std::collections::HashMap<String, Vec<switchyard_schemas::FinalReport>> =
            Default::default();
        let runtime = &self.stack.runtime;
        for message in crate::read_all(&runtime.kafka, switchyard_runtime::names::FINAL).await? {
            let report: switchyard_schemas::FinalReport = runtime
                .codec
                .decode(message.payload().unwrap_or_default())
                .await?;
            reports
                .entry(report.message_id.clone())
                .or_default()
                .push(report);
        }
        Ok(reports)
    }

    /// Stop every role and wait for them.
    pub async fn stop(self) {
        self.shutdown.cancel();
        let Pipeline { running, stack, .. } = self;
        running.wait().await;
        drop(stack);
    }
}
