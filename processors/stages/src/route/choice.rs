//! Where one attempt of a message goes (pure over the tables and the health table): the
//! carrier of the number, the rule, then a sender that is not in the message's trail and may
//! take traffic. A failover tries the failed hop's group first, then the other groups of the
//! carrier by ratio, then (if the rule allows) the rule's other carriers.

use std::collections::HashSet;

use switchyard_runtime::{ConfigTables, StateAccess, Table};
use switchyard_schemas::{
    CarrierRoute, Channel, RouteHop, RouteRule, SenderConfig, SenderDrain, SenderHealth,
    ValidatedMessage,
};

use super::round_robin::pick_stored;
use crate::usability::{Usability, usability};

/// Where one attempt goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    pub carrier: String,
    pub group: String,
    pub sender: SenderConfig,
}

/// Why no sender can take the message, and the senders left out because they are unusable
/// (for the trail of a message that fails).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NoRoute {
    pub reason: String,
    /// (carrier, sender, why) of every sender of the rule left out for its health.
    pub unusable: Vec<(String, SenderConfig, String)>,
}

impl NoRoute {
    fn because(reason: String) -> Self {
        NoRoute {
            reason,
            unusable: Vec::new(),
        }
    }
}

/// One routing decision's view of the world.
pub(super) struct Choice<'a> {
    pub tables: &'a ConfigTables,
    pub health: &'a Table<String, SenderHealth>,
    /// Operators' drains: a drained sender gets nothing.
    pub drains: &'a Table<String, SenderDrain>,
    /// Where the round-robin positions are kept (route's state store partition).
    pub positions: &'a mut dyn StateAccess,
    pub now: i64,
    pub stale_after_ms: i64,
    /// Senders already in the trail: never picked again for this message.
    pub tried: HashSet<String>,
    /// Unusable senders seen on the way (for the trail).
    pub unusable: Vec<(String, SenderConfig, String)>,
    /// Whether senders whose heartbeats stopped may be picked (the second pass).
    pub last_resort: bool,
}

