//! Per stage, from the runtime's metrics text before and after a run: records consumed and the
//! mean time from receipt to acknowledged outputs (`switchyard_processing_latency_seconds`).

use std::collections::HashMap;

/// Per stage from the metrics text: (sum of seconds, count) of the processing latency.
fn stage_latencies(metrics: &str) -> HashMap<String, (f64, f64)> {
    let mut sums: HashMap<String, (f64, f64)> = HashMap::new();
    for line in metrics.lines() {
        let Some((name, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        let stage = name
            .split("stage=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap_or_default()
            .to_string();
        if name.starts_with("switchyard_processing_latency_seconds_sum") {
            sums.entry(stage).or_default().0 = value;
        } else if name.starts_with("switchyard_processing_latency_seconds_count") {
            sums.entry(stage).or_default().1 = value;
        }
    }
    sums
}

/// Per stage: records consumed and mean seconds from receipt to acknowledged outputs, between
/// the metrics texts `before` and `after`.
pub fn print_stage_latencies(before: &str, after: &str) {
    let before = stage_latencies(before);
    let mut stages: Vec<_> = stage_latencies(after)
        .into_iter()
        .map(|(stage, (sum, count))| {
            let (sum0, count0) = before.get(&stage).copied().unwrap_or_default();
            (stage, (sum - sum0, count - count0))
        })
        .filter(|(_, (_, n))| *n > 0.0)
        .collect();
    stages.sort_by(|a, b| a.0.cmp(&b.0));
    println!(
        "  stages                             records  mean ms (receipt → outputs acknowledged)"
    );
    for (stage, (sum, count)) in stages {
        println!(
            "    {stage:<32} {count:>7.0}  {:>7.1}",
            sum / count * 1000.0
        );
    }
}
