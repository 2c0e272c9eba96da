//! Whether a sender may take traffic now, from its operators' switch (`enabled`) and the
//! heartbeats its dispatchers publish on `state.sender-health` (pure).
//!
//! A sender is usable when it is enabled and at least one of its dispatcher instances
//! heartbeated within `stale_after` saying it is healthy. A sender no dispatcher heartbeats for
//! (none ever did, or the last one stopped cleanly and removed its heartbeat) is `Unknown`:
//! route still sends to it, its queue waits for a dispatcher. Fresh heartbeats that all say
//! unhealthy make it unusable. Heartbeats that stopped (a dispatcher killed) make it `Silent`:
//! a last resort, used only when no other sender of the rule may take the message, so a crashed
//! dispatch role queues traffic instead of failing it.

use switchyard_schemas::{SenderConfig, SenderHealth};

/// What route may do with a sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Usability {
    /// Enabled, and a fresh heartbeat says healthy.
    Usable,
    /// Enabled, but no dispatcher has heartbeated for it yet.
    Unknown,
    /// Its heartbeats stopped (and why that matters): only when nothing else may take it.
    Silent(String),
    /// Not to be used now, and why.
    Unusable(String),
}

impl Usability {
    /// Whether route may pick the sender; `last_resort` admits silent ones too.
    pub fn may_take(&self, last_resort: bool) -> bool {
        match self {
            Usability::Usable | Usability::Unknown => true,
            Usability::Silent(_) => last_resort,
            Usability::Unusable(_) => false,
        }
    }

    /// Why it is not picked, for a trail.
    pub fn why_not(&self) -> Option<&str> {
        match self {
            Usability::Silent(why) | Usability::Unusable(why) => Some(why),
            Usability::Usable | Usability::Unknown => None,
        }
    }
}

/// The usability of `sender` at `now` from `beats` (every instance's last heartbeat for it).
pub fn usability(
    sender: &SenderConfig,
    beats: &[SenderHealth],
    now: i64,
    stale_after_ms: i64,
) -> Usability {
    if !sender.enabled {
        return Usability::Unusable("disabled by an operator".into());
    }
    let Some(latest) = beats.iter().max_by_key(|b| b.heartbeat_at) else {
        return Usability::Unknown;
    };
    let fresh: Vec<&SenderHealth> = beats
        .iter()
        .filter(|b| now.saturating_sub(b.heartbeat_at) <= stale_after_ms)
        .collect();
    if fresh.is_empty() {
        return Usability::Silent(format!(
            "no heartbeat for {} s",
            now.saturating_sub(latest.heartbeat_at) / 1000
        ));
    }
    if fresh.iter().any(|b| b.healthy) {
        return Usability::Usable;
    }
    let reason = fresh
        .iter()
        .max_by_key(|b| b.heartbeat_at)
        .and_then(|b| b.reason.clone())
        .unwrap_or_else(|| "unhealthy".into());
    Usability::Unusable(reason)
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_schemas::Channel;

    fn sender(enabled: bool) -> SenderConfig {
        SenderConfig {
            name: "kt-1".into(),
            group: "kt".into(),
            channel: Channel::Sms,
            carriers: vec!["kt".into()],
            kind: "http".into(),
            endpoint: "http://127.0.0.1:1/submit".into(),
            tps: None,
            enabled,
            settings: Default::default(),
        }
    }

    fn beat(instance: &str, healthy: bool, at: i64) -> SenderHealth {
        SenderHealth {
            sender: "kt-1".into(),
            instance: instance.into(),
            healthy,
            reason: (!healthy).then(|| "not bound".into()),
            heartbeat_at: at,
            ..SenderHealth::default()
        }
    }

    #[test]
    fn a_disabled_sender_is_never_usable() {
        let u = usability(&sender(false), &[beat("a", true, 1_000)], 1_000, 5_000);
        assert_eq!(u, Usability::Unusable("disabled by an operator".into()));
    }

    #[test]
    fn no_heartbeat_yet_is_unknown_and_may_take() {
        let u = usability(&sender(true), &[], 1_000, 5_000);
        assert_eq!(u, Usability::Unknown);
        assert!(u.may_take(false));
    }

    #[test]
    fn one_fresh_healthy_instance_is_enough() {
        let beats = [beat("a", false, 9_000), beat("b", true, 8_000)];
        assert_eq!(
            usability(&sender(true), &beats, 10_000, 5_000),
            Usability::Usable
        );
    }

    #[test]
    fn stopped_heartbeats_make_it_unusable() {
        let beats = [beat("a", true, 1_000)];
        let u = usability(&sender(true), &beats, 7_000, 5_000);
        assert_eq!(u, Usability::Silent("no heartbeat for 6 s".into()));
        assert!(!u.may_take(false), "not while another sender may take");
        assert!(u.may_take(true), "a last resort");
        // A heartbeat exactly `stale_after` old still counts.
        assert_eq!(
            usability(&sender(true), &beats, 6_000, 5_000),
            Usability::Usable
        );
    }

    #[test]
    fn fresh_but_unhealthy_gives_the_latest_reason() {
        let mut older = beat("a", false, 8_000);
        older.reason = Some("old reason".into());
        let beats = [older, beat("b", false, 9_000)];
        assert_eq!(
            usability(&sender(true), &beats, 10_000, 5_000),
            Usability::Unusable("not bound".into())
        );
    }
}
