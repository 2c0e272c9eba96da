//! Every topic name of the pipeline, in one place, and the namespace prefix that lets several
//! environments share one cluster. Code uses these logical names; the runtime adds the
//! namespace at the Kafka boundary (`Namespace::physical`).

/// Intake: Submission, key customer id.
pub const ACCEPTED: &str = "messages.accepted";
/// validate → route: ValidatedMessage.
pub const VALIDATED: &str = "messages.validated";
/// validate → report: Rejection.
pub const REJECTED: &str = "messages.rejected";
/// validate → the delayed-topic runner (→ `messages.accepted` at `release_at`): HeldMessage.
pub const HELD: &str = "messages.held";
/// validate → the release runner (→ `messages.accepted` at its slot): HeldMessage of a
/// customer over its rate for a channel.
pub const PACED: &str = "messages.paced";
/// route → history: RoutingDecision.
pub const ROUTED: &str = "messages.routed";
/// dispatch → route: DispatchRequest of a message its sender could not take (carrier down,
/// bind lost), its trail's last hop saying why; route picks another sender or fails it.
pub const FAILOVER: &str = "messages.failover";
/// dispatch → history: DispatchOutcome.
pub const DISPATCHED: &str = "messages.dispatched";
/// dispatch (receipts) → report: DeliveryReport.
pub const REPORTS: &str = "messages.reports";
/// report → callback, history: FinalReport.
pub const FINAL: &str = "reports.final";
/// dispatch → report's deadline runner, at the sender's receipt deadline (`switchyard.due-at`):
/// the DeliveryReport (unknown outcome, 3006) a submitted message gets if no final report
/// came by then. Decision 0020.
pub const DEADLINES: &str = "reports.deadlines";
/// After the tenth failed callback retry.
pub const CALLBACKS_EXHAUSTED: &str = "callbacks.exhausted";
/// callback → history: CallbackResult, one per webhook attempt.
pub const CALLBACK_RESULTS: &str = "callbacks.results";
/// ingress (`POST /v1/reports/ack`) → history: ReportAck.
pub const REPORT_ACKS: &str = "callbacks.acks";
/// `switchyard callbacks replay` → callback: FinalReport, sent again.
pub const CALLBACK_REPLAY: &str = "callbacks.replay";
/// Config tables (compacted).
pub const CONFIG_CUSTOMERS: &str = "config.customers";
pub const CONFIG_CLIENTS: &str = "config.clients";
pub const CONFIG_SENDERS: &str = "config.senders";
pub const CONFIG_ROUTES: &str = "config.routes";
pub const CONFIG_POLICY: &str = "config.policy";
pub const CONFIG_NUMBERING: &str = "config.numbering";
pub const CONFIG_BILL_CODES: &str = "config.bill_codes";
/// Dispatchers' heartbeats (compacted).
pub const SENDER_HEALTH: &str = "state.sender-health";
/// Operators' drains (compacted), key sender: `switchyard senders drain` writes, a tombstone
/// ends; route and dispatch read it as a table.
pub const SENDER_DRAINS: &str = "state.sender-drains";
/// validate's state store changelog (compacted): duplicate windows, balance snapshots,
/// charges, applied credits.
pub const STATE_VALIDATE: &str = "state.validate";
/// route's state store (changelog): the round-robin positions per input partition, so a
/// restart or a rebalance keeps every ratio exact (decision 0022).
pub const STATE_ROUTE: &str = "state.route";
/// SMPP senders' receipt index (compacted): `<sender>␟<carrier id key>` → the message's
/// context (StateEntry.text, JSON), so receipts match after a restart.
pub const RECEIPT_INDEX: &str = "state.receipts";
/// `switchyard balance credit` and report → validate: BalanceCommand, key customer id.
pub const BALANCE_COMMANDS: &str = "balance.commands";
/// validate → anyone auditing money: BalanceEvent (debit, credit, refund), key customer id.
pub const BALANCE_LEDGER: &str = "ledger.balances";
/// The schema registry's log (Confluent's own format).
pub const SCHEMAS: &str = "_schemas";

/// Number of callback retry tiers.
pub const CALLBACK_RETRY_TIERS: u32 = 10;

const SENDER_PREFIX: &str = "sender.";
const DEAD_LETTER_PREFIX: &str = "deadletter.";
const CALLBACK_RETRY_PREFIX: &str = "callbacks.retry.";

/// The priority lanes of every sender, highest first (decision 0023). The `normal` lane is the
/// sender's own topic; each other lane is that topic with the lane appended.
pub const LANES: [&str; 4] = ["otp", "normal", "bulk", "ad"];
/// The lane whose topic is the sender's own topic.
pub const NORMAL_LANE: &str = "normal";

/// The topic of one sender (its `normal` lane), e.g. `sender.skt-1`.
pub fn sender(name: &str) -> String {
    format!("{SENDER_PREFIX}{name}")
}

