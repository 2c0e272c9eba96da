//! `config apply` on the real broker: a refused file writes nothing (no config record, no
//! sender topic); pruning many records needs `--yes`; `--dry-run` writes nothing.

use std::process::{Command, Output};
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use switchyard_runtime::names;
use switchyard_tests::processes::switchyard_bin;
use switchyard_tests::{Stack, TestEnv, read_all};

/// Valid apart from the route naming a group no sender belongs to.
const REFUSED: &str = r#"
[[customers]]
id = "acme"
channels = ["sms"]

[[clients]]
id = "acme-web"
customer = "acme"
api_key = "sk-refused-key"

[[senders]]
name = "skt-refused"
group = "skt-direct"
channel = "sms"
carriers = ["skt"]
endpoint = "http://127.0.0.1:7001/submit"

[[routes]]
customer = "acme"
channel = "sms"
carriers = [{ carrier = "skt", groups = [{ group = "skt-typo", ratio = 1 }] }]
"#;

const CONFIG_TOPICS: [&str; 7] = [
    names::CONFIG_CUSTOMERS,
    names::CONFIG_CLIENTS,
    names::CONFIG_SENDERS,
    names::CONFIG_ROUTES,
    names::CONFIG_NUMBERING,
    names::CONFIG_POLICY,
    names::CONFIG_BILL_CODES,
];

/// Every physical topic name on the broker (listing all does not create any).
fn topic_names(env: &TestEnv) -> anyhow::Result<Vec<String>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", env.brokers())
        .create()?;
    let metadata = consumer.fetch_metadata(None, Duration::from_secs(10))?;
    Ok(metadata
        .topics()
        .iter()
        .map(|t| t.name().to_string())
        .collect())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_apply_writes_nothing() -> anyhow::Result<()> {
    let stack = Stack::start(&[]).await?;
    let err = switchyard_config::apply(&stack.runtime, REFUSED, false, 1)
        .await
        .expect_err("a route to an unknown group is refused");
    assert!(err.to_string().contains("skt-typo"), "{err}");
    // A negative ratio, and a setting every sender kind shares out of range, are refused too,
    // each naming its field.
    let fixed = REFUSED.replace("skt-typo", "skt-direct");
    for (from, to, names_field) in [
        (
            "ratio = 1",
            "ratio = -1",
            "routes[0] (customer \"acme\").carriers[0].groups[0].ratio is negative (-1)",
        ),
        (
            "endpoint = \"http://127.0.0.1:7001/submit\"",
            "endpoint = \"http://127.0.0.1:7001/submit\"\nsettings = { failover_after_ms = 0 }",
            "settings.failover_after_ms: must be 1..=86400000",
        ),
        (
            "endpoint = \"http://127.0.0.1:7001/submit\"",
            "endpoint = \"http://127.0.0.1:7001/submit\"\nsettings = { receipt_deadline_seconds = 604800 }",
            "settings.receipt_deadline_seconds: must be 1..=518400",
        ),
        (
            "endpoint = \"http://127.0.0.1:7001/submit\"",
            "endpoint = \"http://127.0.0.1:7001/submit\"\ntps = 0",
            ".tps is 0",
        ),
    ] {
        assert!(fixed.contains(from), "{from}");
        let err = switchyard_config::apply(&stack.runtime, &fixed.replacen(from, to, 1), false, 1)
            .await
            .expect_err(to);
        assert!(err.to_string().contains(names_field), "{to}: {err}");
    }
    for topic in CONFIG_TOPICS {
        let records = read_all(&stack.env.kafka(), topic).await?;
        assert!(
            records.is_empty(),
            "{topic} holds {} records",
            records.len()
        );
    }
    let sender_topic = stack.env.topic(&names::sender("skt-refused"));
    assert!(
        !topic_names(&stack.env)?.contains(&sender_topic),
        "{sender_topic} was created"
    );
    // The same file with the typo fixed is written: the checks above could have failed.
    switchyard_config::apply(&stack.runtime, &fixed, false, 1).await?;
    assert_eq!(
        read_all(&stack.env.kafka(), names::CONFIG_ROUTES)
            .await?
            .len(),
        1
    );
    assert!(topic_names(&stack.env)?.contains(&sender_topic));
    Ok(())
}

/// Six records: a customer, a client, two senders, a route, a numbering entry.
const FULL: &str = r#"
[[customers]]
id = "acme"
channels = ["sms"]

[[clients]]
id = "acme-web"
customer = "acme"
api_key = "sk-prune-key"

[[senders]]
name = "skt-a"
group = "skt-direct"
channel = "sms"
carriers = ["skt"]
endpoint = "http://127.0.0.1:7001/submit"

[[senders]]
name = "skt-b"
group = "skt-direct"
channel = "sms"
carriers = ["skt"]
endpoint = "http://127.0.0.1:7001/submit"

