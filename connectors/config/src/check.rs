//! Checks a config file for nonsense before anything is written: empty ids, dangling group
//! and carrier names, negative ratios, URLs that are not absolute http(s), shared API keys.

use std::collections::{BTreeMap, BTreeSet};

use switchyard_schemas::{ApiClientConfig, Channel};
use switchyard_stages::policy::keywords;

use crate::ConfigError;
use crate::file::{ConfigFile, SenderEntry};

/// The longest duplicate window a customer may ask for (30 days): validate keeps every id
/// of the window in memory.
pub const MAX_DEDUP_WINDOW_HOURS: i32 = 720;

/// The longest history retention a customer may ask for (ten years).
pub const MAX_HISTORY_RETENTION_DAYS: i32 = 3650;

/// Every field-level check that needs the whole file; the first problem found, naming its
/// field.
pub(crate) fn check(file: &ConfigFile) -> Result<(), ConfigError> {
    for (i, c) in file.customers.iter().enumerate() {
        non_empty(&c.id, &format!("customers[{i}].id"))?;
        let at = format!("customers[{i}] (customer {:?})", c.id);
        for (channel, tps) in &c.tps_limits {
            known_channel(channel, &format!("{at}.tps_limits"))?;
            if *tps < 0 {
                return Err(field(
                    &format!("{at}.tps_limits.{channel}"),
                    &format!("is negative ({tps})"),
                ));
            }
        }
        for (channel, price) in &c.prices {
            known_channel(channel, &format!("{at}.prices"))?;
            if *price < 0 {
                return Err(field(
                    &format!("{at}.prices.{channel}"),
                    &format!("is negative ({price})"),
                ));
            }
        }
        if c.prepaid {
            for channel in &c.channels {
                let name = channel.as_str();
                if !c.prices.contains_key(name) {
                    return Err(field(
                        &format!("{at}.prices.{name}"),
                        "is missing: a prepaid customer needs a price for every channel it uses",
                    ));
                }
            }
        }
        if !(1..=MAX_DEDUP_WINDOW_HOURS).contains(&c.dedup_window_hours) {
            return Err(field(
                &format!("{at}.dedup_window_hours"),
                &format!(
                    "is {}, not between 1 and {MAX_DEDUP_WINDOW_HOURS}",
                    c.dedup_window_hours
                ),
            ));
        }
        if let Some(days) = c.history_retention_days
            && !(1..=MAX_HISTORY_RETENTION_DAYS).contains(&days)
        {
            return Err(field(
                &format!("{at}.history_retention_days"),
                &format!("is {days}, not between 1 and {MAX_HISTORY_RETENTION_DAYS}"),
            ));
        }
        if let Some(night_ads) = &c.night_ads
            && !matches!(night_ads.as_str(), "hold" | "reject")
        {
            return Err(field(
                &format!("{at}.night_ads"),
                &format!("is {night_ads:?}, not \"hold\" or \"reject\""),
            ));
        }
        if c.auto_lms_upgrade && !c.channels.contains(&Channel::Lms) {
            return Err(field(
                &format!("{at}.auto_lms_upgrade"),
                "is on but channels does not list lms",
            ));
        }
        for (j, code) in c.bill_codes.iter().enumerate() {
            non_empty(code, &format!("{at}.bill_codes[{j}]"))?;
        }
    }
    for (i, b) in file.bill_codes.iter().enumerate() {
        non_empty(&b.customer, &format!("bill_codes[{i}].customer"))?;
        non_empty(&b.code, &format!("bill_codes[{i}].code"))?;
    }
    for (at, id, p) in file.all_policies() {
        non_empty(&id, &format!("{at}.id"))?;
        for (j, word) in p.blocked_keywords.iter().enumerate() {
            if keywords::normalize(word).is_empty() {
                return Err(field(
                    &format!("{at}.blocked_keywords[{j}]"),
                    &format!("is {word:?}, empty once spaces and punctuation are ignored"),
                ));
            }
        }
        for (name, hour) in [
            ("quiet_start_hour", p.quiet_start_hour),
            ("quiet_end_hour", p.quiet_end_hour),
        ] {
            if let Some(hour) = hour
                && !(0..24).contains(&hour)
            {
                return Err(field(
                    &format!("{at}.{name}"),
                    &format!("is {hour}, not an hour 0-23 (KST)"),
                ));
            }
        }
        for (name, value) in [
            ("ad_prefix", &p.ad_prefix),
            ("ad_opt_out_marker", &p.ad_opt_out_marker),
        ] {
            if let Some(value) = value {
                non_empty(value, &format!("{at}.{name}"))?;
            }
        }
    }
    for (i, c) in file.clients.iter().enumerate() {
        non_empty(&c.id, &format!("clients[{i}].id"))?;
        non_empty(&c.customer, &format!("clients[{i}].customer"))?;
        if let Some(limit) = c.rate_limit_per_second
            && limit <= 0
        {
            return Err(field(
                &format!("clients[{i}].rate_limit_per_second"),
                &format!("is {limit}; leave it out for no limit"),
            ));
        }
        if let Some(url) = &c.report_url {
            http_url(url, &format!("clients[{i}].report_url (client {})", c.id))?;
        }
    }
    let mut groups = BTreeSet::new();
    let mut carriers = BTreeSet::new();
    for (i, s) in file.senders.iter().enumerate() {
        let at = format!("senders[{i}] (sender {:?})", s.name);
        non_empty(&s.group, &format!("{at}.group"))?;
        if s.carriers.is_empty() {
            return Err(field(&format!("{at}.carriers"), "lists no carrier"));
        }
        for (j, carrier) in s.carriers.iter().enumerate() {
            non_empty(carrier, &format!("{at}.carriers[{j}]"))?;
        }
        sender_kind(s, &at)?;
        groups.insert(s.group.as_str());
        carriers.extend(s.carriers.iter().map(String::as_str));
    }
    for (i, r) in file.routes.iter().enumerate() {
        let at = format!("routes[{i}] (customer {:?})", r.customer);
        non_empty(&r.customer, &format!("{at}.customer"))?;
        if r.carriers.is_empty() {
            return Err(field(&format!("{at}.carriers"), "lists no carrier"));
        }
        for (j, c) in r.carriers.iter().enumerate() {
            let at = format!("{at}.carriers[{j}]");
            non_empty(&c.carrier, &format!("{at}.carrier"))?;
            if c.groups.is_empty() {
                return Err(field(&format!("{at}.groups"), "lists no group"));
            }
            for (k, g) in c.groups.iter().enumerate() {
                let at = format!("{at}.groups[{k}]");
                if !groups.contains(g.group.as_str()) {
                    return Err(field(
                        &format!("{at}.group"),
                        &format!("names group {:?}, which no sender belongs to", g.group),
                    ));
                }
                if g.ratio < 0 {
                    return Err(field(
                        &format!("{at}.ratio"),
                        &format!("is negative ({})", g.ratio),
                    ));
                }
            }
            carriers.insert(c.carrier.as_str());
        }
    }
    for (i, n) in file.numbering.iter().enumerate() {
        let at = format!("numbering[{i}]");
        if let Some(prefix) = &n.prefix {
            non_empty(prefix, &format!("{at}.prefix"))?;
        }
        if let Some(number) = &n.ported {
            non_empty(number, &format!("{at}.ported"))?;
        }
        non_empty(&n.carrier, &format!("{at}.carrier"))?;
        if !carriers.contains(n.carrier.as_str()) {
            return Err(field(
                &format!("{at}.carrier"),
                &format!(
                    "names carrier {:?}, which no route or sender knows",
                    n.carrier
                ),
            ));
        }
    }
    Ok(())
}

