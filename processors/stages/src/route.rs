//! route: `messages.validated` → `sender.<name>` + `messages.routed`.
//! The carrier of the number (ported numbers first, then the longest prefix; non-phone channels
//! use the channel name as carrier), the rule for (customer, channel) or the default rule, a
//! sender group by smooth weighted round-robin over the ratios (1:1 over 10 messages is exactly
//! 5:5), then the group's senders in turn. No route: a failed DeliveryReport, so the message
//! still gets its final report.

use std::collections::HashMap;
use std::sync::Mutex;

use switchyard_runtime::{ConfigTables, Origin, Output, Processor, StageError};
use switchyard_schemas::{
    Channel, DeliveryReport, DispatchRequest, GroupShare, ResultStatus, RouteHop, RoutingDecision,
    SenderConfig, ValidatedMessage, event_id, now_millis,
};

/// Output topics (plus `sender.<name>`).
pub use switchyard_runtime::names::{REPORTS, ROUTED};

/// Result code of a message no sender can take.
pub const NO_ROUTE: &str = "no_route";

/// Smooth weighted round-robin (nginx's): every pick adds each weight to its current value,
/// takes the largest, and subtracts the total from it. Over one cycle each item is picked
/// exactly `weight` times, spread out as evenly as possible.
#[derive(Debug, Default, Clone)]
pub struct SmoothRoundRobin {
    current: Vec<i64>,
}

impl SmoothRoundRobin {
    /// Pick an index of `weights` (weights ≤ 0 are never picked); None if all are ≤ 0.
    pub fn pick(&mut self, weights: &[i64]) -> Option<usize> {
        if self.current.len() != weights.len() {
            self.current = vec![0; weights.len()];
        }
        let total: i64 = weights.iter().filter(|w| **w > 0).sum();
        if total == 0 {
            return None;
        }
        let mut best: Option<usize> = None;
        for (i, &w) in weights.iter().enumerate() {
            if w <= 0 {
                continue;
            }
            self.current[i] += w;
            if best.is_none_or(|b| self.current[i] > self.current[b]) {
                best = Some(i);
            }
        }
        let chosen = best?;
        self.current[chosen] -= total;
        Some(chosen)
    }
}

/// The route stage. The round-robin positions are soft state (see
/// docs/decisions/0005-route-round-robin-state.md).
#[derive(Debug)]
pub struct Route {
    tables: ConfigTables,
    positions: Mutex<HashMap<String, SmoothRoundRobin>>,
}

/// Where one message goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    pub carrier: String,
    pub group: String,
    pub sender: SenderConfig,
}

impl Route {
    pub fn new(tables: ConfigTables) -> Self {
        Route {
            tables,
            positions: Mutex::default(),
        }
    }

    fn pick(&self, key: String, weights: &[i64]) -> Option<usize> {
        let mut positions = self
            .positions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        positions.entry(key).or_default().pick(weights)
    }

    /// Where a message goes, or why it cannot go anywhere.
    pub fn destination(&self, message: &ValidatedMessage) -> Result<Destination, String> {
        let s = &message.submission;
        let carrier = match s.channel {
            Channel::Sms | Channel::Lms | Channel::Mms => self
                .tables
                .carrier_of(&s.to)
                .ok_or_else(|| format!("no carrier known for {}", s.to))?,
            other => other.to_string(),
        };
        let rule = self
            .tables
            .route_rule(&message.customer_id, s.channel)
            .ok_or_else(|| {
                format!(
                    "no routing rule for {} on {}",
                    message.customer_id, s.channel
                )
            })?;
        let route = rule
            .carriers
            .iter()
            .find(|c| c.carrier == carrier)
            .or_else(|| rule.carriers.iter().find(|c| c.carrier == "*"))
            .ok_or_else(|| {
                format!(
                    "the rule for {}/{} has no route to {carrier}",
                    rule.customer_id, s.channel
                )
            })?;
        // Groups that have at least one usable sender, with their ratios.
        let usable: Vec<(&GroupShare, Vec<SenderConfig>)> = route
            .groups
            .iter()
            .map(|g| (g, self.senders_of(&g.group, s.channel, &carrier)))
            .filter(|(g, senders)| g.ratio > 0 && !senders.is_empty())
            .collect();
        let weights: Vec<i64> = usable.iter().map(|(g, _)| i64::from(g.ratio)).collect();
        let rule_key = format!("{}/{}/{carrier}", rule.customer_id, s.channel);
        let chosen = self.pick(rule_key, &weights).ok_or_else(|| {
            format!(
                "no enabled sender in any group for {carrier} on {}",
                s.channel
            )
        })?;
        let (group, senders) = &usable[chosen];
        let equal = vec![1; senders.len()];
        let index = self
            .pick(
                format!("group/{}/{}/{carrier}", group.group, s.channel),
                &equal,
            )
            .unwrap_or(0);
        Ok(Destination {
            carrier,
            group: group.group.clone(),
            sender: senders[index].clone(),
        })
    }

    fn senders_of(&self, group: &str, channel: Channel, carrier: &str) -> Vec<SenderConfig> {
        let mut senders: Vec<SenderConfig> = self.tables.senders.values_where(|s| {
            s.enabled
                && s.group == group
                && s.channel == channel
                && s.carriers.iter().any(|c| c == carrier || c == "*")
        });
        senders.sort_by(|a, b| a.name.cmp(&b.name));
        senders
    }
}

