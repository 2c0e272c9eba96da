//! Content policy on the real broker (issue 7, items 4-6): the whole pipeline with validate on a
//! manual clock; one bad and one legal sample per rule. Blocks land on `messages.rejected` with
//! their rule, legal messages on `messages.validated`, a held night ad on `messages.held`; the
//! operator's keyword commands take effect while it runs, and the block list shows the blocks.

use std::collections::HashMap;
use std::time::Duration;

use rdkafka::Message;
use serde::de::DeserializeOwned;
use switchyard_carrier_http::simulator::SimulatorSettings;
use switchyard_config::policy::{self, BlockFilter};
use switchyard_runtime::{Processing, names};
use switchyard_schemas::{
    Channel, FinalReport, HeldMessage, Priority, Record, Rejection, ResultStatus, Submission,
    ValidatedMessage,
};
use switchyard_stages::clock::ManualClock;
use switchyard_stages::policy::night_hours::{KST_OFFSET_MS, release_at};
use switchyard_tests::pipeline::{API_KEY, Pipeline};
use switchyard_tests::processes::switchyard_bin;
use switchyard_tests::{TestEnv, produce_raw, read_all, sample_submission};

/// A second customer that holds night ads and upgrades long SMS, its bill codes, and the
/// policies: "대출" for everyone, "카지노" for adco only.
const EXTRA: &str = r#"
[[customers]]
id = "adco"
channels = ["sms", "lms"]
bill_codes = ["B1"]
night_ads = "hold"
auto_lms_upgrade = true

[[bill_codes]]
customer = "adco"
code = "AD-1"
ad_check = true
description = "광고 발송"

[policy]
blocked_keywords = ["대출"]

[[policies]]
id = "adco"
blocked_keywords = ["카지노"]
"#;

const LEGAL_AD: &str = "(광고) 봄 세일 20%\n무료수신거부 080-123-4567";
const DAY_MS: i64 = 86_400_000;
const HOUR_MS: i64 = 3_600_000;

/// Today's `hour`:00 KST.
fn today_kst(hour: i64) -> i64 {
    let now = switchyard_schemas::now_millis();
    (now + KST_OFFSET_MS).div_euclid(DAY_MS) * DAY_MS - KST_OFFSET_MS + hour * HOUR_MS
}

fn sample(
    id: &str,
    customer: &str,
    priority: Priority,
    bill: Option<&str>,
    text: &str,
) -> Submission {
    let mut s = sample_submission(Some(id), customer, text);
    s.priority = priority;
    s.bill_code = bill.map(String::from);
    s
}

async fn send(pipeline: &Pipeline, s: &Submission) -> anyhow::Result<()> {
    let runtime = &pipeline.stack.runtime;
    let bytes = runtime.codec.encode(names::ACCEPTED, s).await?;
    produce_raw(runtime, names::ACCEPTED, &s.customer_id, &bytes).await
}

/// Every record of `topic` by message id (the record key).
async fn by_id<T: Record>(pipeline: &Pipeline, topic: &str) -> anyhow::Result<HashMap<String, T>> {
    let runtime = &pipeline.stack.runtime;
    let mut out = HashMap::new();
    for message in read_all(&runtime.kafka, topic).await? {
        let key = String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned();
        let value: T = runtime
            .codec
            .decode(message.payload().unwrap_or_default())
            .await?;
        out.insert(key, value);
    }
    Ok(out)
}

/// Where each message ended: validated, rejected or held.
#[derive(Debug, Default)]
struct Outcomes {
    validated: HashMap<String, ValidatedMessage>,
    rejected: HashMap<String, Rejection>,
    held: HashMap<String, HeldMessage>,
}

impl Outcomes {
    fn has(&self, id: &str) -> bool {
        self.validated.contains_key(id)
            || self.rejected.contains_key(id)
            || self.held.contains_key(id)
    }
}

