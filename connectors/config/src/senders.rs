//! `switchyard senders`: every sender with what route sees of it (usable, unknown or unusable
//! and why, from `state.sender-health` and operators' drains on `state.sender-drains`), its
//! backlog (the messages its dispatchers have not consumed yet from its lane topics) and its
//! recent throughput.

use std::collections::HashMap;

use switchyard_runtime::Runtime;
use switchyard_runtime::names::{CONFIG_SENDERS, SENDER_DRAINS, SENDER_HEALTH};
use switchyard_schemas::{SenderConfig, SenderDrain, SenderHealth, now_millis};
use switchyard_stages::route::DEFAULT_STALE_AFTER_MS;
use switchyard_stages::usability::{Usability, usability};

use crate::ConfigError;
use crate::read::last_values;

/// One line of `switchyard senders`.
#[derive(Debug, Clone, PartialEq)]
pub struct SenderRow {
    pub name: String,
    pub kind: String,
    pub group: String,
    pub usability: Usability,
    /// Dispatch instances heartbeating for it now.
    pub instances: usize,
    pub in_flight: i32,
    pub window: i32,
    /// Submits taken per second, summed over the fresh heartbeats.
    pub throughput: f64,
    /// The worst recent error rate of a fresh heartbeat.
    pub error_rate: f64,
    /// Messages waiting in `sender.<name>`; None when it could not be read.
    pub backlog: Option<i64>,
}

/// The rows for `senders` from their heartbeats, drains and backlogs at `now` (pure).
pub fn rows(
    senders: &[SenderConfig],
    beats: &[SenderHealth],
    drains: &HashMap<String, SenderDrain>,
    backlogs: &HashMap<String, Option<i64>>,
    now: i64,
) -> Vec<SenderRow> {
    let mut rows: Vec<SenderRow> = senders
        .iter()
        .map(|s| {
            let own: Vec<SenderHealth> = beats
                .iter()
                .filter(|b| b.sender == s.name)
                .cloned()
                .collect();
            let fresh: Vec<&SenderHealth> = own
                .iter()
                .filter(|b| now.saturating_sub(b.heartbeat_at) <= DEFAULT_STALE_AFTER_MS)
                .collect();
            SenderRow {
                name: s.name.clone(),
                kind: s.kind.clone(),
                group: s.group.clone(),
                usability: match drains.get(&s.name) {
                    Some(drain) => Usability::Unusable(match &drain.to_group {
                        Some(group) => format!("drained by an operator to {group}"),
                        None => "drained by an operator".to_string(),
                    }),
                    None => usability(s, &own, now, DEFAULT_STALE_AFTER_MS),
                },
                instances: fresh.len(),
                in_flight: fresh.iter().map(|b| b.in_flight).sum(),
                window: fresh.iter().map(|b| b.window).sum(),
                throughput: fresh.iter().map(|b| b.throughput).sum(),
                error_rate: fresh.iter().map(|b| b.error_rate).fold(0.0, f64::max),
                backlog: backlogs.get(&s.name).copied().flatten(),
            }
        })
        .collect();
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    rows
}

/// The header of the table [`SenderRow`]'s `Display` writes lines of.
pub const HEADER: &str =
    "sender\tkind\tgroup\tstate\tinstances\tin flight/window\tmsg/s\terror rate\tbacklog";

impl std::fmt::Display for SenderRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.usability {
            Usability::Usable => "usable".to_string(),
            Usability::Unknown => "unknown (no heartbeat yet)".to_string(),
            Usability::Silent(why) => format!("silent: {why} (last resort)"),
            Usability::Unusable(why) => format!("unusable: {why}"),
        };
        let backlog = self
            .backlog
            .map_or_else(|| "?".to_string(), |b| b.to_string());
        write!(
            f,
            "{}\t{}\t{}\t{state}\t{}\t{}/{}\t{:.1}\t{:.0}%\t{backlog}",
            self.name,
            self.kind,
            self.group,
            self.instances,
            self.in_flight,
            self.window,
            self.throughput,
            self.error_rate * 100.0
        )
    }
}

/// Every sender in `config.senders`, as the topics say now.
pub async fn list(runtime: &Runtime) -> Result<Vec<SenderRow>, ConfigError> {
    let senders: Vec<SenderConfig> = last_values::<SenderConfig>(runtime, CONFIG_SENDERS)
        .await?
        .into_values()
        .collect();
    let beats: Vec<SenderHealth> = last_values::<SenderHealth>(runtime, SENDER_HEALTH)
        .await?
        .into_values()
        .collect();
    let drains = last_values::<SenderDrain>(runtime, SENDER_DRAINS).await?;
    let mut backlogs = HashMap::new();
    for s in &senders {
        let backlog = match switchyard_senders::backlog::backlog(runtime, &s.name) {
            Ok(b) => Some(b),
            Err(e) => {
                tracing::warn!(sender = %s.name, error = %e, "backlog not read");
                None
            }
        };
        backlogs.insert(s.name.clone(), backlog);
    }
    Ok(rows(&senders, &beats, &drains, &backlogs, now_millis()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_schemas::Channel;

    fn sender(name: &str) -> SenderConfig {
        SenderConfig {
            name: name.into(),
            group: "g".into(),
            channel: Channel::Sms,
            carriers: vec!["skt".into()],
            kind: "smpp".into(),
            endpoint: "smpp://127.0.0.1:2775".into(),
            tps: None,
            enabled: true,
            settings: Default::default(),
        }
    }

    fn beat(sender: &str, instance: &str, healthy: bool, at: i64) -> SenderHealth {
        SenderHealth {
            sender: sender.into(),
            instance: instance.into(),
            healthy,
            reason: (!healthy).then(|| "not bound".into()),
            heartbeat_at: at,
            in_flight: 3,
            window: 10,
            throughput: 120.0,
            error_rate: if healthy { 0.0 } else { 0.5 },
            ..SenderHealth::default()
        }
    }

    #[test]
    fn rows_sum_fresh_instances_and_say_why_a_sender_is_unusable() {
        let senders = [sender("b"), sender("a"), sender("c")];
        let beats = [
            beat("a", "i1", true, 10_000),
            beat("a", "i2", true, 9_500),
            beat("a", "old", true, 1_000),
            beat("b", "i1", false, 10_000),
        ];
        let backlogs = HashMap::from([("a".to_string(), Some(0)), ("b".to_string(), Some(42))]);
        let drains = HashMap::from([(
            "c".to_string(),
            SenderDrain {
                sender: "c".into(),
                to_group: Some("spare".into()),
                requested_at: 9_000,
                reason: String::new(),
            },
        )]);
        let rows = rows(&senders, &beats, &drains, &backlogs, 10_000);
        let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, vec!["a", "b", "c"]);
        let a = &rows[0];
        assert_eq!(a.usability, Usability::Usable);
        assert_eq!((a.instances, a.in_flight, a.window), (2, 6, 20));
        assert_eq!(a.throughput, 240.0, "the stale instance is not counted");
        let b = &rows[1];
        assert_eq!(b.usability, Usability::Unusable("not bound".into()));
        assert_eq!(
            b.to_string(),
            "b\tsmpp\tg\tunusable: not bound\t1\t3/10\t120.0\t50%\t42"
        );
        let c = &rows[2];
        assert_eq!(
            c.usability,
            Usability::Unusable("drained by an operator to spare".into())
        );
        assert_eq!(c.backlog, None);
        assert!(c.to_string().ends_with("\t?"), "{c}");
    }
}