impl Choice<'_> {
    /// Where `message` goes next, after the hops of `trail`: among the senders that may take
    /// traffic, else among those whose dispatchers went silent (the message then waits in
    /// their queue rather than failing).
    pub fn destination(
        &mut self,
        message: &ValidatedMessage,
        trail: &[RouteHop],
        prefer_group: Option<&str>,
    ) -> Result<Destination, NoRoute> {
        self.last_resort = false;
        match self.pass(message, trail, prefer_group) {
            Ok(found) => Ok(found),
            Err(no_route) if no_route.unusable.is_empty() => Err(no_route),
            Err(no_route) => {
                self.last_resort = true;
                self.pass(message, trail, prefer_group)
                    .map_err(|_| no_route)
            }
        }
    }

    /// One pass of the choice.
    fn pass(
        &mut self,
        message: &ValidatedMessage,
        trail: &[RouteHop],
        prefer_group: Option<&str>,
    ) -> Result<Destination, NoRoute> {
        let s = &message.submission;
        let carrier = match s.channel {
            Channel::Sms | Channel::Lms | Channel::Mms => self
                .tables
                .carrier_of(&s.to)
                .ok_or_else(|| NoRoute::because(format!("no carrier known for {}", s.to)))?,
            other => other.to_string(),
        };
        let rule = self
            .tables
            .route_rule(&message.customer_id, s.channel)
            .ok_or_else(|| {
                NoRoute::because(format!(
                    "no routing rule for {} on {}",
                    message.customer_id, s.channel
                ))
            })?;
        let route = rule
            .carriers
            .iter()
            .find(|c| c.carrier == carrier)
            .or_else(|| rule.carriers.iter().find(|c| c.carrier == "*"))
            .ok_or_else(|| {
                NoRoute::because(format!(
                    "the rule for {}/{} has no route to {carrier}",
                    rule.customer_id, s.channel
                ))
            })?;
        // A drain's group first, when it has a sender for this carrier.
        if let Some(group) = prefer_group
            && let Some(sender) = self.sender_in(group, s.channel, &carrier)
        {
            return Ok(Destination {
                carrier,
                group: group.to_string(),
                sender,
            });
        }
        // A failover stays in the failed hop's group while it has another sender.
        if let Some(last) = trail.last()
            && last.carrier == carrier
            && let Some(sender) = self.sender_in(&last.sender_group, s.channel, &carrier)
        {
            return Ok(Destination {
                carrier,
                group: last.sender_group.clone(),
                sender,
            });
        }
        if let Some(found) = self.by_ratio(&rule, route, s.channel, &carrier) {
            return Ok(found);
        }
        if rule.other_carriers {
            for other in rule
                .carriers
                .iter()
                .filter(|c| c.carrier != carrier && c.carrier != "*")
            {
                if let Some(found) = self.by_ratio(&rule, other, s.channel, &other.carrier) {
                    return Ok(found);
                }
            }
        }
        let reason = if trail.is_empty() {
            format!(
                "no usable sender in any group for {carrier} on {}",
                s.channel
            )
        } else {
            format!(
                "every sender the rule allows for {carrier} on {} failed or is unusable",
                s.channel
            )
        };
        Err(NoRoute {
            reason,
            unusable: std::mem::take(&mut self.unusable),
        })
    }

    /// A group of `route` by ratio (groups with no sender to offer count 0), then a sender in it.
    fn by_ratio(
        &mut self,
        rule: &RouteRule,
        route: &CarrierRoute,
        channel: Channel,
        carrier: &str,
    ) -> Option<Destination> {
        let mut offers: Vec<Vec<(SenderConfig, bool)>> = route
            .groups
            .iter()
            .map(|g| {
                if g.ratio > 0 {
                    self.offer(&g.group, channel, carrier)
                } else {
                    Vec::new()
                }
            })
            .collect();
        let weights: Vec<i64> = route
            .groups
            .iter()
            .zip(&offers)
            .map(|(g, offer)| {
                if offer.iter().any(|(_, may)| *may) {
                    i64::from(g.ratio)
                } else {
                    0
                }
            })
            .collect();
        let key = format!("{}/{}/{carrier}", rule.customer_id, channel);
        let chosen = pick_stored(self.positions, &key, &weights)?;
        let group = &route.groups[chosen].group;
        let sender = self.pick_sender(group, channel, carrier, offers.swap_remove(chosen))?;
        Some(Destination {
            carrier: carrier.to_string(),
            group: group.clone(),
            sender,
        })
    }

    /// The next sender of `group` in turn, among those not tried that may take traffic.
    fn sender_in(&mut self, group: &str, channel: Channel, carrier: &str) -> Option<SenderConfig> {
        let offer = self.offer(group, channel, carrier);
        self.pick_sender(group, channel, carrier, offer)
    }

    /// The next sender in turn of `offer` (the group's senders, each with whether it may take).
    fn pick_sender(
        &mut self,
        group: &str,
        channel: Channel,
        carrier: &str,
        offer: Vec<(SenderConfig, bool)>,
    ) -> Option<SenderConfig> {
        let weights: Vec<i64> = offer.iter().map(|(_, may)| i64::from(*may)).collect();
        let key = format!("group/{group}/{channel}/{carrier}");
        let index = pick_stored(self.positions, &key, &weights)?;
        offer.into_iter().nth(index).map(|(sender, _)| sender)
    }

    /// The senders of `group`, by name, each with whether route may pick it now (not tried,
    /// and usable); the ones left out for their health are noted for the trail.
    fn offer(&mut self, group: &str, channel: Channel, carrier: &str) -> Vec<(SenderConfig, bool)> {
        let mut offer = Vec::new();
        for sender in self.senders_of(group, channel, carrier) {
            if self.tried.contains(&sender.name) {
                offer.push((sender, false));
                continue;
            }
            let usability = if self.drains.get(&sender.name).is_some() {
                Usability::Unusable("drained by an operator".into())
            } else {
                let beats = self.health.values_where(|h| h.sender == sender.name);
                usability(&sender, &beats, self.now, self.stale_after_ms)
            };
            let may = usability.may_take(self.last_resort);
            if !may
                && let Some(why) = usability.why_not()
                && !self.unusable.iter().any(|(_, s, _)| s.name == sender.name)
            {
                self.unusable
                    .push((carrier.to_string(), sender.clone(), why.to_string()));
            }
            offer.push((sender, may));
        }
        offer
    }

    /// The enabled senders of `group` for `channel` reaching `carrier`, by name.
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
