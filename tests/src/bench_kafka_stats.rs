//! What a bench run, and the pipeline idling, cost beside its rates: CPU per watched process
//! (`bench_proc`), threads, and Kafka requests by API and client with the clients open, read
//! from the pipeline's metrics text (`switchyard_kafka_requests_total{client,api}` and
//! `switchyard_kafka_clients{client}`, summed from librdkafka's statistics).
//!
//! Every client reports its statistics every `STATISTICS_INTERVAL_MS` (5 s), each on its own
//! beat, so a reading lags each client by less than one interval. Two readings a whole number
//! of intervals apart therefore cover the same length of every client's traffic, shifted by its
//! lag: the reading after a run is taken a whole number of intervals after the one before it
//! and at least one interval (plus a margin) after the run's last message, so it holds the
//! whole run plus a known stretch of quiet around it, which the idle rate prices.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use switchyard_runtime::Metrics;
use switchyard_runtime::kafka_stats::STATISTICS_INTERVAL_MS;
use switchyard_runtime::metrics::names::{KAFKA_CLIENTS, KAFKA_REQUESTS};

use crate::bench_proc::{CpuSnapshot, Threads, Watched, cpu_snapshot};

/// How often every client reports its statistics.
pub const INTERVAL: Duration = Duration::from_millis(STATISTICS_INTERVAL_MS as u64);
/// How long past a client's beat the bench allows for its report to be counted.
const MARGIN: Duration = Duration::from_millis(500);
/// APIs and clients listed by name; the rest are summed as `other`.
const TOP: usize = 6;

/// Whether a client (by purpose) is the bench's own rather than the pipeline's: its readers
/// (`reader.bench.*`) and the test helpers' (`reader.test.*`).
pub fn bench_client(purpose: &str) -> bool {
    purpose.starts_with("reader.bench.") || purpose.starts_with("reader.test.")
}

/// The pipeline's Kafka request counters and open-client gauges in one metrics text (the
/// bench's own clients left out).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KafkaReading {
    /// Requests sent so far, by (client purpose, API).
    requests: BTreeMap<(String, String), f64>,
    /// Clients open, by purpose.
    clients: BTreeMap<String, f64>,
}

impl KafkaReading {
    /// Read the Prometheus text format.
    pub fn parse(metrics: &str) -> Self {
        let requests_total = format!("{KAFKA_REQUESTS}_total");
        let mut reading = KafkaReading::default();
        for (name, labels, value) in metrics.lines().filter_map(sample) {
            let label = |key: &str| {
                labels
                    .iter()
                    .find(|(k, _)| k == key)
                    .map(|(_, v)| v.clone())
            };
            let Some(client) = label("client").filter(|c| !bench_client(c)) else {
                continue;
            };
            if name == requests_total {
                if let Some(api) = label("api") {
                    *reading.requests.entry((client, api)).or_default() += value;
                }
            } else if name == KAFKA_CLIENTS {
                *reading.clients.entry(client).or_default() += value;
            }
        }
        reading
    }

    /// Read the runtime's metrics now.
    pub fn now(metrics: &Metrics) -> Self {
        Self::parse(&metrics.encode())
    }

    /// Clients open.
    pub fn clients_open(&self) -> f64 {
        self.clients.values().sum()
    }
}

/// A sample's labels: (key, value) in the order written.
type Labels = Vec<(String, String)>;

/// One sample line of the Prometheus text format: `name{key="value",…} value`; `None` for
/// comments, blank lines and anything else.
fn sample(line: &str) -> Option<(&str, Labels, f64)> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let name_end = line.find(['{', ' '])?;
    let name = &line[..name_end];
    let mut labels = Vec::new();
    let mut rest = &line[name_end..];
    if let Some(after_brace) = rest.strip_prefix('{') {
        let mut chars = after_brace.char_indices();
        let mut key = String::new();
        let end = loop {
            let (i, c) = chars.next()?;
            match c {
                '}' => break i,
                ',' | ' ' => {}
                '=' => {
                    if chars.next()?.1 != '"' {
                        return None;
                    }
                    let mut value = String::new();
                    loop {
                        match chars.next()?.1 {
                            '"' => break,
                            '\\' => match chars.next()?.1 {
                                'n' => value.push('\n'),
                                other => value.push(other),
                            },
                            other => value.push(other),
                        }
                    }
                    labels.push((std::mem::take(&mut key), value));
                }
                other => key.push(other),
            }
        };
        rest = &after_brace[end + 1..];
    }
    let value = rest.split_whitespace().next()?.parse().ok()?;
    Some((name, labels, value))
}

