//! Identifiers and clocks every stage agrees on.

use uuid::Uuid;

/// Namespace of switchyard's name-based (v5) ids.
const NAMESPACE: Uuid = Uuid::from_u128(0x5f1c_2b8e_7d4a_4c3e_9a61_0b2d_8e7f_1a90);

/// A new message id (UUIDv7: time-ordered), as the ingress assigns.
pub fn new_message_id() -> String {
    Uuid::now_v7().to_string()
}

/// The id of a message a direct producer left without one: derived from where it was read,
/// so every replay (and every stage that reads the intake record) gets the same id.
pub fn derived_message_id(topic: &str, partition: i32, offset: i64) -> String {
    Uuid::new_v5(
        &NAMESPACE,
        format!("{topic}/{partition}/{offset}").as_bytes(),
    )
    .to_string()
}

/// A stable event id: the same inputs give the same id (so duplicates are recognisable).
pub fn event_id(parts: &[&str]) -> String {
    Uuid::new_v5(&NAMESPACE, parts.join("/").as_bytes()).to_string()
}

/// Milliseconds since the Unix epoch, now.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_are_stable_and_distinct() {
        assert_eq!(derived_message_id("t", 0, 5), derived_message_id("t", 0, 5));
        assert_ne!(derived_message_id("t", 0, 5), derived_message_id("t", 1, 5));
        assert_eq!(event_id(&["m", "final"]), event_id(&["m", "final"]));
    }

    #[test]
    fn new_ids_are_time_ordered() {
        let a = new_message_id();
        let b = new_message_id();
        assert!(a < b, "{a} < {b}");
    }
}
