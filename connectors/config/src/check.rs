//! Checks a config file for nonsense before anything is written: empty ids, dangling group
//! and carrier names, negative ratios, URLs that are not absolute http(s), shared API keys.

use std::collections::{BTreeMap, BTreeSet};

use switchyard_schemas::ApiClientConfig;

use crate::ConfigError;
use crate::file::ConfigFile;

/// Every field-level check that needs the whole file; the first problem found, naming its
/// field.
pub(crate) fn check(file: &ConfigFile) -> Result<(), ConfigError> {
    for (i, c) in file.customers.iter().enumerate() {
        non_empty(&c.id, &format!("customers[{i}].id"))?;
    }
    for (i, c) in file.clients.iter().enumerate() {
        non_empty(&c.id, &format!("clients[{i}].id"))?;
        non_empty(&c.customer, &format!("clients[{i}].customer"))?;
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
        http_url(&s.endpoint, &format!("{at}.endpoint"))?;
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

fn field(name: &str, problem: &str) -> ConfigError {
    ConfigError::File(format!("{name} {problem}"))
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