/// Requests the pipeline's clients sent between two readings (or per message, per second).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Requests {
    pub by_api: BTreeMap<String, f64>,
    pub by_client: BTreeMap<String, f64>,
}

impl Requests {
    /// What `after` counted beyond `before` (a client absent before counts from zero).
    pub fn between(before: &KafkaReading, after: &KafkaReading) -> Self {
        let mut requests = Requests::default();
        for (key @ (client, api), total) in &after.requests {
            let added = total - before.requests.get(key).copied().unwrap_or(0.0);
            if added > 0.0 {
                *requests.by_api.entry(api.clone()).or_default() += added;
                *requests
                    .by_client
                    .entry(short_client(client).to_string())
                    .or_default() += added;
            }
        }
        requests
    }

    pub fn total(&self) -> f64 {
        self.by_api.values().sum()
    }

    /// These counts less `seconds` at the per-second `rate` (per key; a result may be
    /// negative where the rate's guess overshoots).
    pub fn less(&self, rate: &Requests, seconds: f64) -> Self {
        let subtract = |counts: &BTreeMap<String, f64>, rate: &BTreeMap<String, f64>| {
            let mut net = counts.clone();
            for (k, r) in rate {
                *net.entry(k.clone()).or_default() -= r * seconds;
            }
            net
        };
        Requests {
            by_api: subtract(&self.by_api, &rate.by_api),
            by_client: subtract(&self.by_client, &rate.by_client),
        }
    }

    /// Every count divided by `n` (messages, seconds).
    pub fn per(&self, n: f64) -> Self {
        let n = n.max(1e-9);
        let divide = |counts: &BTreeMap<String, f64>| {
            counts
                .iter()
                .map(|(k, v)| (k.clone(), v / n))
                .collect::<BTreeMap<_, _>>()
        };
        Requests {
            by_api: divide(&self.by_api),
            by_client: divide(&self.by_client),
        }
    }
}

/// A client's purpose without what adds nothing in a table: the `switchyard.` of its group or
/// transactional id, and the instance id a transactional id ends with
/// (`transactions.switchyard.route.d01e…` → `transactions.route`).
fn short_client(purpose: &str) -> String {
    let purpose = match purpose.rsplit_once('.') {
        Some((head, tail)) if tail.len() >= 16 && tail.chars().all(|c| c.is_ascii_hexdigit()) => {
            head
        }
        _ => purpose,
    };
    purpose.replace("switchyard.", "")
}

/// The `n` largest counts, largest first (ties by name), then the rest summed as `other`.
pub fn top(counts: &BTreeMap<String, f64>, n: usize) -> Vec<(String, f64)> {
    let mut sorted: Vec<(String, f64)> = counts
        .iter()
        .filter(|(_, v)| **v > 0.0)
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    sorted.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    if sorted.len() > n {
        let other = sorted.split_off(n).iter().map(|(_, v)| v).sum();
        sorted.push(("other".into(), other));
    }
    sorted
}

/// `Fetch 6.10  Produce 2.00  other 0.40`: the top counts with two decimals.
fn listing(counts: &BTreeMap<String, f64>) -> String {
    let top = top(counts, TOP);
    if top.is_empty() {
        return "none".into();
    }
    top.iter()
        .map(|(k, v)| format!("{k} {v:.2}"))
        .collect::<Vec<_>>()
        .join("  ")
}

/// `span` rounded up to a whole number of statistics intervals.
pub fn whole_intervals(span: Duration) -> Duration {
    let n = span.as_nanos().div_ceil(INTERVAL.as_nanos()).max(1);
    INTERVAL * u32::try_from(n).unwrap_or(u32::MAX)
}

/// When, after the reading before a run of length `run`, the reading after it is due: a whole
/// number of intervals later, and at least an interval and a margin after the run ended.
pub fn reading_due(run: Duration) -> Duration {
    whole_intervals(run + INTERVAL + MARGIN)
}

/// What the pipeline cost with no traffic.
#[derive(Debug, Clone)]
pub struct Idle {
    /// Per watched process: its name and the share of one core it used (1.0 = one core).
    pub cpu: Vec<(String, f64)>,
    /// Requests per second.
    pub requests: Requests,
}

