//! The callback role: one unordered runner, one consumer (group `switchyard.callback`) over
//! `reports.final`, `callbacks.replay` and the ten retry tiers, each tier's records held until
//! their timestamp + the tier's wait (`schedule.rs`), so the role's Kafka clients do not grow
//! with its topics. Several instances share the partitions of all twelve topics.

use std::sync::Arc;
use std::time::Duration;

use switchyard_runtime::names::{CALLBACK_REPLAY, CALLBACK_RETRY_TIERS, FINAL, callback_retry};
use switchyard_runtime::{CancellationToken, RunnerOptions, Runtime, RuntimeError, carry_offsets};

use crate::schedule::tier_delay;
use crate::upgrade::old_groups;
use crate::webhook::Callback;

/// The stage (and, as `switchyard.callback`, the consumer group) of the role.
pub const STAGE: &str = "callback";

/// Every topic the role reads: first deliveries, replays, then the tiers in order.
pub fn topics() -> Vec<String> {
    [FINAL.to_string(), CALLBACK_REPLAY.to_string()]
        .into_iter()
        .chain((1..=CALLBACK_RETRY_TIERS).map(callback_retry))
        .collect()
}

/// The runner's options: unordered, first deliveries at once, tier n's records at their
/// timestamp + (n² − n + 1) `minute`s.
pub fn options(minute: Duration) -> RunnerOptions {
    let topics = topics();
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    (1..=CALLBACK_RETRY_TIERS).fold(
        RunnerOptions::new(STAGE, &names).unordered(),
        |options, tier| options.delayed_topic(&callback_retry(tier), tier_delay(tier, minute)),
    )
}

/// Run the role until `shutdown`: first the retry offsets of an upgrade from the per-tier
/// groups (`upgrade.rs`, waiting while an older instance consumes a tier), then the runner.
pub async fn run_callback(
    runtime: &Runtime,
    callback: Callback,
    shutdown: CancellationToken,
) -> Result<(), RuntimeError> {
    let options = options(callback.minute);
    if !carry_offsets(
        &runtime.kafka,
        STAGE,
        &options.group_id,
        &old_groups(),
        &shutdown,
    )
    .await
    {
        return Ok(());
    }
    switchyard_runtime::run(runtime, Arc::new(callback), options, shutdown).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_runner_reads_every_callback_topic_each_with_its_delay() {
        let minute = Duration::from_millis(100);
        let options = options(minute);
        assert_eq!(options.group_id, "switchyard.callback");
        assert_eq!(options.topics.len(), 12);
        assert!(options.unordered);
        assert_eq!(options.delay_of(FINAL), None);
        assert_eq!(options.delay_of(CALLBACK_REPLAY), None);
        let waits: Vec<Option<Duration>> = (1..=CALLBACK_RETRY_TIERS)
            .map(|tier| options.delay_of(&callback_retry(tier)))
            .collect();
        let minutes = [1, 3, 7, 13, 21, 31, 43, 57, 73, 91];
        assert_eq!(
            waits,
            minutes.map(|m| Some(minute * m)).to_vec(),
            "tier n waits n² − n + 1 minutes"
        );
        assert_eq!(
            options.held_per_partition, 1,
            "a tier's records come due in order"
        );
    }
}
