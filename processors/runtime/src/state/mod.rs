//! The state store the runtime keeps for a stage (decision 0016): entries per input partition,
//! in memory, backed by a compacted changelog topic with the same partitions as the input. A
//! batch's changes are written to the changelog in the batch's own transaction, so state,
//! outputs and consumed offsets move together; a partition's state is restored from its
//! changelog before its first record is processed (after a start, a restart or a rebalance)
//! and dropped when the partition goes elsewhere. Stage logic sees only [`StateAccess`].

mod partition;
mod restore;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

pub use partition::{PartitionState, StateAccess};
use switchyard_schemas::StateEntry;

use crate::batch::Encoded;
use crate::{Runtime, RuntimeError};

/// Milliseconds since the epoch, from the stage's clock.
pub type NowFn = Arc<dyn Fn() -> i64 + Send + Sync>;

/// A stage's state store. Cheap to clone (shared).
#[derive(Clone)]
pub struct StateStore {
    changelog: String,
    now: NowFn,
    inner: Arc<Mutex<Partitions>>,
}

#[derive(Default)]
struct Partitions {
    /// Restored partitions.
    states: HashMap<i32, PartitionState>,
    /// The consumer's rebalance count when they were restored.
    epoch: u64,
}

impl std::fmt::Debug for StateStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateStore")
            .field("changelog", &self.changelog)
            .finish_non_exhaustive()
    }
}

/// One partition's state, locked for a record.
pub struct StateGuard<'a> {
    guard: MutexGuard<'a, Partitions>,
    partition: i32,
}

impl std::fmt::Debug for StateGuard<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateGuard")
            .field("partition", &self.partition)
            .finish()
    }
}

impl std::ops::Deref for StateGuard<'_> {
    type Target = PartitionState;
    fn deref(&self) -> &PartitionState {
        // `lock` inserted it.
        &self.guard.states[&self.partition]
    }
}

impl std::ops::DerefMut for StateGuard<'_> {
    fn deref_mut(&mut self) -> &mut PartitionState {
        self.guard.states.entry(self.partition).or_default()
    }
}

impl StateStore {
    /// A store whose changelog is the logical topic `changelog`; `now` is the clock expiry
    /// is judged by (the stage's).
    pub fn new(changelog: &str, now: NowFn) -> Self {
        StateStore {
            changelog: changelog.to_string(),
            now,
            inner: Arc::default(),
        }
    }

    /// The changelog topic (logical name).
    pub fn changelog(&self) -> &str {
        &self.changelog
    }

    /// The state of the input partition `partition`, for one record.
    pub fn lock(&self, partition: i32) -> StateGuard<'_> {
        let mut guard = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        guard.states.entry(partition).or_default();
        StateGuard { guard, partition }
    }

    /// Entries held in memory, over every partition.
    pub fn len(&self) -> usize {
        self.partitions()
            .states
            .values()
            .map(PartitionState::len)
            .sum()
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn partitions(&self) -> MutexGuard<'_, Partitions> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Before a batch: after any rebalance (`epoch` changed) forget everything, since a
    /// partition may have been someone else's meanwhile; otherwise forget partitions no longer
    /// `assigned`. Then restore those the batch needs that are not in memory, and drop expired
    /// entries.
    pub(crate) async fn prepare(
        &self,
        runtime: &Runtime,
        epoch: u64,
        assigned: &BTreeSet<i32>,
        needed: &BTreeSet<i32>,
        shutdown: &tokio_util::sync::CancellationToken,
    ) -> Result<(), RuntimeError> {
        let missing: BTreeSet<i32> = {
            let mut partitions = self.partitions();
            let before = partitions.states.len();
            if partitions.epoch != epoch {
                partitions.states.clear();
                partitions.epoch = epoch;
            }
            partitions.states.retain(|p, _| assigned.contains(p));
            if partitions.states.len() != before {
                tracing::info!(changelog = %self.changelog, dropped = before - partitions.states.len(), "state of revoked partitions dropped");
            }
            needed
                .iter()
                .filter(|p| !partitions.states.contains_key(p))
                .copied()
                .collect()
        };
        if !missing.is_empty() {
            let now = (self.now)();
            let restored =
                restore::restore(runtime, &self.changelog, &missing, now, shutdown).await?;
            let mut partitions = self.partitions();
            for (partition, state) in restored {
                tracing::info!(changelog = %self.changelog, partition, entries = state.len(), "state restored");
                partitions.states.insert(partition, state);
            }
        }
        let now = (self.now)();
        for state in self.partitions().states.values_mut() {
            state.evict_expired(now);
        }
        Ok(())
    }

    /// Whether a batch needing `needed` would restore a partition first (not in memory, or
    /// every partition after a rebalance since `epoch`).
    pub(crate) fn would_restore(&self, epoch: u64, needed: &BTreeSet<i32>) -> bool {
        let partitions = self.partitions();
        partitions.epoch != epoch || needed.iter().any(|p| !partitions.states.contains_key(p))
    }

    /// The batch's changes as changelog records, each in its input's partition.
    pub(crate) async fn changelog_records(
        &self,
        runtime: &Runtime,
    ) -> Result<Vec<Encoded>, switchyard_schemas::CodecError> {
        let changes: Vec<(i32, String, Option<StateEntry>)> = {
            let partitions = self.partitions();
            partitions
                .states
                .iter()
                .flat_map(|(p, state)| {
                    state
                        .changes()
                        .into_iter()
                        .map(move |(key, entry)| (*p, key, entry))
                })
                .collect()
        };
        let physical = runtime.kafka.topic(&self.changelog);
        let mut records = Vec::with_capacity(changes.len());
        for (partition, key, entry) in changes {
            let payload = match entry {
                Some(entry) => Some(runtime.codec.encode(&physical, &entry).await?),
                None => None,
            };
            records.push(Encoded {
                topic: self.changelog.clone(),
                physical: physical.clone(),
                key,
                payload,
                headers: None,
                dead_letter: false,
                partition: Some(partition),
                source: None,
            });
        }
        Ok(records)
    }

    /// The batch committed.
    pub(crate) fn commit(&self) {
        for state in self.partitions().states.values_mut() {
            state.commit();
        }
    }

    /// Forget every partition (a transaction's outcome is unknown): each is restored from its
    /// changelog before its next record.
    pub(crate) fn forget(&self) {
        self.partitions().states.clear();
    }

    /// The batch failed.
    pub(crate) fn rollback(&self) {
        for state in self.partitions().states.values_mut() {
            state.rollback();
        }
    }
}