impl Idle {
    /// `CPU of one core: bench process 2.1%, Kafka JVM 1.9%; 41.2 Kafka requests/s`.
    pub fn summary(&self) -> String {
        let cpu: Vec<String> = self
            .cpu
            .iter()
            .map(|(name, share)| format!("{name} {:.1}%", share * 100.0))
            .collect();
        format!(
            "CPU of one core: {}; {:.1} Kafka requests/s",
            cpu.join(", "),
            self.requests.total()
        )
    }
}

/// Measure, and print as its own section, `seconds` (rounded up to whole statistics
/// intervals) with no traffic: CPU % of one core and threads per watched process, and Kafka
/// requests per second by API and client. `when` says where in the run it was taken.
pub async fn measure_idle(
    watched: &[Watched],
    metrics: &Metrics,
    seconds: u64,
    when: &str,
) -> Idle {
    let span = whole_intervals(Duration::from_secs(seconds));
    let cpu_before = cpu_snapshot(watched);
    let kafka_before = KafkaReading::now(metrics);
    let started = Instant::now();
    tokio::time::sleep_until((started + span).into()).await;
    let wall = started.elapsed().as_secs_f64();
    let cpu = cpu_snapshot(watched).since(&cpu_before);
    let kafka_after = KafkaReading::now(metrics);
    let requests = Requests::between(&kafka_before, &kafka_after).per(span.as_secs_f64());
    println!(
        "  idle          {:.0} s with no traffic, the pipeline up and warmed ({when})",
        span.as_secs_f64()
    );
    let cpu: Vec<(String, f64)> = watched
        .iter()
        .zip(cpu)
        .map(|(w, seconds)| (w.name.clone(), seconds / wall.max(1e-9)))
        .collect();
    for ((name, share), w) in cpu.iter().zip(watched) {
        println!(
            "    {name:<34} CPU {:>5.1}% of one core   threads {}",
            share * 100.0,
            w.threads().describe()
        );
    }
    println!(
        "    Kafka requests {:>8.1}/s from {:.0} clients open",
        requests.total(),
        kafka_after.clients_open()
    );
    println!("      by API       {}", listing(&requests.by_api));
    println!("      by client    {}", listing(&requests.by_client));
    Idle { cpu, requests }
}

/// The readings at the start of a measured run.
#[derive(Debug)]
pub struct RunCost {
    started: Instant,
    cpu: CpuSnapshot,
    kafka: KafkaReading,
}

/// A measured run that has ended: its CPU and threads, its Kafka requests still to be read.
#[derive(Debug)]
pub struct EndedRun {
    start: RunCost,
    run: Duration,
    cpu: Vec<f64>,
    threads: Vec<Threads>,
}

/// What a message cost, for the summary.
#[derive(Debug, Clone)]
pub struct CostSummary {
    /// Per watched process: its name and CPU ms per message.
    pub cpu_ms: Vec<(String, f64)>,
    pub requests_per_message: f64,
    /// Whether the requests are net of the quiet stretch at the idle rate.
    pub net_of_idle: bool,
}

impl CostSummary {
    /// `CPU ms/msg: bench process 0.85, Kafka JVM 0.40; 12.30 Kafka requests/msg (net of idle)`.
    pub fn summary(&self) -> String {
        let cpu: Vec<String> = self
            .cpu_ms
            .iter()
            .map(|(name, ms)| format!("{name} {ms:.2}"))
            .collect();
        format!(
            "CPU ms/msg: {}; {:.2} Kafka requests/msg{}",
            cpu.join(", "),
            self.requests_per_message,
            if self.net_of_idle {
                " (net of idle)"
            } else {
                ""
            }
        )
    }
}

impl RunCost {
    /// Read CPU and Kafka requests now, as the run starts.
    pub fn start(watched: &[Watched], metrics: &Metrics) -> Self {
        RunCost {
            started: Instant::now(),
            cpu: cpu_snapshot(watched),
            kafka: KafkaReading::now(metrics),
        }
    }

    /// The last message is through: CPU and threads now.
    pub fn end(self, watched: &[Watched]) -> EndedRun {
        EndedRun {
            run: self.started.elapsed(),
            cpu: cpu_snapshot(watched).since(&self.cpu),
            threads: watched.iter().map(Watched::threads).collect(),
            start: self,
        }
    }
}

