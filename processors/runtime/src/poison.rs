//! Poison inputs: inputs whose outputs the broker can never take (too large, invalid;
//! `permanent.rs` decides). A batch that met one is processed again with the input marked, so
//! it takes the poison path (dead letter + the stage's report of it) and everything behind it
//! flows. Each further refusal of the same input takes it a level down, so no input is
//! retried forever: report and dead letter → dead letter alone → passed over, logged.

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

    /// Forget every mark (the batch committed; its inputs are behind the committed offsets).
    pub fn clear(&mut self) {
        self.inputs.clear();
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
        poisoned.clear();
        assert!(poisoned.inputs.is_empty());
    }
}