async fn outcomes(pipeline: &Pipeline, ids: &[&str]) -> anyhow::Result<Outcomes> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let o = Outcomes {
            validated: by_id(pipeline, names::VALIDATED).await?,
            rejected: by_id(pipeline, names::REJECTED).await?,
            held: by_id(pipeline, names::HELD).await?,
        };
        let missing: Vec<&&str> = ids.iter().filter(|id| !o.has(id)).collect();
        if missing.is_empty() {
            return Ok(o);
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "no verdict on {missing:?} after 60 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// "validated", "held" or "<code>/<rule>" for a message.
fn verdict(o: &Outcomes, id: &str) -> String {
    if o.validated.contains_key(id) {
        "validated".into()
    } else if o.held.contains_key(id) {
        "held".into()
    } else if let Some(r) = o.rejected.get(id) {
        format!("{}/{}", r.code, r.rule.as_deref().unwrap_or("-"))
    } else {
        "nothing".into()
    }
}

fn decode_json<T: DeserializeOwned>(value: serde_json::Value) -> anyhow::Result<T> {
    Ok(serde_json::from_value(value)?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_rule_blocks_its_bad_sample_and_passes_the_legal_one() -> anyhow::Result<()> {
    switchyard_tests::init_logging();
    let clock = ManualClock::new(today_kst(12));
    let pipeline = Pipeline::start_configured(
        TestEnv::new()?,
        &[],
        SimulatorSettings {
            success_rate: 1.0,
            receipt_delay: Duration::from_millis(5),
        },
        Processing::default(),
        EXTRA,
        |settings| settings.clock = clock.clock(),
    )
    .await?;

    // --- noon KST --------------------------------------------------------------------
    let long_text = "안녕하세요 고객님, ".repeat(10); // 190 EUC-KR bytes
    let mut day: Vec<(Submission, &str)> = vec![
        (
            sample("bill-ok", "adco", Priority::Normal, Some("B1"), "배송 안내"),
            "validated",
        ),
        (
            sample(
                "bill-bad",
                "adco",
                Priority::Normal,
                Some("B9"),
                "배송 안내",
            ),
            "unknown_bill_code/-",
        ),
        (
            sample("ad-ok", "adco", Priority::Ad, None, LEGAL_AD),
            "validated",
        ),
        (
            sample(
                "ad-unmarked",
                "adco",
                Priority::Ad,
                None,
                "봄 세일\n무료수신거부 080-123-4567",
            ),
            "ad_not_marked/ad_marking",
        ),
        (
            sample(
                "ad-no-opt-out",
                "adco",
                Priority::Ad,
                None,
                "(광고) 봄 세일",
            ),
            "ad_no_opt_out/ad_marking",
        ),
        (
            sample(
                "adcheck-ok",
                "adco",
                Priority::Normal,
                Some("AD-1"),
                LEGAL_AD,
            ),
            "validated",
        ),
        (
            sample(
                "adcheck-unmarked",
                "adco",
                Priority::Normal,
                Some("AD-1"),
                "봄 세일",
            ),
            "ad_not_marked/ad_marking",
        ),
        (
            sample("kw-ok", "adco", Priority::Normal, None, "대학 출석 안내"),
            "validated",
        ),
        (
            sample(
                "kw-global",
                "acme",
                Priority::Normal,
                None,
                "저금리 대.출 상담",
            ),
            "blocked_keyword/keywords",
        ),
        (
            sample("kw-own", "adco", Priority::Normal, None, "카 지 노 오픈"),
            "blocked_keyword/keywords",
        ),
        (
            sample("kw-not-mine", "acme", Priority::Normal, None, "카지노 오픈"),
            "validated",
        ),
        (
            sample("upgrade", "adco", Priority::Normal, None, &long_text),
            "validated",
        ),
        (
            sample("too-long", "acme", Priority::Normal, None, &long_text),
            "text_too_long/-",
        ),
        (
            sample("unencodable", "acme", Priority::Normal, None, "안녕 😀"),
            "unencodable_text/-",
        ),
        (
            sample("intl", "acme", Priority::Normal, None, &"a".repeat(161)),
            "validated",
        ),
        (
            sample("expired", "acme", Priority::Normal, None, "지난 안내"),
            "expired/-",
        ),
        (
            sample("not-expired", "acme", Priority::Normal, None, "오늘 안내"),
            "validated",
        ),
        (
            sample("day-ad", "acme", Priority::Ad, None, LEGAL_AD),
            "validated",
        ),
    ];
    for (s, _) in &mut day {
        match s.message_id.as_deref() {
            Some("intl") => s.to = "+14155550100".into(),
            Some("expired") => s.expires_at = Some(today_kst(12) - 1_000),
            Some("not-expired") => s.expires_at = Some(today_kst(13)),
            _ => {}
        }
    }
    for (s, _) in &day {
        send(&pipeline, s).await?;
    }
    // One through the HTTP API: an unmarked ad.
    let response = reqwest::Client::new()
        .post(format!("{}/v1/messages", pipeline.ingress_url))
        .bearer_auth(API_KEY)
        .json(&serde_json::json!({
            "channel": "sms", "to": "01012345678", "priority": "ad",
            "text": "봄 세일 20%", "client_message_id": "http-ad"
        }))
        .send()
        .await?;
    anyhow::ensure!(
        response.status() == 202,
        "POST answered {}",
        response.status()
    );
    let body: serde_json::Value = response.json().await?;
    let http_id: String = decode_json(body["message_id"].clone())?;

    let mut ids: Vec<&str> = day
        .iter()
        .filter_map(|(s, _)| s.message_id.as_deref())
        .collect();
    ids.push(&http_id);
    let o = outcomes(&pipeline, &ids).await?;
    for (s, expected) in &day {
        let id = s.message_id.as_deref().unwrap_or_default();
        assert_eq!(verdict(&o, id), *expected, "{id}");
    }
    assert_eq!(verdict(&o, &http_id), "ad_not_marked/ad_marking");
    // Details name the rule and the word.
    let kw = &o.rejected["kw-global"];
    assert!(
        kw.detail.starts_with("rule keywords:") && kw.detail.contains("\"대출\""),
        "{}",
        kw.detail
    );
    // The upgraded SMS goes as LMS and says so; the international one in GSM-7 parts.
    let upgraded = &o.validated["upgrade"];
    assert_eq!(
        (upgraded.submission.channel, upgraded.upgraded_from),
        (Channel::Lms, Some(Channel::Sms))
    );
    let intl = &o.validated["intl"];
    assert_eq!((intl.encoding.as_str(), intl.segments), ("gsm-7", 2));
    assert_eq!(o.validated["bill-ok"].encoding, "euc-kr");
    assert!(o.held.is_empty(), "nothing is held at noon");

    // --- 22:00 KST --------------------------------------------------------------------
    clock.set(today_kst(22));
    let night: Vec<(Submission, &str)> = vec![
        (
            sample("night-reject", "acme", Priority::Ad, None, LEGAL_AD),
            "night_ad/night_hours",
        ),
        (
            sample("night-hold", "adco", Priority::Ad, None, LEGAL_AD),
            "held",
        ),
        (
            sample(
                "night-adcheck-hold",
                "adco",
                Priority::Normal,
                Some("AD-1"),
                LEGAL_AD,
            ),
            "held",
        ),
        (
            sample("night-otp", "acme", Priority::Otp, None, "인증번호 123456"),
            "validated",
        ),
    ];
    for (s, _) in &night {
        send(&pipeline, s).await?;
    }
    let ids: Vec<&str> = night
        .iter()
        .filter_map(|(s, _)| s.message_id.as_deref())
        .collect();
    let o = outcomes(&pipeline, &ids).await?;
    for (s, expected) in &night {
        let id = s.message_id.as_deref().unwrap_or_default();
        assert_eq!(verdict(&o, id), *expected, "{id}");
    }
    let held = &o.held["night-hold"];
    assert_eq!(held.release_at, today_kst(32)); // tomorrow 08:00 KST
    assert_eq!(held.release_at, release_at(today_kst(22), 8));
    assert_eq!(held.customer_id, "adco");
    assert_eq!(held.submission.text, LEGAL_AD);
    assert!(held.reason.contains("night_hours"), "{}", held.reason);

    // --- the expired message ends `expired` -----------------------------------------------
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let finals: HashMap<String, FinalReport> = by_id(&pipeline, names::FINAL).await?;
        if let Some(report) = finals.get("expired") {
            assert_eq!(report.status, ResultStatus::Expired);
            assert_eq!(
                finals.get("bill-bad").map(|r| r.status),
                Some(ResultStatus::Rejected)
            );
            break;
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "no final report for expired"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // --- the block list ----------------------------------------------------------------
    let runtime = &pipeline.stack.runtime;
    let blocks = policy::blocks(
        runtime,
        &BlockFilter {
            customer: Some("adco".into()),
            ..Default::default()
        },
    )
    .await?;
    let mut blocked: Vec<(&str, &str)> = blocks
        .iter()
        .map(|b| (b.message_id.as_str(), b.rule.as_str()))
        .collect();
    blocked.sort();
    assert_eq!(
        blocked,
        [
            ("ad-no-opt-out", "ad_marking"),
            ("ad-unmarked", "ad_marking"),
            ("adcheck-unmarked", "ad_marking"),
            ("kw-own", "keywords"),
        ]
    );
    let all = policy::blocks(runtime, &BlockFilter::default()).await?;
    assert!(
        all.iter()
            .all(|b| b.message_id != "bill-bad" && b.message_id != "too-long"),
        "only policy blocks"
    );
    let latest = policy::blocks(
        runtime,
        &BlockFilter {
            since: Some(today_kst(21)),
            limit: Some(5),
            ..Default::default()
        },
    )
    .await?;
    assert_eq!(
        latest
            .iter()
            .map(|b| b.message_id.as_str())
            .collect::<Vec<_>>(),
        ["night-reject"]
    );

    pipeline.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn words_added_and_removed_by_an_operator_take_effect_while_running() -> anyhow::Result<()> {
    switchyard_tests::init_logging();
    let clock = ManualClock::new(today_kst(12));
    let pipeline = Pipeline::start_configured(
        TestEnv::new()?,
        &[],
        SimulatorSettings::default(),
        Processing::default(),
        EXTRA,
        |settings| settings.clock = clock.clock(),
    )
    .await?;
    let runtime = &pipeline.stack.runtime;
    // A probe is blocked (or not) once validate's table has the change.
    let probe = |n: usize| {
        sample(
            &format!("probe-{n}"),
            "acme",
            Priority::Normal,
            None,
            "온라인 도.박 사이트",
        )
    };
    let mut n = 0;
    let mut until = |want_blocked: bool| {
        let pipeline = &pipeline;
        n += 100;
        let start = n;
        async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            for i in start.. {
                let s = probe(i);
                send(pipeline, &s).await?;
                let id = format!("probe-{i}");
                let o = outcomes(pipeline, &[&id]).await?;
                if (verdict(&o, &id) == "blocked_keyword/keywords") == want_blocked {
                    return anyhow::Ok(());
                }
                anyhow::ensure!(
                    tokio::time::Instant::now() < deadline,
                    "the word change never took effect"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Ok(())
        }
    };
    until(false).await?;

    let added = policy::add_words(runtime, "*", &["도박".to_string(), "대출".to_string()]).await?;
    assert_eq!(added.changed, ["도박"]);
    assert_eq!(added.unchanged, ["대출"]);
    let listed = policy::list_words(runtime, None).await?;
    assert!(
        listed.contains(&(
            "*".to_string(),
            vec!["대출".to_string(), "도박".to_string()]
        )),
        "{listed:?}"
    );
    until(true).await?;

    let removed =
        policy::remove_words(runtime, "*", &["도박".to_string(), "없음".to_string()]).await?;
    assert_eq!(
        (removed.changed.as_slice(), removed.unchanged.as_slice()),
        (&["도박".to_string()][..], &["없음".to_string()][..])
    );
    until(false).await?;

    // Refused: a word of only punctuation, a policy of no customer.
    assert!(
        policy::add_words(runtime, "*", &[" . ".to_string()])
            .await
            .is_err()
    );
    let err = policy::add_words(runtime, "ghost", &["x".to_string()])
        .await
        .expect_err("unknown policy id");
    assert!(err.to_string().contains("ghost"), "{err}");
    let words = policy::list_words(runtime, Some("*")).await?;
    assert_eq!(words, [("*".to_string(), vec!["대출".to_string()])]);
    pipeline.stop().await;
    Ok(())
}

/// `switchyard ARGS` against the pipeline's broker, namespace and registry: (status, stdout).
async fn cli(pipeline: &Pipeline, args: &[&str]) -> anyhow::Result<(bool, String, String)> {
    let stack = &pipeline.stack;
    let mut command = std::process::Command::new(switchyard_bin()?);
    command
        .args(["--brokers", &stack.env.brokers()])
        .args(["--topic-prefix", stack.env.namespace.prefix()])
        .args(["--schema-registry-url", &stack.registry.url()])
        .args(args);
    let output = tokio::task::spawn_blocking(move || command.output()).await??;
    Ok((
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_policy_commands_edit_words_and_list_blocks() -> anyhow::Result<()> {
    switchyard_tests::init_logging();
    let clock = ManualClock::new(today_kst(12));
    let pipeline = Pipeline::start_configured(
        TestEnv::new()?,
        &[],
        SimulatorSettings::default(),
        Processing::default(),
        EXTRA,
        |settings| settings.clock = clock.clock(),
    )
    .await?;
    let (ok, out, err) = cli(
        &pipeline,
        &["policy", "words", "add", "도박", "경마", "--policy", "adco"],
    )
    .await?;
    assert!(ok, "{err}");
    assert!(out.contains("policy adco: 2 changed"), "{out}");
    let (ok, out, err) = cli(
        &pipeline,
        &["policy", "words", "remove", "경마", "--policy", "adco"],
    )
    .await?;
    assert!(ok && out.contains("1 changed"), "{out} {err}");
    let (ok, out, _) = cli(&pipeline, &["policy", "words", "list"]).await?;
    assert!(ok);
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["*\t대출", "adco\t카지노, 도박"]
    );
    let (ok, _, err) = cli(
        &pipeline,
        &["policy", "words", "add", "x", "--policy", "ghost"],
    )
    .await?;
    assert!(!ok && err.contains("ghost"), "{err}");

    clock.set(today_kst(23));
    send(
        &pipeline,
        &sample("cli-night", "acme", Priority::Ad, None, LEGAL_AD),
    )
    .await?;
    send(
        &pipeline,
        &sample("cli-word", "acme", Priority::Normal, None, "대 출"),
    )
    .await?;
    outcomes(&pipeline, &["cli-night", "cli-word"]).await?;
    let (ok, out, err) = cli(
        &pipeline,
        &["policy", "blocks", "--customer", "acme", "--limit", "1"],
    )
    .await?;
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[1].contains("keywords")
            && lines[1].contains("cli-word")
            && lines[1].contains("23:00:00 KST"),
        "{out}"
    );
    let (ok, out, _) = cli(&pipeline, &["policy", "blocks", "--since", "1970-01-01"]).await?;
    assert!(
        ok && out.contains("night_hours") && out.contains("cli-night"),
        "{out}"
    );
    let (ok, _, err) = cli(&pipeline, &["policy", "blocks", "--since", "yesterday"]).await?;
    assert!(!ok && err.contains("--since"), "{err}");
    pipeline.stop().await;
    Ok(())
}