impl EndedRun {
    /// Wait until the statistics cover the whole run (see the module doc), then print per
    /// watched process CPU ms per message and threads, and Kafka requests per message in
    /// total, by API and by client, with the clients open. `until` names the run's end;
    /// `idle` prices the quiet stretch the request window holds beyond the run.
    pub async fn report(
        self,
        watched: &[Watched],
        metrics: &Metrics,
        messages: usize,
        until: &str,
        idle: Option<&Idle>,
    ) -> CostSummary {
        let window = reading_due(self.run);
        tokio::time::sleep_until((self.start.started + window).into()).await;
        let kafka = KafkaReading::now(metrics);
        let requests = Requests::between(&self.start.kafka, &kafka);
        let n = messages.max(1) as f64;
        let run = self.run.as_secs_f64();
        println!(
            "  per message   CPU: first submit → {until} ({run:.2} s); Kafka requests: the {:.0} s from the first submit (statistics every {} s, read ≥ {} s after the run)",
            window.as_secs_f64(),
            INTERVAL.as_secs(),
            INTERVAL.as_secs()
        );
        let mut cpu_ms = Vec::new();
        for ((w, cpu), threads) in watched.iter().zip(&self.cpu).zip(&self.threads) {
            let ms = cpu * 1000.0 / n;
            println!(
                "    {:<34} CPU {ms:>7.3} ms/msg ({:>4.0}% of one core)   threads {}",
                w.name,
                cpu / run.max(1e-9) * 100.0,
                threads.describe()
            );
            cpu_ms.push((w.name.clone(), ms));
        }
        let gross = requests.per(n);
        let quiet = (window.as_secs_f64() - run).max(0.0);
        println!(
            "    Kafka requests {:>8.2}/msg in the window ({:.0} requests, {:.0} clients open; it holds {quiet:.1} s beyond the run)",
            gross.total(),
            requests.total(),
            kafka.clients_open()
        );
        let (per_message, which) = match idle {
            Some(idle) => {
                let net = requests.less(&idle.requests, quiet).per(n);
                println!(
                    "                   {:>8.2}/msg net of those {quiet:.1} s at the idle rate",
                    net.total()
                );
                (net, "net")
            }
            None => (gross, "window"),
        };
        println!(
            "      by API       ({which}) {}",
            listing(&per_message.by_api)
        );
        println!(
            "      by client    ({which}) {}",
            listing(&per_message.by_client)
        );
        CostSummary {
            cpu_ms,
            requests_per_message: per_message.total(),
            net_of_idle: idle.is_some(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# HELP switchyard_kafka_requests Requests the Kafka clients sent, by client purpose and API.
# TYPE switchyard_kafka_requests counter
switchyard_kafka_requests_total{client="stage.validate",api="Fetch"} 120
switchyard_kafka_requests_total{client="stage.validate",api="Heartbeat"} 10
switchyard_kafka_requests_total{client="producer",api="Produce"} 40
switchyard_kafka_requests_total{client="reader.bench.final",api="Fetch"} 999
switchyard_kafka_requests_total{client="reader.test.0a1b",api="Fetch"} 999
# TYPE switchyard_kafka_clients gauge
switchyard_kafka_clients{client="stage.validate"} 1
switchyard_kafka_clients{client="producer"} 2
switchyard_kafka_clients{client="reader.bench.final"} 1
switchyard_records_consumed_total{stage="validate",topic="messages.accepted"} 7
# EOF
"#;

    #[test]
    fn a_reading_holds_the_pipelines_requests_and_clients() {
        let reading = KafkaReading::parse(TEXT);
        let key = |c: &str, a: &str| (c.to_string(), a.to_string());
        assert_eq!(reading.requests.len(), 3);
        assert_eq!(reading.requests[&key("stage.validate", "Fetch")], 120.0);
        assert_eq!(reading.requests[&key("producer", "Produce")], 40.0);
        assert_eq!(reading.clients_open(), 3.0);
    }

    #[test]
    fn samples_parse_labels_with_escapes_and_plain_names() {
        let (name, labels, value) =
            sample(r#"m_total{a="x,y",b="q\"uote\\"} 2.5"#).expect("a sample");
        assert_eq!(name, "m_total");
        assert_eq!(
            labels,
            vec![("a".into(), "x,y".into()), ("b".into(), "q\"uote\\".into())]
        );
        assert_eq!(value, 2.5);
        assert_eq!(sample("up 1").map(|s| (s.0, s.2)), Some(("up", 1.0)));
        assert!(sample("# TYPE up gauge").is_none());
        assert!(sample("").is_none());
        assert!(sample(r#"broken{a="x 1"#).is_none());
    }

    #[test]
    fn requests_between_readings_by_api_and_client_per_message() {
        let before = KafkaReading::parse(TEXT);
        let after = KafkaReading::parse(
            &TEXT
                .replace(r#"api="Fetch"} 120"#, r#"api="Fetch"} 320"#)
                .replace(r#"api="Produce"} 40"#, r#"api="Produce"} 140"#)
                .replace(
                    "# TYPE switchyard_kafka_clients",
                    "switchyard_kafka_requests_total{client=\"stage.route\",api=\"Fetch\"} 100\n\
                     # TYPE switchyard_kafka_clients",
                ),
        );
        let requests = Requests::between(&before, &after);
        assert_eq!(requests.total(), 400.0);
        assert_eq!(requests.by_api["Fetch"], 300.0);
        assert_eq!(requests.by_api["Produce"], 100.0);
        assert!(!requests.by_api.contains_key("Heartbeat"));
        assert_eq!(requests.by_client["stage.validate"], 200.0);
        assert_eq!(requests.by_client["stage.route"], 100.0);
        let per_message = requests.per(100.0);
        assert_eq!(per_message.total(), 4.0);
        assert_eq!(per_message.by_api["Fetch"], 3.0);
    }

    #[test]
    fn net_of_idle_takes_the_rate_times_the_quiet_seconds_off_each_count() {
        let window = Requests {
            by_api: [("Fetch".to_string(), 100.0), ("Produce".to_string(), 40.0)].into(),
            by_client: [("producer".to_string(), 140.0)].into(),
        };
        let idle_rate = Requests {
            by_api: [("Fetch".to_string(), 5.0), ("Heartbeat".to_string(), 1.0)].into(),
            by_client: [("producer".to_string(), 6.0)].into(),
        };
        let net = window.less(&idle_rate, 10.0);
        assert_eq!(net.by_api["Fetch"], 50.0);
        assert_eq!(net.by_api["Produce"], 40.0);
        assert_eq!(net.by_api["Heartbeat"], -10.0);
        assert_eq!(net.total(), 80.0);
        assert_eq!(net.by_client["producer"], 80.0);
    }

    #[test]
    fn client_names_drop_the_prefix_and_instance_id() {
        assert_eq!(
            short_client("transactions.switchyard.route.d01eadf410ec46b0bb4f1e7ce2ba2839"),
            "transactions.route"
        );
        assert_eq!(
            short_client("stage.switchyard.report.deadline"),
            "stage.report.deadline"
        );
        assert_eq!(short_client("reader.tables"), "reader.tables");
        assert_eq!(short_client("producer"), "producer");
    }

    #[test]
    fn top_lists_the_largest_and_sums_the_rest() {
        let counts: BTreeMap<String, f64> = [("a", 1.0), ("b", 5.0), ("c", 3.0), ("d", 2.0)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        assert_eq!(
            top(&counts, 2),
            vec![("b".into(), 5.0), ("c".into(), 3.0), ("other".into(), 3.0)]
        );
        assert_eq!(top(&counts, 4).len(), 4);
        assert_eq!(listing(&counts), "b 5.00  c 3.00  d 2.00  a 1.00");
        assert_eq!(listing(&BTreeMap::new()), "none");
    }

    #[test]
    fn the_reading_after_a_run_is_whole_intervals_and_past_the_next_beat() {
        assert_eq!(whole_intervals(Duration::from_secs(20)), INTERVAL * 4);
        assert_eq!(whole_intervals(Duration::from_secs(21)), INTERVAL * 5);
        assert_eq!(whole_intervals(Duration::ZERO), INTERVAL);
        for run_ms in [0, 1, 3_000, 4_499, 4_501, 9_999, 61_234] {
            let run = Duration::from_millis(run_ms);
            let due = reading_due(run);
            assert!(due >= run + INTERVAL + MARGIN, "{run_ms}: {due:?}");
            assert!(due < run + INTERVAL * 2 + MARGIN, "{run_ms}: {due:?}");
            assert_eq!(due.as_nanos() % INTERVAL.as_nanos(), 0, "{run_ms}");
        }
    }
}
