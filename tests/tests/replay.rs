//! `switchyard replay` on the real broker: 100,000 submissions published the normal way come
//! out whole as JSON lines; filters, offset and time bounds select exactly the right records;
//! CSV has its header and one row per record; `--progress` draws on stderr; a record that does
//! not decode is reported and gives a non-zero exit status without stopping the replay.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Output as ProcessOutput};
use std::time::{Duration, Instant};

use serde_json::Value;
use switchyard_runtime::{Output, names};
use switchyard_schemas::Channel;
use switchyard_tests::processes::switchyard_bin;
use switchyard_tests::{Stack, committed_total, produce_raw, sample_submission};

const RECORDS: usize = 100_000;
const CUSTOMERS: usize = 7;

/// Where one produced message went, and what it says.
#[derive(Debug, Clone)]
struct Produced {
    customer: String,
    channel: &'static str,
    partition: i32,
    offset: i64,
}

fn channel(i: usize) -> (Channel, &'static str) {
    if i.is_multiple_of(3) {
        (Channel::Lms, "lms")
    } else {
        (Channel::Sms, "sms")
    }
}

/// Publish `count` submissions to `topic` through the runtime's publish, keyed by customer;
/// message id `m-<i>` → where it was written.
async fn publish(
    stack: &Stack,
    topic: &str,
    range: std::ops::Range<usize>,
) -> anyhow::Result<BTreeMap<String, Produced>> {
    let mut produced = BTreeMap::new();
    let ids: Vec<usize> = range.collect();
    for chunk in ids.chunks(10_000) {
        let outputs: Vec<Output> = chunk
            .iter()
            .map(|&i| {
                let customer = format!("c{}", i % CUSTOMERS);
                let mut submission =
                    sample_submission(Some(&format!("m-{i}")), &customer, &format!("text {i}"));
                submission.channel = channel(i).0;
                Output::new(topic, customer, submission)
            })
            .collect();
        let written = stack.runtime.publish("test", &outputs).await?;
        for (&i, at) in chunk.iter().zip(written) {
            produced.insert(
                format!("m-{i}"),
                Produced {
                    customer: format!("c{}", i % CUSTOMERS),
                    channel: channel(i).1,
                    partition: at.partition,
                    offset: at.offset,
                },
            );
        }
    }
    Ok(produced)
}

/// `switchyard replay ARGS` in the stack's namespace.
async fn replay(stack: &Stack, args: &[&str]) -> anyhow::Result<ProcessOutput> {
    let mut command = Command::new(switchyard_bin()?);
    command
        .args(["--brokers", &stack.env.brokers()])
        .args(["--schema-registry-url", &stack.registry.url()])
        .arg("replay")
        .args(["--namespace", stack.env.namespace.prefix()])
        .args(args)
        .env("RUST_LOG", "warn");
    Ok(tokio::task::spawn_blocking(move || command.output()).await??)
}

fn stderr(output: &ProcessOutput) -> String {
    String::from_utf8_lossy(&output.stderr).to_string()
}

/// The JSON lines of a successful replay.
fn lines(output: &ProcessOutput) -> anyhow::Result<Vec<Value>> {
    anyhow::ensure!(output.status.success(), "replay failed: {}", stderr(output));
    String::from_utf8(output.stdout.clone())?
        .lines()
        .map(|line| Ok(serde_json::from_str(line)?))
        .collect()
}