/// Refuse two clients with the same key hash: the ingress could not tell them apart.
pub(crate) fn distinct_keys(
    clients: &BTreeMap<String, ApiClientConfig>,
) -> Result<(), ConfigError> {
    let mut owners: BTreeMap<&str, &str> = BTreeMap::new();
    for (id, client) in clients {
        if let Some(other) = owners.insert(client.key_hash.as_str(), id.as_str()) {
            return Err(ConfigError::File(format!(
                "clients {other} and {id} have the same API key (api_key/api_key_sha256); \
                 each client needs its own"
            )));
        }
    }
    Ok(())
}

/// The sender's kind, endpoint and settings, checked by its kind in the registry: the error
/// names the field (`senders[2] (sender "x").settings.window: invalid type: …`).
fn sender_kind(s: &SenderEntry, at: &str) -> Result<(), ConfigError> {
    let settings = s.record_settings().map_err(|name| {
        field(
            &format!("{at}.settings.{name}"),
            "is not a string, number or boolean",
        )
    })?;
    switchyard_senders::check(&s.kind, &s.endpoint, &settings)
        .map_err(|e| ConfigError::File(format!("{at}.{e}")))
}

fn field(name: &str, problem: &str) -> ConfigError {
    ConfigError::File(format!("{name} {problem}"))
}

fn known_channel(name: &str, map: &str) -> Result<(), ConfigError> {
    name.parse::<Channel>().map(|_| ()).map_err(|_| {
        let known: Vec<&str> = Channel::ALL.iter().map(|c| c.as_str()).collect();
        field(
            &format!("{map}.{name}"),
            &format!(
                "names unknown channel {name:?} (one of {})",
                known.join(", ")
            ),
        )
    })
}

fn non_empty(value: &str, name: &str) -> Result<(), ConfigError> {
    if value.trim().is_empty() {
        return Err(field(name, "is empty"));
    }
    Ok(())
}

fn http_url(value: &str, name: &str) -> Result<(), ConfigError> {
    match url::Url::parse(value) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Ok(()),
        _ => Err(field(
            name,
            &format!("is {value:?}, not an absolute http(s) URL"),
        )),
    }
}
