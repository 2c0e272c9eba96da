//! Poison inputs: inputs whose outputs the broker can never take (too large, invalid;
//! `permanent.rs` decides). A batch that met one is processed again with the input marked, so
//! it takes the poison path (dead letter + the stage's report of it) and everything behind it
//! flows. Each further refusal of the same input takes it a level down, so no input is
//! retried forever: report and dead letter → dead letter alone → passed over, logged.
//! A refusal at delivery is not blamed on an input (the broker refuses whole record batches):
//! it is retried, and the stage reports stuck if it lasts.

use std::collections::HashMap;

use rdkafka::Message;
use rdkafka::message::OwnedMessage;

/// An input's position: (topic on the broker, partition, offset).
pub(crate) type SourceId = (String, i32, i64);

/// The position of `message`.
pub(crate) fn source_of(message: &OwnedMessage) -> SourceId {
    (
        message.topic().to_string(),
        message.partition(),
        message.offset(),
    )
}

/// What the poison path still writes for an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum PoisonLevel {
    /// Its dead letter and the stage's report that ends its message.
    WithReport,
    /// Its dead letter alone (the report was refused too).
    DeadLetterOnly,
    /// Nothing: not even the dead letter could be written. Logged and counted.
    Skip,
}

impl PoisonLevel {
    fn next(self) -> Self {
        match self {
            PoisonLevel::WithReport => PoisonLevel::DeadLetterOnly,
            PoisonLevel::DeadLetterOnly | PoisonLevel::Skip => PoisonLevel::Skip,
        }
    }
}

/// Why an input is poison, and how far down its path is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Poison {
    pub reason: String,
    pub level: PoisonLevel,
}

impl Poison {
    /// A newly found poison input.
    pub fn new(reason: String) -> Self {
        Poison {
            reason,
            level: PoisonLevel::WithReport,
        }
    }
}

/// The poison inputs of the batch being retried. Cleared once a batch commits.
#[derive(Debug, Default)]
pub(crate) struct Poisoned {
    inputs: HashMap<SourceId, Poison>,
}

impl Poisoned {
    /// Whether `message` is poison, and how.
    pub fn get(&self, message: &OwnedMessage) -> Option<&Poison> {
        if self.inputs.is_empty() {
            return None;
        }
        self.inputs.get(&source_of(message))
    }

    /// The broker refused an output of `source` for good (`reason`): mark it, or take it a
    /// level down if its poison path was refused too. Returns the level it is at now.
    pub fn mark(&mut self, source: SourceId, reason: String) -> PoisonLevel {
        match self.inputs.get_mut(&source) {
            Some(poison) => {
                poison.level = poison.level.next();
                poison.level
            }
            None => {
                self.inputs.insert(source, Poison::new(reason));
                PoisonLevel::WithReport
            }
        }
    }

    /// A batch committed up to `next` (per partition, the offset after its last record): forget
    /// the marks behind it; a mark on a record not yet committed stays.
    pub fn committed(&mut self, next: &std::collections::BTreeMap<(String, i32), i64>) {
        self.inputs.retain(|(topic, partition, offset), _| {
            next.get(&(topic.clone(), *partition))
                .is_none_or(|next| offset >= next)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_refusal_of_the_same_input_goes_one_level_down_and_stops_at_skip() {
        let mut poisoned = Poisoned::default();
        let at = ("t".to_string(), 0, 7);
        assert_eq!(
            poisoned.mark(at.clone(), "too large".into()),
            PoisonLevel::WithReport
        );
        assert_eq!(
            poisoned.mark(at.clone(), "report too large".into()),
            PoisonLevel::DeadLetterOnly
        );
        assert_eq!(poisoned.mark(at.clone(), "again".into()), PoisonLevel::Skip);
        assert_eq!(poisoned.mark(at.clone(), "again".into()), PoisonLevel::Skip);
        // The first reason is the one the dead letter keeps.
        assert_eq!(poisoned.inputs[&at].reason, "too large");
        // Another input starts at the top.
        assert_eq!(
            poisoned.mark(("t".into(), 0, 8), "x".into()),
            PoisonLevel::WithReport
        );
        // A commit up to offset 8 forgets the mark at 7 and keeps the one at 8.
        poisoned.committed(&[(("t".to_string(), 0), 8)].into_iter().collect());
        assert_eq!(poisoned.inputs.len(), 1);
        assert!(poisoned.inputs.contains_key(&("t".to_string(), 0, 8)));
    }
}
