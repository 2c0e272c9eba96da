//! The state of one input partition (pure, no I/O): committed entries, the changes of the
//! batch in progress (read before the committed ones), and an index by expiry so expired
//! entries leave memory. A batch's changes become committed only once its transaction is.

use std::collections::{BTreeSet, HashMap};

use switchyard_schemas::StateEntry;

/// Read and write a stage's state; what stage logic sees (tests use a `PartitionState`).
pub trait StateAccess {
    /// The entry under `key`, if any (it may have expired: compare `expires_at` with now).
    fn get(&self, key: &str) -> Option<&StateEntry>;
    /// Set `key`.
    fn put(&mut self, key: &str, entry: StateEntry);
    /// Remove `key`.
    fn delete(&mut self, key: &str);
}

/// One partition's entries.
#[derive(Debug, Default, Clone)]
pub struct PartitionState {
    committed: HashMap<String, StateEntry>,
    by_expiry: BTreeSet<(i64, String)>,
    /// Changes of the batch in progress, in order of keys (None = delete).
    pending: HashMap<String, Option<StateEntry>>,
    /// Expired keys dropped from memory whose tombstones are not yet committed.
    evicted: BTreeSet<String>,
}

impl PartitionState {
    /// Apply a changelog record while restoring (None = tombstone); an entry already expired
    /// at `now` is skipped.
    pub fn restore(&mut self, key: String, entry: Option<StateEntry>, now: i64) {
        match entry {
            Some(entry) if entry.expires_at.is_none_or(|at| at > now) => {
                self.evicted.remove(&key);
                self.set_committed(key, entry)
            }
            Some(_) => {
                // Expired while nobody held it: tombstone it with the next batch.
                self.remove_committed(&key);
                self.evicted.insert(key);
            }
            None => {
                self.evicted.remove(&key);
                self.remove_committed(&key);
            }
        }
    }

    /// Drop entries expired at `now` from memory; their tombstones go out with the next batch.
    pub fn evict_expired(&mut self, now: i64) -> usize {
        let expired: Vec<(i64, String)> = self
            .by_expiry
            .range(..(now, String::new()))
            .cloned()
            .collect();
        for (_, key) in &expired {
            self.remove_committed(key);
            self.evicted.insert(key.clone());
        }
        expired.len()
    }

    /// The changelog records of this batch: (key, value or tombstone), eviction tombstones
    /// first.
    pub fn changes(&self) -> Vec<(String, Option<StateEntry>)> {
        let mut out: Vec<(String, Option<StateEntry>)> = self
            .evicted
            .iter()
            .filter(|key| !self.pending.contains_key(*key))
            .map(|key| (key.clone(), None))
            .collect();
        let mut pending: Vec<_> = self.pending.iter().collect();
        pending.sort_by(|a, b| a.0.cmp(b.0));
        out.extend(pending.into_iter().map(|(k, v)| (k.clone(), v.clone())));
        out
    }

    /// The batch committed: its changes become the state.
    pub fn commit(&mut self) {
        self.evicted.clear();
        for (key, change) in std::mem::take(&mut self.pending) {
            match change {
                Some(entry) => self.set_committed(key, entry),
                None => self.remove_committed(&key),
            }
        }
    }

    /// The batch failed: forget its changes (it is consumed and processed again).
    pub fn rollback(&mut self) {
        self.pending.clear();
    }

    /// Committed entries held in memory.
    pub fn len(&self) -> usize {
        self.committed.len()
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.committed.is_empty()
    }

    /// Committed entries whose key starts with `prefix`.
    pub fn scan<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = (&'a str, &'a StateEntry)> {
        self.committed
            .iter()
            .filter(move |(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.as_str(), v))
    }

    fn set_committed(&mut self, key: String, entry: StateEntry) {
        self.remove_committed(&key);
        if let Some(at) = entry.expires_at {
            self.by_expiry.insert((at, key.clone()));
        }
        self.committed.insert(key, entry);
    }

    fn remove_committed(&mut self, key: &str) {
        if let Some(old) = self.committed.remove(key)
            && let Some(at) = old.expires_at
        {
            self.by_expiry.remove(&(at, key.to_string()));
        }
    }
}

impl StateAccess for PartitionState {
    fn get(&self, key: &str) -> Option<&StateEntry> {
        match self.pending.get(key) {
            Some(change) => change.as_ref(),
            None => self.committed.get(key),
        }
    }

    fn put(&mut self, key: &str, entry: StateEntry) {
        self.pending.insert(key.to_string(), Some(entry));
    }

    fn delete(&mut self, key: &str) {
        self.pending.insert(key.to_string(), None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(amount: i64, expires_at: Option<i64>) -> StateEntry {
        StateEntry {
            text: None,
            amount,
            expires_at,
        }
    }

    #[test]
    fn a_batch_sees_its_own_writes_and_keeps_them_only_if_committed() {
        let mut state = PartitionState::default();
        state.put("a", entry(1, None));
        assert_eq!(state.get("a").map(|e| e.amount), Some(1));
        state.rollback();
        assert_eq!(state.get("a"), None);
        state.put("a", entry(2, None));
        state.commit();
        state.delete("a");
        assert_eq!(
            state.get("a"),
            None,
            "a pending delete hides the committed entry"
        );
        state.rollback();
        assert_eq!(state.get("a").map(|e| e.amount), Some(2));
    }

    #[test]
    fn expired_entries_leave_memory_and_become_tombstones_once() {
        let mut state = PartitionState::default();
        state.put("old", entry(1, Some(100)));
        state.put("new", entry(2, Some(300)));
        state.put("forever", entry(3, None));
        state.commit();
        assert_eq!(state.evict_expired(200), 1);
        assert_eq!(state.len(), 2);
        assert_eq!(state.changes(), vec![("old".to_string(), None)]);
        state.rollback();
        assert_eq!(state.changes().len(), 1, "kept until a batch commits it");
        state.commit();
        assert!(state.changes().is_empty());
        assert_eq!(state.evict_expired(1_000), 1);
        assert_eq!(state.len(), 1);
    }

    #[test]
    fn restore_skips_expired_entries_and_applies_tombstones() {
        let mut state = PartitionState::default();
        state.restore("a".into(), Some(entry(1, Some(50))), 100);
        state.restore("b".into(), Some(entry(2, Some(150))), 100);
        state.restore("c".into(), Some(entry(3, None)), 100);
        state.restore("c".into(), None, 100);
        assert_eq!(state.get("a"), None);
        assert_eq!(state.get("b").map(|e| e.amount), Some(2));
        assert_eq!(state.get("c"), None);
        assert_eq!(state.len(), 1);
        assert_eq!(
            state.changes(),
            vec![("a".to_string(), None)],
            "the expired entry is tombstoned"
        );
    }

    #[test]
    fn a_rewritten_entry_moves_in_the_expiry_index() {
        let mut state = PartitionState::default();
        state.put("k", entry(1, Some(100)));
        state.commit();
        state.put("k", entry(2, Some(500)));
        state.commit();
        assert_eq!(state.evict_expired(200), 0);
        assert_eq!(state.get("k").map(|e| e.amount), Some(2));
    }
}