/// The topic of one of a sender's lanes: `sender.skt-1` for `normal`, `sender.skt-1.otp` for
/// `otp` (sender names have no dots, so the two never clash).
pub fn sender_lane(name: &str, lane: &str) -> String {
    if lane == NORMAL_LANE {
        sender(name)
    } else {
        format!("{SENDER_PREFIX}{name}.{lane}")
    }
}

/// Every lane topic of a sender, highest priority first.
pub fn sender_lanes(name: &str) -> Vec<String> {
    LANES.iter().map(|lane| sender_lane(name, lane)).collect()
}

/// The stage dispatching one lane of a sender (its consumer group is `switchyard.` + this):
/// `dispatch.skt-1` for the normal lane, `dispatch.skt-1.otp` for the OTP lane.
pub fn dispatch_stage(sender: &str, lane: &str) -> String {
    if lane == NORMAL_LANE {
        format!("dispatch.{sender}")
    } else {
        format!("dispatch.{sender}.{lane}")
    }
}

/// The sender a sender (lane) topic belongs to (`sender.skt-1`, `sender.skt-1.otp` → `skt-1`).
pub fn sender_of(topic: &str) -> Option<&str> {
    let rest = topic.strip_prefix(SENDER_PREFIX)?;
    Some(rest.split_once('.').map_or(rest, |(name, _)| name))
}

/// The dead-letter topic of a topic, e.g. `deadletter.messages.accepted`.
pub fn dead_letter(topic: &str) -> String {
    format!("{DEAD_LETTER_PREFIX}{topic}")
}

/// The retry tier topic for retry `n` (1..=10).
pub fn callback_retry(n: u32) -> String {
    format!("{CALLBACK_RETRY_PREFIX}{n}")
}

/// Every fixed (not per-sender, not dead-letter) topic name above.
pub fn fixed() -> Vec<String> {
    let mut names: Vec<String> = [
        ACCEPTED,
        VALIDATED,
        REJECTED,
        HELD,
        ROUTED,
        FAILOVER,
        DISPATCHED,
        REPORTS,
        FINAL,
        DEADLINES,
        CALLBACKS_EXHAUSTED,
        CALLBACK_RESULTS,
        REPORT_ACKS,
        CALLBACK_REPLAY,
        CONFIG_CUSTOMERS,
        CONFIG_CLIENTS,
        CONFIG_SENDERS,
        CONFIG_ROUTES,
        CONFIG_POLICY,
        CONFIG_NUMBERING,
        CONFIG_BILL_CODES,
        SENDER_HEALTH,
        SENDER_DRAINS,
        STATE_VALIDATE,
        STATE_ROUTE,
        RECEIPT_INDEX,
        PACED,
        BALANCE_COMMANDS,
        BALANCE_LEDGER,
        SCHEMAS,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    names.extend((1..=CALLBACK_RETRY_TIERS).map(callback_retry));
    names
}

/// A namespace: the prefix put before every topic, consumer group and transactional id, so
/// several environments (or tests) share one cluster without seeing each other's records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Namespace {
    prefix: String,
}

impl Namespace {
    /// The namespace with this prefix (empty: no prefix). A prefix is used as it is, so give
    /// it its own separator, e.g. `staging.`.
    pub fn new(prefix: impl Into<String>) -> Self {
        Namespace {
            prefix: prefix.into(),
        }
    }

    /// The prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The name on the broker of a logical topic (or group, or transactional id).
    pub fn physical(&self, logical: &str) -> String {
        format!("{}{logical}", self.prefix)
    }

    /// The logical name of a name on the broker; unchanged when it lacks the prefix.
    pub fn logical<'a>(&self, physical: &'a str) -> &'a str {
        physical.strip_prefix(&self.prefix).unwrap_or(physical)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Catalog;

    #[test]
    fn every_name_here_is_declared_in_the_catalog_and_back() {
        let catalog = Catalog::builtin().expect("parses");
        let declared: std::collections::BTreeSet<String> =
            catalog.declared_names().into_iter().collect();
        let named: std::collections::BTreeSet<String> = fixed().into_iter().collect();
        assert_eq!(declared, named);
        assert_eq!(catalog.sender_topic("skt-1"), sender("skt-1"));
        assert_eq!(catalog.dead_letter_topic(ACCEPTED), dead_letter(ACCEPTED));
        assert_eq!(sender_of(&sender("kt-2")), Some("kt-2"));
        assert_eq!(sender_of(&sender_lane("kt-2", "otp")), Some("kt-2"));
        assert_eq!(sender_lane("kt-2", NORMAL_LANE), sender("kt-2"));
        assert_eq!(
            sender_lanes("kt-2"),
            [
                "sender.kt-2.otp",
                "sender.kt-2",
                "sender.kt-2.bulk",
                "sender.kt-2.ad"
            ]
        );
    }

    #[test]
    fn a_namespace_prefixes_and_strips() {
        let ns = Namespace::new("staging.");
        assert_eq!(ns.physical(ACCEPTED), "staging.messages.accepted");
        assert_eq!(ns.logical("staging.messages.accepted"), ACCEPTED);
        assert_eq!(ns.logical("other.topic"), "other.topic");
        assert_eq!(Namespace::default().physical(FINAL), FINAL);
    }
}