/// The message ids of replayed JSON lines.
fn ids(lines: &[Value]) -> BTreeSet<String> {
    lines
        .iter()
        .filter_map(|l| l["value"]["message_id"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hundred_thousand_records_replay_whole_filtered_bounded_and_as_csv() -> anyhow::Result<()>
{
    let stack = Stack::start(&[]).await?;
    let started = Instant::now();
    let produced = publish(&stack, names::ACCEPTED, 0..RECORDS).await?;
    assert_eq!(produced.len(), RECORDS);
    eprintln!("published {RECORDS} in {:?}", started.elapsed());

    // Everything, as JSON lines with the metadata of where each record is.
    let started = Instant::now();
    let all = replay(&stack, &[names::ACCEPTED]).await?;
    let elapsed = started.elapsed();
    let all_stderr = stderr(&all);
    let records = lines(&all)?;
    eprintln!("replayed {RECORDS} in {elapsed:?}: {all_stderr}");
    assert_eq!(records.len(), RECORDS);
    assert_eq!(ids(&records), produced.keys().cloned().collect());
    for line in &records {
        let id = line["value"]["message_id"].as_str().unwrap_or_default();
        let at = &produced[id];
        assert_eq!(line["topic"], names::ACCEPTED, "the logical name");
        assert_eq!(line["partition"], at.partition);
        assert_eq!(line["offset"], at.offset);
        assert_eq!(line["key"], at.customer.as_str());
        assert!(line["timestamp"].as_i64().is_some_and(|t| t > 0), "{line}");
        assert_eq!(line["value"]["channel"], at.channel);
    }
    assert!(
        all_stderr.contains(&format!(
            "replay: {RECORDS} records read, {RECORDS} matched, 0 decode failures"
        )),
        "{all_stderr}"
    );
    assert_eq!(
        committed_total(
            &stack.env.kafka(),
            "switchyard.reader.replay",
            names::ACCEPTED
        )?,
        0,
        "a replay commits no offset"
    );
    assert!(
        !all_stderr.contains("ETA"),
        "no progress bar when stderr is no terminal: {all_stderr}"
    );

    // Filters (AND) select exactly the matching records.
    let filtered = lines(
        &replay(
            &stack,
            &[
                names::ACCEPTED,
                "--filter",
                "customer_id=c3",
                "--filter",
                "channel=lms",
            ],
        )
        .await?,
    )?;
    let expected: BTreeSet<String> = produced
        .iter()
        .filter(|(_, p)| p.customer == "c3" && p.channel == "lms")
        .map(|(id, _)| id.clone())
        .collect();
    assert!(expected.len() > 4_000, "{} expected", expected.len());
    assert_eq!(filtered.len(), expected.len(), "no duplicates");
    assert_eq!(ids(&filtered), expected);

    // Offsets bound every partition: [from, to).
    let bounded =
        lines(&replay(&stack, &[names::ACCEPTED, "--from", "1000", "--to", "1250"]).await?)?;
    let expected: BTreeSet<String> = produced
        .iter()
        .filter(|(_, p)| (1000..1250).contains(&p.offset))
        .map(|(id, _)| id.clone())
        .collect();
    let partitions: BTreeSet<i32> = produced.values().map(|p| p.partition).collect();
    assert_eq!(expected.len(), 250 * partitions.len());
    assert_eq!(bounded.len(), expected.len());
    assert_eq!(ids(&bounded), expected);

    // CSV: a header from the metadata and the value's top-level fields, one row per record.
    let csv = replay(
        &stack,
        &[names::ACCEPTED, "--format", "csv", "--to", "2000"],
    )
    .await?;
    assert!(csv.status.success(), "{}", stderr(&csv));
    // The values here hold no comma, quote or newline, so a plain split reads the rows (the
    // unit tests check quoting).
    let text = String::from_utf8(csv.stdout)?;
    let mut csv_lines = text.lines();
    let header: Vec<&str> = csv_lines.next().unwrap_or_default().split(',').collect();
    assert_eq!(
        header[..7],
        [
            "topic",
            "partition",
            "offset",
            "timestamp",
            "key",
            "message_id",
            "customer_id"
        ]
    );
    let column = |name: &str| header.iter().position(|h| *h == name).unwrap_or(usize::MAX);
    let (id_column, text_column, metadata_column) =
        (column("message_id"), column("text"), column("metadata"));
    let rows: Vec<Vec<&str>> = csv_lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 2000 * partitions.len());
    for row in &rows {
        assert_eq!(row.len(), header.len(), "{row:?}");
        let id = row[id_column];
        assert_eq!(row[text_column], format!("text {}", &id[2..]));
        assert_eq!(row[metadata_column], "{}", "nested: JSON text");
        assert!(produced[id].offset < 2000);
    }

    // --progress draws on stderr although it is no terminal.
    let progress = replay(&stack, &[names::ACCEPTED, "--progress", "--to", "5000"]).await?;
    assert!(progress.status.success(), "{}", stderr(&progress));
    let progress_stderr = stderr(&progress);
    let total = 5000 * partitions.len();
    assert!(
        progress_stderr.lines().any(|l| l
            .contains(&format!("/{} records read", group_thousands(total)))
            && l.contains("ETA")),
        "{progress_stderr}"
    );
    assert_eq!(
        String::from_utf8(progress.stdout)?.lines().count(),
        total,
        "progress never goes to stdout"
    );
    Ok(())
}

/// `15000` → `15,000`, as indicatif writes counts.
fn group_thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn a_record_that_does_not_decode_is_reported_and_the_rest_still_printed() -> anyhow::Result<()>
{
    let stack = Stack::start(&[]).await?;
    let topic = names::REJECTED;
    publish(&stack, topic, 0..5).await?;
    produce_raw(&stack.runtime, topic, "junk", b"not avro at all").await?;
    publish(&stack, topic, 5..10).await?;

    let output = replay(&stack, &[topic]).await?;
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(4), "{text}");
    let printed: BTreeSet<String> = String::from_utf8(output.stdout)?
        .lines()
        .map(serde_json::from_str::<Value>)
        .collect::<Result<Vec<_>, _>>()?
        .iter()
        .filter_map(|l| l["value"]["message_id"].as_str().map(str::to_string))
        .collect();
    assert_eq!(printed, (0..10).map(|i| format!("m-{i}")).collect());
    assert!(
        text.contains("10 matched, 1 decode failures"),
        "counted: {text}"
    );
    assert!(
        text.contains("1 records could not be decoded; the first: partition"),
        "{text}"
    );
    assert!(
        text.contains("Confluent") || text.contains("magic"),
        "the reason: {text}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn times_bound_the_replay_and_bad_arguments_are_refused() -> anyhow::Result<()> {
    let stack = Stack::start(&[]).await?;
    let topic = names::ROUTED;
    let before = publish(&stack, topic, 0..30).await?;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let boundary = rfc3339(switchyard_schemas::now_millis());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let after = publish(&stack, topic, 30..60).await?;

    let later = lines(&replay(&stack, &[topic, "--from", &boundary]).await?)?;
    assert_eq!(ids(&later), after.keys().cloned().collect());
    let earlier = lines(&replay(&stack, &[topic, "--to", &boundary]).await?)?;
    assert_eq!(ids(&earlier), before.keys().cloned().collect());
    let future = lines(&replay(&stack, &[topic, "--from", "2999-01-01T00:00:00Z"]).await?)?;
    assert!(future.is_empty());

    for args in [
        vec![topic, "--from", "yesterday"],
        vec![topic, "--from", "10", "--to", "5"],
        vec![topic, "--filter", "customer_id"],
        vec!["no.such.topic"],
    ] {
        let refused = replay(&stack, &args).await?;
        assert!(!refused.status.success(), "{args:?} accepted");
        assert!(refused.stdout.is_empty());
        let text = stderr(&refused);
        assert!(
            text.contains("--from") || text.contains("--filter") || text.contains("no.such.topic"),
            "{args:?}: {text}"
        );
    }
    Ok(())
}

/// ms since the epoch as an RFC 3339 UTC time with milliseconds.
fn rfc3339(ms: i64) -> String {
    let (days, ms_of_day) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    // Civil date from days since 1970-01-01 (proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (h, m, s, milli) = (
        ms_of_day / 3_600_000,
        ms_of_day / 60_000 % 60,
        ms_of_day / 1000 % 60,
        ms_of_day % 1000,
    );
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{milli:03}Z")
}

#[test]
fn rfc3339_of_known_instants() {
    assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
    assert_eq!(rfc3339(1_709_251_199_999), "2024-02-29T23:59:59.999Z");
    assert_eq!(rfc3339(1_795_000_000_123), "2026-11-18T11:06:40.123Z");
}

#[tokio::test(flavor = "multi_thread")]
async fn transactional_topics_replay_committed_records_only_and_end() -> anyhow::Result<()> {
    let stack = Stack::start(&[]).await?;
    let topic = names::VALIDATED;
    let batch = |range: std::ops::Range<usize>, extra: Option<&str>| {
        let mut outputs: Vec<Output> = range
            .map(|i| {
                Output::new(
                    topic,
                    "acme",
                    sample_submission(Some(&format!("m-{i}")), "acme", "hi"),
                )
            })
            .collect();
        if let Some(missing) = extra {
            outputs.push(Output::new(
                missing,
                "acme",
                sample_submission(None, "acme", "x"),
            ));
        }
        outputs
    };
    // Two committed transactions around an aborted one (its last record's topic is missing).
    stack
        .runtime
        .publish_atomic("test", &batch(0..10, None))
        .await?;
    let aborted = stack
        .runtime
        .publish_atomic("test", &batch(100..110, Some("no.such.topic")))
        .await;
    assert!(aborted.is_err(), "the batch is aborted");
    stack
        .runtime
        .publish_atomic("test", &batch(10..20, None))
        .await?;

    let started = Instant::now();
    let output = replay(&stack, &[topic]).await?;
    eprintln!(
        "transactional replay: {:?} {}",
        started.elapsed(),
        stderr(&output)
    );
    let printed = lines(&output)?;
    assert_eq!(
        ids(&printed),
        (0..20).map(|i| format!("m-{i}")).collect(),
        "committed records only"
    );
    assert_eq!(printed.len(), 20);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "ends although the last offsets are transaction markers"
    );
    Ok(())
}