[[routes]]
customer = "acme"
channel = "sms"
carriers = [{ carrier = "skt", groups = [{ group = "skt-direct", ratio = 1 }] }]

[[numbering]]
prefix = "0101"
carrier = "skt"
"#;

/// `switchyard config apply ARGS` in the stack's namespace, FILE holding `text`.
async fn cli_apply(stack: &Stack, text: &str, args: &[&str]) -> anyhow::Result<Output> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("config.toml");
    std::fs::write(&file, text)?;
    let mut command = Command::new(switchyard_bin()?);
    command
        .args(["--brokers", &stack.env.brokers()])
        .args(["--topic-prefix", stack.env.namespace.prefix()])
        .args(["--schema-registry-url", &stack.registry.url()])
        .args(["config", "apply"])
        .args(args)
        .arg(&file);
    let output = tokio::task::spawn_blocking(move || command.output()).await??;
    drop(dir);
    Ok(output)
}

/// Records on every config topic, tombstones included.
async fn config_records(stack: &Stack) -> anyhow::Result<usize> {
    let mut total = 0;
    for topic in CONFIG_TOPICS {
        total += read_all(&stack.env.kafka(), topic).await?.len();
    }
    Ok(total)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_large_prune_needs_yes_and_a_dry_run_writes_nothing() -> anyhow::Result<()> {
    let stack = Stack::start(&[]).await?;
    switchyard_config::apply(&stack.runtime, FULL, false, 1).await?;
    assert_eq!(config_records(&stack).await?, 6);

    // An empty file with --prune would delete all six: refused, plan printed, nothing written.
    let refused = cli_apply(&stack, "", &["--prune"]).await?;
    let stdout = String::from_utf8_lossy(&refused.stdout).to_string();
    let stderr = String::from_utf8_lossy(&refused.stderr).to_string();
    assert_eq!(refused.status.code(), Some(3), "{stdout}{stderr}");
    assert!(stdout.contains("6 deleted"), "{stdout}");
    assert!(stderr.contains("--yes"), "{stderr}");
    assert_eq!(config_records(&stack).await?, 6, "nothing written");

    // A dry run says what it would do and writes nothing either.
    let dry = cli_apply(&stack, "", &["--prune", "--dry-run"]).await?;
    let stdout = String::from_utf8_lossy(&dry.stdout).to_string();
    assert!(dry.status.success(), "{dry:?}");
    assert!(stdout.contains("deleted  config.senders skt-a"), "{stdout}");
    assert!(stdout.contains("dry run: nothing written"), "{stdout}");
    assert_eq!(config_records(&stack).await?, 6, "nothing written");

    // A small prune (one record) needs no confirmation.
    let without_numbering =
        FULL.replace("[[numbering]]\nprefix = \"0101\"\ncarrier = \"skt\"\n", "");
    assert_ne!(without_numbering, FULL);
    let small = cli_apply(&stack, &without_numbering, &["--prune"]).await?;
    assert!(small.status.success(), "{small:?}");
    assert_eq!(config_records(&stack).await?, 7, "one tombstone");

    // With --yes it deletes everything and lists the sender topics it leaves in place.
    let confirmed = cli_apply(&stack, "", &["--prune", "--yes"]).await?;
    let stdout = String::from_utf8_lossy(&confirmed.stdout).to_string();
    assert!(confirmed.status.success(), "{confirmed:?}");
    assert!(stdout.contains("5 deleted"), "{stdout}");
    assert!(
        stdout.contains("left in place: topic sender.skt-a of a deleted sender"),
        "{stdout}"
    );
    assert!(switchyard_config::show(&stack.runtime).await?.is_empty());
    let topics = topic_names(&stack.env)?;
    assert!(topics.contains(&stack.env.topic(&names::sender("skt-a"))));
    assert!(topics.contains(&stack.env.topic(&names::sender("skt-b"))));
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn prune_topics_deletes_the_topics_of_deleted_senders_only() -> anyhow::Result<()> {
    let stack = Stack::start(&[]).await?;
    switchyard_config::apply(&stack.runtime, FULL, false, 1).await?;
    let kept = stack.env.topic(&names::sender("skt-a"));
    let gone = stack.env.topic(&names::sender("skt-b"));
    let gone_dead_letter = stack
        .env
        .topic(&names::dead_letter(&names::sender("skt-b")));
    let topics = topic_names(&stack.env)?;
    assert!(topics.contains(&gone) && topics.contains(&gone_dead_letter));

    let without_b = FULL.replacen(
        "[[senders]]\nname = \"skt-b\"\ngroup = \"skt-direct\"\nchannel = \"sms\"\ncarriers = [\"skt\"]\nendpoint = \"http://127.0.0.1:7001/submit\"\n",
        "",
        1,
    );
    assert_ne!(without_b, FULL);
    let output = cli_apply(&stack, &without_b, &["--prune", "--prune-topics"]).await?;
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(output.status.success(), "{output:?}");
    assert!(
        stdout.contains("deleted  topic sender.skt-b of a deleted sender"),
        "{stdout}"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let topics = topic_names(&stack.env)?;
        assert!(topics.contains(&kept), "{kept} was deleted");
        if !topics.contains(&gone) && !topics.contains(&gone_dead_letter) {
            break;
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "{gone} still there");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_already_held_by_a_client_on_the_topics_is_refused() -> anyhow::Result<()> {
    let stack = Stack::start(&[]).await?;
    switchyard_config::apply(&stack.runtime, FULL, false, 1).await?;
    // A second file, applied without --prune, that leaves acme-web alone and gives a new
    // client of another customer the same key.
    let beta = r#"
[[customers]]
id = "beta"
channels = ["sms"]

[[clients]]
id = "beta-web"
customer = "beta"
api_key = "sk-prune-key"
"#;
    let before = config_records(&stack).await?;
    let err = switchyard_config::apply(&stack.runtime, beta, false, 1)
        .await
        .expect_err("the key belongs to acme-web");
    let message = err.to_string();
    assert!(
        message.contains("acme-web") && message.contains("beta-web"),
        "{message}"
    );
    assert_eq!(config_records(&stack).await?, before, "nothing written");
    // With its own key it is written.
    let own = beta.replace("sk-prune-key", "sk-beta-own-key");
    switchyard_config::apply(&stack.runtime, &own, false, 1).await?;
    assert_eq!(config_records(&stack).await?, before + 2);
    Ok(())
}

/// Valid: a customer with prices, TPS limits and night ads held, a bill code and policies.
const POLICY: &str = r#"
[[customers]]
id = "acme"
channels = ["sms", "lms"]
tps_limits = { sms = 100 }
prices = { sms = 9, lms = 30 }
night_ads = "hold"
prepaid = true
dedup_window_hours = 48
history_retention_days = 90

[[bill_codes]]
customer = "acme"
code = "AD-1"
ad_check = true

[policy]
blocked_keywords = ["대출"]

[[policies]]
id = "acme"
blocked_keywords = ["카지노"]
quiet_start_hour = 20
"#;

#[tokio::test(flavor = "multi_thread")]
async fn out_of_range_config_fails_apply_naming_the_field_and_writes_nothing() -> anyhow::Result<()>
{
    let stack = Stack::start(&[]).await?;
    let cases = [
        (
            "prices = { sms = 9,",
            "prices = { sms = -9,",
            "prices.sms is negative (-9)",
        ),
        (
            "tps_limits = { sms = 100 }",
            "tps_limits = { fax = 100 }",
            "tps_limits.fax names unknown channel \"fax\"",
        ),
        (
            "tps_limits = { sms = 100 }",
            "tps_limits = { sms = -5 }",
            "tps_limits.sms is negative (-5)",
        ),
        (
            "prices = { sms = 9, lms = 30 }",
            "prices = { sms = 9 }",
            "prices.lms is missing: a prepaid customer needs a price",
        ),
        (
            "dedup_window_hours = 48",
            "dedup_window_hours = 0",
            "dedup_window_hours is 0, not between 1 and 720",
        ),
        (
            "dedup_window_hours = 48",
            "dedup_window_hours = 10000",
            "dedup_window_hours is 10000",
        ),
        (
            "history_retention_days = 90",
            "history_retention_days = 0",
            "customers[0] (customer \"acme\").history_retention_days is 0, not between 1 and 3650",
        ),
        (
            "history_retention_days = 90",
            "history_retention_days = 3651",
            "history_retention_days is 3651",
        ),
        (
            r#"night_ads = "hold""#,
            r#"night_ads = "sometimes""#,
            "night_ads is \"sometimes\"",
        ),
        (
            r#"blocked_keywords = ["대출"]"#,
            r#"blocked_keywords = ["대출", "  "]"#,
            "policy.blocked_keywords[1]",
        ),
        (
            "quiet_start_hour = 20",
            "quiet_start_hour = 25",
            "policies[0].quiet_start_hour is 25",
        ),
    ];
    for (from, to, names_field) in cases {
        assert!(POLICY.contains(from), "{from}");
        let output = cli_apply(&stack, &POLICY.replacen(from, to, 1), &[]).await?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{to}: applied");
        assert!(stderr.contains(names_field), "{to}: {stderr}");
        assert_eq!(
            config_records(&stack).await?,
            0,
            "{to}: something was written"
        );
    }
    // The valid file is written, policy and bill code included: the checks above could fail.
    let output = cli_apply(&stack, POLICY, &[]).await?;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        read_all(&stack.env.kafka(), names::CONFIG_POLICY)
            .await?
            .len(),
        2
    );
    assert_eq!(
        read_all(&stack.env.kafka(), names::CONFIG_BILL_CODES)
            .await?
            .len(),
        1
    );
    Ok(())
}
