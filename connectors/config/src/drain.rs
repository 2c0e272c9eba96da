//! `switchyard senders drain NAME [--to GROUP] [--reason …]` and `senders undrain NAME`: an
//! operator's drain of one sender on the compacted `state.sender-drains` (decision 0024). While
//! it stands, route sends the sender nothing new and its dispatchers hand every message still
//! queued for it back to route, which sends it to `GROUP` first, else as a failover would.

use switchyard_runtime::names::{CONFIG_SENDERS, SENDER_DRAINS};
use switchyard_runtime::{Output, Runtime};
use switchyard_schemas::{SenderConfig, SenderDrain, now_millis};

use crate::ConfigError;
use crate::read::last_values;

/// Check a drain of `sender` to `to_group` against the configured `senders` (pure): the sender
/// exists, and the group, if given, has another enabled sender on the same channel.
pub fn check_drain(
    senders: &[SenderConfig],
    sender: &str,
    to_group: Option<&str>,
) -> Result<(), ConfigError> {
    let Some(drained) = senders.iter().find(|s| s.name == sender) else {
        return Err(ConfigError::File(format!(
            "sender {sender:?} is not configured"
        )));
    };
    if let Some(group) = to_group
        && !senders.iter().any(|s| {
            s.group == group && s.name != sender && s.enabled && s.channel == drained.channel
        })
    {
        return Err(ConfigError::File(format!(
            "--to {group:?}: no other enabled {} sender is in that group",
            drained.channel
        )));
    }
    Ok(())
}

/// Drain `sender` (to `to_group` first, if given) for `reason`; returns the drain written.
pub async fn drain(
    runtime: &Runtime,
    sender: &str,
    to_group: Option<&str>,
    reason: &str,
) -> Result<SenderDrain, ConfigError> {
    let senders: Vec<SenderConfig> = last_values::<SenderConfig>(runtime, CONFIG_SENDERS)
        .await?
        .into_values()
        .collect();
    check_drain(&senders, sender, to_group)?;
    let drain = SenderDrain {
        sender: sender.to_string(),
        to_group: to_group.map(str::to_string),
        requested_at: now_millis(),
        reason: reason.to_string(),
    };
    runtime
        .publish(
            "senders",
            &[Output::new(
                SENDER_DRAINS,
                sender.to_string(),
                drain.clone(),
            )],
        )
        .await?;
    Ok(drain)
}

/// End the drain of `sender`; returns whether one stood.
pub async fn undrain(runtime: &Runtime, sender: &str) -> Result<bool, ConfigError> {
    let standing = last_values::<SenderDrain>(runtime, SENDER_DRAINS)
        .await?
        .contains_key(sender);
    runtime
        .publish(
            "senders",
            &[Output::tombstone(SENDER_DRAINS, sender.to_string())],
        )
        .await?;
    Ok(standing)
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_schemas::Channel;

    fn sender(name: &str, group: &str, channel: Channel, enabled: bool) -> SenderConfig {
        SenderConfig {
            name: name.into(),
            group: group.into(),
            channel,
            carriers: vec!["skt".into()],
            kind: "http".into(),
            endpoint: "http://127.0.0.1:1/submit".into(),
            tps: None,
            enabled,
            settings: Default::default(),
        }
    }

    #[test]
    fn a_drain_names_a_known_sender_and_a_group_that_can_take_its_queue() {
        let senders = [
            sender("skt-a", "direct", Channel::Sms, true),
            sender("skt-b", "spare", Channel::Sms, true),
            sender("skt-c", "off", Channel::Sms, false),
            sender("kakao-a", "kakao", Channel::Kakao, true),
        ];
        assert!(check_drain(&senders, "skt-a", None).is_ok());
        assert!(check_drain(&senders, "skt-a", Some("spare")).is_ok());
        let unknown = check_drain(&senders, "skt-x", None).expect_err("unknown");
        assert!(unknown.to_string().contains("skt-x"), "{unknown}");
        for group in ["direct", "off", "kakao", "nowhere"] {
            let err = check_drain(&senders, "skt-a", Some(group)).expect_err(group);
            assert!(
                err.to_string().contains(&format!("--to {group:?}")),
                "{err}"
            );
        }
    }
}
