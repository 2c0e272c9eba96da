//! The consumer a stage's runner uses: a group member that counts rebalances, so a batch whose
//! partitions moved while it was in flight is never committed as if they had not.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::KafkaResult;
use rdkafka::{ClientContext, Statistics};

use crate::kafka_stats::StatsSink;

/// Counts assignment changes of one consumer.
#[derive(Debug, Clone, Default)]
pub struct RebalanceCounter {
    changes: Arc<AtomicU64>,
}

impl RebalanceCounter {
    /// How many rebalances touched this consumer so far.
    pub fn epoch(&self) -> u64 {
        self.changes.load(Ordering::SeqCst)
    }
}

/// The context of a stage's consumer: counts its rebalances and its requests.
#[derive(Debug, Clone)]
pub struct StageContext {
    rebalances: RebalanceCounter,
    stats: StatsSink,
}

impl ClientContext for StageContext {
    fn stats(&self, statistics: Statistics) {
        self.stats.observe(&statistics);
    }
}

impl ConsumerContext for StageContext {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        self.rebalances.changes.fetch_add(1, Ordering::SeqCst);
        match rebalance {
            Rebalance::Assign(partitions) => {
                tracing::info!(partitions = partitions.count(), "partitions assigned");
            }
            Rebalance::Revoke(partitions) => {
                tracing::info!(partitions = partitions.count(), "partitions revoked");
            }
            Rebalance::Error(e) => tracing::warn!(error = %e, "rebalance failed"),
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        // librdkafka keeps an application's pause across unassign and assign: a partition a
        // delayed runner paused before a rebalance would never be fetched again. Every
        // assignment starts unpaused; the runner pauses again what is not due.
        if let Rebalance::Assign(partitions) = rebalance
            && let Err(e) = consumer.resume(partitions)
        {
            tracing::warn!(error = %e, "cannot resume assigned partitions");
        }
    }
}

/// A stage's group consumer.
pub type StageConsumer = StreamConsumer<StageContext>;

impl crate::KafkaSettings {
    /// A group consumer (namespaced group id, read_committed, manual commits) that counts
    /// rebalances.
    pub fn stage_consumer(&self, group_id: &str) -> KafkaResult<(StageConsumer, RebalanceCounter)> {
        self.stage_consumer_with(group_id, &[])
    }

    /// The same with librdkafka settings changed (`overrides` win).
    pub fn stage_consumer_with(
        &self,
        group_id: &str,
        overrides: &[(&str, String)],
    ) -> KafkaResult<(StageConsumer, RebalanceCounter)> {
        let counter = RebalanceCounter::default();
        let mut config = self.group_consumer_config(group_id);
        for (key, value) in overrides {
            config.set(*key, value);
        }
        let consumer = config.create_with_context(StageContext {
            rebalances: counter.clone(),
            stats: self.stats_sink(&format!("stage.{group_id}")),
        })?;
        Ok((consumer, counter))
    }
}