/// The records one routed message becomes.
pub fn route_outputs(
    message: ValidatedMessage,
    destination: Result<Destination, String>,
    now: i64,
) -> Vec<Output> {
    let s = &message.submission;
    match destination {
        Ok(d) => {
            let attempt = 1;
            let hop = RouteHop {
                attempt,
                carrier: d.carrier.clone(),
                sender_group: d.group.clone(),
                sender: d.sender.name.clone(),
                outcome: None,
                at: now,
            };
            let decision = RoutingDecision {
                message_id: message.message_id.clone(),
                customer_id: message.customer_id.clone(),
                channel: s.channel,
                to: s.to.clone(),
                carrier: d.carrier.clone(),
                sender_group: d.group.clone(),
                sender: d.sender.name.clone(),
                attempt,
                priority: s.priority,
                trail: vec![hop.clone()],
                routed_at: now,
            };
            let request = DispatchRequest {
                message_id: message.message_id.clone(),
                customer_id: message.customer_id.clone(),
                carrier: d.carrier,
                sender_group: d.group,
                sender: d.sender.name.clone(),
                attempt,
                message: message.clone(),
                trail: vec![hop],
                routed_at: now,
            };
            vec![
                Output::new(
                    switchyard_runtime::names::sender(&d.sender.name),
                    message.message_id.clone(),
                    request,
                ),
                Output::new(ROUTED, message.message_id.clone(), decision),
            ]
        }
        Err(reason) => {
            tracing::info!(stage = "route", message_id = %message.message_id, %reason, "no route");
            let report = DeliveryReport {
                event_id: event_id(&[&message.message_id, "route", NO_ROUTE]),
                message_id: message.message_id.clone(),
                customer_id: message.customer_id.clone(),
                client_id: s.client_id.clone(),
                client_message_id: s.client_message_id.clone(),
                channel: s.channel,
                to: s.to.clone(),
                carrier: String::new(),
                sender: String::new(),
                carrier_message_id: None,
                status: ResultStatus::Failed,
                carrier_code: String::new(),
                result_code: NO_ROUTE.into(),
                result_text: reason,
                attempt: 0,
                submitted_at: None,
                reported_at: now,
            };
            vec![Output::new(REPORTS, message.message_id.clone(), report)]
        }
    }
}

impl Processor for Route {
    type Input = ValidatedMessage;

    fn process(
        &self,
        input: ValidatedMessage,
        _origin: Origin<'_>,
    ) -> Result<Vec<Output>, StageError> {
        let destination = self.destination(&input);
        Ok(route_outputs(input, destination, now_millis()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{tables, validated};

    #[test]
    fn smooth_round_robin_is_exact_and_spread() {
        let mut rr = SmoothRoundRobin::default();
        let picks: Vec<usize> = (0..10).filter_map(|_| rr.pick(&[1, 1])).collect();
        assert_eq!(picks.iter().filter(|&&i| i == 0).count(), 5);
        assert_eq!(picks, vec![0, 1, 0, 1, 0, 1, 0, 1, 0, 1]);
        let mut rr = SmoothRoundRobin::default();
        let picks: Vec<usize> = (0..7).filter_map(|_| rr.pick(&[5, 1, 1])).collect();
        assert_eq!(picks, vec![0, 0, 1, 0, 2, 0, 0], "nginx's example sequence");
        assert_eq!(SmoothRoundRobin::default().pick(&[0, 0]), None);
    }

    #[test]
    fn a_one_to_one_rule_splits_ten_messages_five_five() {
        let route = Route::new(tables());
        let mut per_group: HashMap<String, usize> = HashMap::new();
        let mut per_sender: HashMap<String, usize> = HashMap::new();
        for i in 0..10 {
            let d = route
                .destination(&validated(&format!("m-{i}")))
                .expect("routes");
            assert_eq!(d.carrier, "skt");
            *per_group.entry(d.group).or_default() += 1;
            *per_sender.entry(d.sender.name).or_default() += 1;
        }
        assert_eq!(per_group["skt-direct"], 5);
        assert_eq!(per_group["aggregator"], 5);
        // Within skt-direct, its two senders take turns.
        assert_eq!((per_sender["skt-a1"], per_sender["skt-a2"]), (3, 2));
    }

    #[test]
    fn longest_prefix_and_ported_numbers_pick_the_carrier() {
        let route = Route::new(tables());
        let mut m = validated("m");
        m.submission.to = "01091234567".into();
        let d = route.destination(&m).expect("routes");
        assert_eq!(
            (d.carrier.as_str(), d.group.as_str()),
            ("kt", "kt-direct"),
            "0109 beats 010; ratio 0 never"
        );
        m.submission.to = "01099990000".into();
        assert_eq!(
            route.destination(&m).expect("routes").carrier,
            "skt",
            "ported number wins"
        );
    }

    #[test]
    fn no_route_becomes_a_failed_report() {
        let route = Route::new(tables());
        let mut m = validated("m-x");
        m.submission.channel = Channel::Lms;
        let outputs = route_outputs(m.clone(), route.destination(&m), 9);
        assert_eq!(outputs.len(), 1);
        assert_eq!(outputs[0].topic, REPORTS);
        let report = outputs[0].value::<DeliveryReport>().expect("report");
        assert_eq!(
            (report.status, report.result_code.as_str()),
            (ResultStatus::Failed, NO_ROUTE)
        );
        assert!(
            report.result_text.contains("no routing rule"),
            "{}",
            report.result_text
        );
    }

    #[test]
    fn a_route_writes_the_sender_topic_and_the_decision() {
        let route = Route::new(tables());
        let m = validated("m-1");
        let outputs = route_outputs(m.clone(), route.destination(&m), 9);
        let topics: Vec<&str> = outputs.iter().map(|o| o.topic.as_str()).collect();
        assert_eq!(topics, vec!["sender.skt-a1", ROUTED]);
        let request = outputs[0].value::<DispatchRequest>().expect("request");
        assert_eq!(
            (request.attempt, request.message.message_id.as_str()),
            (1, "m-1")
        );
    }
}
