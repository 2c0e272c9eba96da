//! A sender's rate per dispatcher instance (pure; decision 0023): the sender's `tps`, which
//! its carrier imposes, split evenly over the dispatcher instances whose heartbeats for it are
//! fresh, so all of them together never start more submits a second than `tps`.

use std::collections::BTreeSet;

use switchyard_schemas::{HEARTBEAT_STALE_AFTER_MS, Millis, SenderHealth};

/// The rate this instance may submit at for `sender` (None: the sender has no `tps`), given
/// every heartbeat on `state.sender-health` at `now`. Counts at least this instance, which may
/// not have beaten yet.
pub fn instance_share<'a>(
    tps: Option<i32>,
    sender: &str,
    me: &str,
    beats: impl IntoIterator<Item = &'a SenderHealth>,
    now: Millis,
) -> Option<f64> {
    let tps = tps.filter(|t| *t > 0)?;
    let mut instances: BTreeSet<&str> = beats
        .into_iter()
        .filter(|b| b.sender == sender && now - b.heartbeat_at <= HEARTBEAT_STALE_AFTER_MS)
        .map(|b| b.instance.as_str())
        .collect();
    instances.insert(me);
    Some(f64::from(tps) / instances.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn beat(sender: &str, instance: &str, at: Millis) -> SenderHealth {
        SenderHealth {
            sender: sender.into(),
            instance: instance.into(),
            heartbeat_at: at,
            ..SenderHealth::default()
        }
    }

    #[test]
    fn the_rate_is_split_over_the_fresh_instances_of_the_sender() {
        let now = 100_000;
        let beats = [
            beat("skt-a", "i-1", now - 1_000),
            beat("skt-a", "i-2", now - 2_000),
            beat("skt-a", "i-dead", now - HEARTBEAT_STALE_AFTER_MS - 1),
            beat("kt-a", "i-3", now),
        ];
        assert_eq!(
            instance_share(Some(100), "skt-a", "i-1", &beats, now),
            Some(50.0)
        );
        // An instance that has not beaten yet counts itself.
        assert_eq!(
            instance_share(Some(90), "skt-a", "i-new", &beats, now),
            Some(30.0)
        );
        assert_eq!(
            instance_share(Some(100), "kt-b", "i-1", &beats, now),
            Some(100.0)
        );
        assert_eq!(instance_share(None, "skt-a", "i-1", &beats, now), None);
        assert_eq!(instance_share(Some(0), "skt-a", "i-1", &beats, now), None);
    }
}
