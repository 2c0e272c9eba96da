//! validate's state store on the real broker: the duplicate window survives a kill -9 of
//! validate (1,000 messages, 100 repeating a client message id: exactly 900 routed and 100
//! `duplicate`), and a prepaid balance stays exact when validate and report are each killed -9
//! mid-run (final balance = credit − price × delivered; refunds once; credits once per
//! request id).

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use switchyard::pipeline::Role;
use switchyard_carrier_http::simulator::SimulatorSettings;
use switchyard_config::balance::{self, Credit};
use switchyard_runtime::{Output, Processing, Runtime, names};
use switchyard_schemas::{
    BalanceEvent, BalanceKind, FinalReport, Record, Rejection, ResultStatus, RoutingDecision,
    ValidatedMessage,
};
use switchyard_tests::pipeline::Pipeline;
use switchyard_tests::processes::{Connection, RoleProcess};
use switchyard_tests::{TestEnv, read_values, sample_submission};
use tokio::time::Instant;

fn log_dir(test: &str, env: &TestEnv) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("validate_state")
        .join(format!(
            "{test}-{}",
            env.namespace.prefix().trim_end_matches('.')
        ))
}

/// Wait until `done` holds for the values of `topic`.
async fn wait_for<T: Record>(
    runtime: &Runtime,
    topic: &str,
    timeout: Duration,
    what: &str,
    done: impl Fn(&[T]) -> bool,
) -> anyhow::Result<Vec<T>> {
    let deadline = Instant::now() + timeout;
    loop {
        let seen = read_values::<T>(runtime, topic).await?;
        if done(&seen) {
            return Ok(seen);
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{what}: {topic} holds {} records after {timeout:?}",
            seen.len()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Produce submissions of `customer` straight to messages.accepted, in order.
async fn produce(
    runtime: &Runtime,
    customer: &str,
    messages: &[(String, String)],
) -> anyhow::Result<()> {
    let outputs: Vec<Output> = messages
        .iter()
        .enumerate()
        .map(|(i, (id, client_message_id))| {
            let mut s = sample_submission(Some(id), customer, &format!("state test {i}"));
            s.client_message_id = Some(client_message_id.clone());
            s.to = format!("0101{:07}", i);
            Output::new(names::ACCEPTED, customer, s)
        })
        .collect();
    runtime.publish("test", &outputs).await?;
    Ok(())
}

/// Entries a process's log says it restored.
fn restored_entries(log: &str) -> usize {
    log.lines()
        .filter(|l| l.contains("state restored"))
        .filter_map(|l| l.split("entries=").nth(1))
        .filter_map(|n| n.trim().parse::<usize>().ok())
        .sum()
}

fn fast_carrier(success_rate: f64) -> SimulatorSettings {
    SimulatorSettings {
        success_rate,
        receipt_delay: Duration::from_millis(5),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn duplicates_are_caught_across_a_kill_9_of_validate() -> anyhow::Result<()> {
    switchyard_tests::init_logging();
    let env = TestEnv::new()?;
    let logs = log_dir("duplicates", &env);
    let pipeline = Pipeline::start_on(env, &[Role::Validate], fast_carrier(1.0)).await?;
    let runtime = pipeline.stack.runtime.clone();
    let connection = Connection::new(&pipeline.stack.env, &pipeline.stack.registry.url());
    let mut validate = RoleProcess::spawn(&connection, "validate", "validate-dedup", &[], &logs)?;
    validate.wait_ready(None, Duration::from_secs(60)).await?;

    // 1,000 messages; every tenth repeats an earlier client message id. The repeats after the
    // restart name ids taken before it, so only a restored window catches them.
    let mut plan: Vec<(String, String)> = Vec::new();
    let mut first_of: HashMap<String, String> = HashMap::new();
    let mut expected_duplicates: HashMap<String, String> = HashMap::new();
    for i in 0..1000 {
        let id = format!("dedup-{i:04}");
        let client_message_id = if i % 10 == 9 {
            let earlier = if i < 500 { i - 5 } else { i - 501 };
            let taken = format!("order-{earlier}");
            expected_duplicates.insert(id.clone(), first_of[&taken].clone());
            taken
        } else {
            let fresh = format!("order-{i}");
            first_of.insert(fresh.clone(), id.clone());
            fresh
        };
        plan.push((id, client_message_id));
    }
    assert_eq!(expected_duplicates.len(), 100);

    let first_half = {
        let runtime = runtime.clone();
        let plan = plan[..500].to_vec();
        tokio::spawn(async move {
            for chunk in plan.chunks(20) {
                produce(&runtime, "acme", chunk).await?;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            anyhow::Ok(())
        })
    };
    // The first half takes about 2.5 s to produce: the kill lands in the middle of it.
    wait_for::<ValidatedMessage>(
        &runtime,
        names::VALIDATED,
        Duration::from_secs(60),
        "before the kill",
        |v| v.len() >= 100,
    )
    .await?;
    validate.kill9()?;
    first_half.await??;
    produce(&runtime, "acme", &plan[500..]).await?;
    validate.start_again()?;
    validate.wait_ready(None, Duration::from_secs(60)).await?;

    wait_for::<Rejection>(
        &runtime,
        names::REJECTED,
        Duration::from_secs(90),
        "duplicates",
        |r| r.len() >= 100,
    )
    .await?;
    wait_for::<RoutingDecision>(
        &runtime,
        names::ROUTED,
        Duration::from_secs(90),
        "routed",
        |r| r.len() >= 900,
    )
    .await?;
    // Give a stray extra record the time to show up before counting exactly.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rejected = read_values::<Rejection>(&runtime, names::REJECTED).await?;
    let routed = read_values::<RoutingDecision>(&runtime, names::ROUTED).await?;
    let validated = read_values::<ValidatedMessage>(&runtime, names::VALIDATED).await?;

    assert_eq!(validated.len(), 900, "900 valid, each once");
    assert_eq!(routed.len(), 900, "900 routed, each once");
    let routed_ids: HashSet<&str> = routed.iter().map(|r| r.message_id.as_str()).collect();
    assert_eq!(routed_ids.len(), 900);
    assert_eq!(rejected.len(), 100, "100 rejected, each once");
    for rejection in &rejected {
        assert_eq!(rejection.code, "duplicate", "{rejection:?}");
        let first = &expected_duplicates[&rejection.message_id];
        assert!(
            rejection.detail.contains(first.as_str()),
            "{} should name {first}: {}",
            rejection.message_id,
            rejection.detail
        );
        assert!(!routed_ids.contains(rejection.message_id.as_str()));
    }
    assert!(
        restored_entries(&validate.log()) > 0,
        "the restarted validate restored its state:\n{}",
        validate.log_tail(20)
    );
    pipeline.stop().await;
    Ok(())
}

const PREPAID: &str = r#"
[[customers]]
id = "prepay"
channels = ["sms"]
prepaid = true
prices = { sms = 10 }

[[routes]]
customer = "prepay"
channel = "sms"
carriers = [
    { carrier = "skt", groups = [{ group = "skt-direct", ratio = 1 }, { group = "skt-aggregator", ratio = 1 }] },
]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_prepaid_balance_is_exact_when_validate_and_report_are_killed() -> anyhow::Result<()> {
    switchyard_tests::init_logging();
    let env = TestEnv::new()?;
    let logs = log_dir("balance", &env);
    let pipeline = Pipeline::start_configured(
        env,
        &[Role::Validate, Role::Report],
        fast_carrier(0.9),
        Processing::ExactlyOnce,
        PREPAID,
        |_| {},
    )
    .await?;
    let runtime = pipeline.stack.runtime.clone();
    let connection = Connection::new(&pipeline.stack.env, &pipeline.stack.registry.url());
    let mut validate = RoleProcess::spawn(&connection, "validate", "validate-money", &[], &logs)?;
    let mut report = RoleProcess::spawn(&connection, "report", "report-money", &[], &logs)?;
    validate.wait_ready(None, Duration::from_secs(60)).await?;
    report.wait_ready(None, Duration::from_secs(60)).await?;

    // The same credit requested twice (a retried command) counts once.
    let initial = 20_000;
    for _ in 0..2 {
        balance::credit(
            &runtime,
            &Credit {
                customer_id: "prepay".into(),
                amount: initial,
                reason: "opening balance".into(),
                request_id: "opening-1".into(),
            },
        )
        .await?;
    }
    let refused = balance::credit(
        &runtime,
        &Credit {
            customer_id: "acme".into(),
            amount: 5,
            reason: "not prepaid".into(),
            request_id: "x".into(),
        },
    )
    .await;
    assert!(refused.is_err(), "acme is not prepaid");

    let plan: Vec<(String, String)> = (0..1000)
        .map(|i| (format!("paid-{i:04}"), format!("paid-order-{i}")))
        .collect();
    let producer = {
        let runtime = runtime.clone();
        let plan = plan.clone();
        tokio::spawn(async move {
            // About 200 messages a second, so both kills land mid-run.
            for chunk in plan.chunks(20) {
                produce(&runtime, "prepay", chunk).await?;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            anyhow::Ok(())
        })
    };
    // Production takes about 5 s: validate is killed after 1.5 s and report after 3 s.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    validate.kill9()?;
    validate.start_again()?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    report.kill9()?;
    report.start_again()?;
    producer.await??;

    let finals = wait_for::<FinalReport>(
        &runtime,
        names::FINAL,
        Duration::from_secs(120),
        "every final report",
        |f| f.len() >= 1000,
    )
    .await?;
    let delivered = finals
        .iter()
        .filter(|f| f.status == ResultStatus::Delivered)
        .count() as i64;
    let not_delivered = 1000 - delivered;
    assert!(
        not_delivered > 30 && delivered > 800,
        "about 10% fail: {not_delivered}"
    );
    // One credit, 1,000 debits and one refund per message not delivered.
    wait_for::<BalanceEvent>(
        &runtime,
        names::BALANCE_LEDGER,
        Duration::from_secs(60),
        "every refund",
        |e| e.len() as i64 >= 1 + 1000 + not_delivered,
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let ledger = read_values::<BalanceEvent>(&runtime, names::BALANCE_LEDGER).await?;
    let count = |kind: BalanceKind| ledger.iter().filter(|e| e.kind == kind).count() as i64;
    assert_eq!(count(BalanceKind::Credit), 1, "the credit applied once");
    assert_eq!(
        count(BalanceKind::Debit),
        1000,
        "every message charged once"
    );
    assert_eq!(
        count(BalanceKind::Refund),
        not_delivered,
        "every failure refunded once"
    );
    let ids: HashSet<&str> = ledger.iter().map(|e| e.event_id.as_str()).collect();
    assert_eq!(ids.len(), ledger.len(), "no ledger event twice");

    let expected = initial - 10 * delivered;
    let fold: i64 = ledger.iter().map(|e| e.kind.sign() * e.amount).sum();
    assert_eq!(fold, expected, "the fold of the ledger");
    assert_eq!(
        ledger.last().map(|e| e.balance_after),
        Some(expected),
        "the last event's balance"
    );
    assert!(
        restored_entries(&validate.log()) > 0,
        "the restarted validate took over mid-run with the state restored:\n{}",
        validate.log_tail(20)
    );
    let shown = balance::show(&runtime, Some("prepay")).await?;
    assert_eq!(shown.len(), 1);
    assert_eq!(
        shown[0].balance, expected,
        "the snapshot `balance show` reads"
    );
    eprintln!(
        "balance: {initial} - 10 x {delivered} delivered = {expected} ({not_delivered} refunded)"
    );
    pipeline.stop().await;
    Ok(())
}
