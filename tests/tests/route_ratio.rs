//! Exact ratios across a restart, on the real broker: a 3:1:0 split over 10,000 messages with
//! the route process killed -9 in the middle and started again. Route keeps its round-robin
//! positions in its state store (`state.route`, per input partition), so the restarted process
//! picks on where the killed one left off: each partition's split is exactly what one
//! uninterrupted smooth round-robin gives its messages, and no message is routed twice.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use rdkafka::Message;
use switchyard_runtime::names::{ROUTED, VALIDATED, sender};
use switchyard_runtime::{Output, Runtime};
use switchyard_schemas::{RoutingDecision, ValidatedMessage};
use switchyard_stages::route::SmoothRoundRobin;
use switchyard_tests::processes::{Connection, RoleProcess};
use switchyard_tests::{Stack, read_all, read_values, sample_submission};
use tokio::time::Instant;

const MESSAGES: usize = 10_000;

/// Three groups at 3:1:0, one sender each.
const CONFIG: &str = r#"
[[customers]]
id = "acme"
channels = ["sms"]

[[senders]]
name = "three"
group = "g-three"
channel = "sms"
carriers = ["skt"]
endpoint = "http://127.0.0.1:9/submit"

[[senders]]
name = "one"
group = "g-one"
channel = "sms"
carriers = ["skt"]
endpoint = "http://127.0.0.1:9/submit"

[[senders]]
name = "never"
group = "g-never"
channel = "sms"
carriers = ["skt"]
endpoint = "http://127.0.0.1:9/submit"

[[routes]]
customer = "acme"
channel = "sms"
carriers = [{ carrier = "skt", groups = [{ group = "g-three", ratio = 3 }, { group = "g-one", ratio = 1 }, { group = "g-never", ratio = 0 }] }]

[[numbering]]
prefix = "0101"
carrier = "skt"
"#;

async fn routed_count(runtime: &Runtime) -> anyhow::Result<usize> {
    Ok(read_all(&runtime.kafka, ROUTED).await?.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_three_to_one_split_stays_exact_across_a_kill_9_of_route() -> anyhow::Result<()> {
    switchyard_tests::init_logging();
    let stack = Stack::start(&[]).await?;
    switchyard_config::apply(&stack.runtime, CONFIG, false, 1).await?;
    let runtime = stack.runtime.clone();
    let logs = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("route_ratio")
        .join(stack.env.namespace.prefix().trim_end_matches('.'));
    // Every message waits in messages.validated before route starts.
    for chunk in 0..MESSAGES / 1_000 {
        let outputs: Vec<Output> = (chunk * 1_000..(chunk + 1) * 1_000)
            .map(|i| {
                let id = format!("ratio-{i:05}");
                let mut s = sample_submission(Some(&id), "acme", "ratio");
                s.to = format!("0101{i:07}");
                let message = ValidatedMessage {
                    message_id: id.clone(),
                    customer_id: "acme".into(),
                    submission: s,
                    encoding: "euc-kr".into(),
                    segments: 1,
                    validated_at: 1,
                    upgraded_from: None,
                };
                Output::new(VALIDATED, id, message)
            })
            .collect();
        runtime.publish("test", &outputs).await?;
    }
    let connection = Connection::new(&stack.env, &stack.registry.url());
    let mut route = RoleProcess::spawn(&connection, "route", "route-ratio", &[], &logs)?;
    route.wait_ready(None, Duration::from_secs(60)).await?;
    // Killed -9 once a good part, but not all, is routed.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let routed = routed_count(&runtime).await?;
        if routed >= 2_000 {
            anyhow::ensure!(routed < MESSAGES, "route finished before the kill");
            println!("killing route with {routed} of {MESSAGES} routed");
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "route is stuck at {routed}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    route.kill9()?;
    route.start_again()?;
    route.wait_ready(None, Duration::from_secs(60)).await?;
    let deadline = Instant::now() + Duration::from_secs(180);
    let decisions = loop {
        let decisions = read_values::<RoutingDecision>(&runtime, ROUTED).await?;
        if decisions.len() >= MESSAGES {
            break decisions;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{} of {MESSAGES} routed",
            decisions.len()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let ids: HashSet<&str> = decisions.iter().map(|d| d.message_id.as_str()).collect();
    assert_eq!(ids.len(), MESSAGES, "no message routed twice");
    assert_eq!(decisions.len(), MESSAGES, "no message routed twice");

    // Per input partition, the split is exactly an uninterrupted round-robin's.
    let mut per_partition: HashMap<i32, HashMap<String, usize>> = HashMap::new();
    for name in ["three", "one", "never"] {
        for record in read_all(&runtime.kafka, &sender(name)).await? {
            *per_partition
                .entry(record.partition())
                .or_default()
                .entry(name.to_string())
                .or_default() += 1;
        }
    }
    let validated_partitions: HashMap<i32, usize> = read_all(&runtime.kafka, VALIDATED)
        .await?
        .iter()
        .fold(HashMap::new(), |mut counts, r| {
            *counts.entry(r.partition()).or_default() += 1;
            counts
        });
    let mut totals = [0usize; 3];
    for (partition, n) in &validated_partitions {
        let mut picker = SmoothRoundRobin::default();
        let mut expected = [0usize; 3];
        for _ in 0..*n {
            expected[picker.pick(&[3, 1, 0]).expect("picks")] += 1;
        }
        let got = per_partition.get(partition).cloned().unwrap_or_default();
        let got = [
            got.get("three").copied().unwrap_or(0),
            got.get("one").copied().unwrap_or(0),
            got.get("never").copied().unwrap_or(0),
        ];
        assert_eq!(got, expected, "partition {partition} ({n} messages)");
        for (total, g) in totals.iter_mut().zip(got) {
            *total += g;
        }
    }
    println!(
        "3:1:0 over {MESSAGES} with a kill -9: {} / {} / {}",
        totals[0], totals[1], totals[2]
    );
    assert_eq!(totals.iter().sum::<usize>(), MESSAGES);
    assert!(
        totals[0].abs_diff(7_500) <= 2 && totals[2] == 0,
        "{totals:?}"
    );
    assert!(
        route.log().contains("state restored"),
        "the restart restored route's positions"
    );
    Ok(())
}
