//! The processing guarantee a topic-to-topic stage runs with: Kafka transactions (exactly
//! once) or commit-after-acknowledge (at least once, for brokers without transactions).

use std::fmt;
use std::str::FromStr;

/// How a stage turns consumed records into produced ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Processing {
    /// Outputs and consumed offsets are committed in one Kafka transaction: a record's outputs
    /// appear once to `read_committed` readers, whatever crashes.
    #[default]
    ExactlyOnce,
    /// Offsets are committed after every output is acknowledged: nothing is lost, a crash may
    /// repeat outputs (consumers deduplicate by id).
    AtLeastOnce,
}

impl Processing {
    /// The setting's value: `exactly_once` or `at_least_once`.
    pub fn as_str(self) -> &'static str {
        match self {
            Processing::ExactlyOnce => "exactly_once",
            Processing::AtLeastOnce => "at_least_once",
        }
    }
}

impl fmt::Display for Processing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Processing {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.replace('-', "_").as_str() {
            "exactly_once" => Ok(Processing::ExactlyOnce),
            "at_least_once" => Ok(Processing::AtLeastOnce),
            other => Err(format!(
                "processing must be exactly_once or at_least_once, not {other:?}"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_spellings_and_refuses_others() {
        assert_eq!("exactly_once".parse(), Ok(Processing::ExactlyOnce));
        assert_eq!("at-least-once".parse(), Ok(Processing::AtLeastOnce));
        assert!("twice".parse::<Processing>().is_err());
        assert_eq!(Processing::default().to_string(), "exactly_once");
    }
}
