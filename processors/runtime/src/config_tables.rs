//! The config topics as live tables, with the lookups every stage shares.

use std::time::Duration;

use switchyard_schemas::{
    ApiClientConfig, BillCode, Channel, ContentPolicy, CustomerConfig, NumberingEntry,
    NumberingKind, RouteRule, SenderConfig,
};
use tokio_util::sync::CancellationToken;

use crate::{Runtime, RuntimeError, Table};
use switchyard_topics::names;

/// Key of a route rule in `config.routes`: `<customer id or *>/<channel>`.
pub fn route_key(customer_id: &str, channel: Channel) -> String {
    format!("{customer_id}/{channel}")
}

/// A Korean number in E.164 form as the national number: `+821012345678` → `01012345678`
/// (the country code replaces the trunk prefix 0). Any other number is returned as it is.
pub fn national_number(number: &str) -> std::borrow::Cow<'_, str> {
    match number.strip_prefix("+82") {
        Some(rest) if !rest.is_empty() && !rest.starts_with('0') => format!("0{rest}").into(),
        Some(rest) if !rest.is_empty() => rest.to_string().into(),
        _ => number.into(),
    }
}

/// Key of a numbering entry in `config.numbering`: `<kind>:<number>`.
pub fn numbering_key(kind: NumberingKind, number: &str) -> String {
    let kind = match kind {
        NumberingKind::Prefix => "prefix",
        NumberingKind::Ported => "ported",
    };
    format!("{kind}:{number}")
}

/// Key of a bill code in `config.bill_codes`: `<customer id>/<code>`.
pub fn bill_code_key(customer_id: &str, code: &str) -> String {
    format!("{customer_id}/{code}")
}

/// Every config table.
#[derive(Debug, Clone)]
pub struct ConfigTables {
    pub customers: Table<String, CustomerConfig>,
    pub clients: Table<String, ApiClientConfig>,
    pub senders: Table<String, SenderConfig>,
    pub routes: Table<String, RouteRule>,
    pub numbering: Table<String, NumberingEntry>,
    /// Content policies by policy id (`*` for the global one, else a customer id).
    pub policy: Table<String, ContentPolicy>,
    /// Bill codes by `<customer id>/<code>`.
    pub bill_codes: Table<String, BillCode>,
}

impl ConfigTables {
    /// Follow every config topic; returns once each was read to its end.
    pub async fn start(
        runtime: &Runtime,
        shutdown: CancellationToken,
    ) -> Result<Self, RuntimeError> {
        let tables = ConfigTables {
            customers: Table::start(runtime, names::CONFIG_CUSTOMERS, shutdown.clone()).await?,
            clients: Table::start(runtime, names::CONFIG_CLIENTS, shutdown.clone()).await?,
            senders: Table::start(runtime, names::CONFIG_SENDERS, shutdown.clone()).await?,
            routes: Table::start(runtime, names::CONFIG_ROUTES, shutdown.clone()).await?,
            numbering: Table::start(runtime, names::CONFIG_NUMBERING, shutdown.clone()).await?,
            policy: Table::start(runtime, names::CONFIG_POLICY, shutdown.clone()).await?,
            bill_codes: Table::start(runtime, names::CONFIG_BILL_CODES, shutdown).await?,
        };
        let wait = Duration::from_secs(60);
        tables.customers.wait_ready(wait).await?;
        tables.clients.wait_ready(wait).await?;
        tables.senders.wait_ready(wait).await?;
        tables.routes.wait_ready(wait).await?;
        tables.numbering.wait_ready(wait).await?;
        tables.policy.wait_ready(wait).await?;
        tables.bill_codes.wait_ready(wait).await?;
        Ok(tables)
    }

    /// Tables over fixed entries, for unit tests of stage logic.
    pub fn fixed(
        customers: Vec<CustomerConfig>,
        clients: Vec<ApiClientConfig>,
        senders: Vec<SenderConfig>,
        routes: Vec<RouteRule>,
        numbering: Vec<NumberingEntry>,
    ) -> Self {
        ConfigTables {
            customers: Table::from_entries(
                names::CONFIG_CUSTOMERS,
                customers.into_iter().map(|c| (c.customer_id.clone(), c)),
            ),
            clients: Table::from_entries(
                names::CONFIG_CLIENTS,
                clients.into_iter().map(|c| (c.client_id.clone(), c)),
            ),
            senders: Table::from_entries(
                names::CONFIG_SENDERS,
                senders.into_iter().map(|s| (s.name.clone(), s)),
            ),
            routes: Table::from_entries(
                names::CONFIG_ROUTES,
                routes
                    .into_iter()
                    .map(|r| (route_key(&r.customer_id, r.channel), r)),
            ),
            numbering: Table::from_entries(
                names::CONFIG_NUMBERING,
                numbering
                    .into_iter()
                    .map(|n| (numbering_key(n.kind, &n.number), n)),
            ),
            policy: Table::from_entries(names::CONFIG_POLICY, []),
            bill_codes: Table::from_entries(names::CONFIG_BILL_CODES, []),
        }
    }

    /// The same tables with these content policies and bill codes (unit tests).
    pub fn with_policy(mut self, policies: Vec<ContentPolicy>, bill_codes: Vec<BillCode>) -> Self {
        self.policy = Table::from_entries(
            names::CONFIG_POLICY,
            policies.into_iter().map(|p| (p.policy_id.clone(), p)),
        );
        self.bill_codes = Table::from_entries(
            names::CONFIG_BILL_CODES,
            bill_codes
                .into_iter()
                .map(|b| (bill_code_key(&b.customer_id, &b.code), b)),
        );
        self
    }

    /// The rule for a customer's channel, else the default (`*`) rule.
    pub fn route_rule(&self, customer_id: &str, channel: Channel) -> Option<RouteRule> {
        self.routes
            .get(&route_key(customer_id, channel))
            .or_else(|| self.routes.get(&route_key("*", channel)))
    }

    /// The carrier serving a number: a ported-number entry first, else the longest prefix. A
    /// Korean number in E.164 form (`+8210…`) is looked up as the national number (`010…`)
    /// the table holds.
    pub fn carrier_of(&self, number: &str) -> Option<String> {
        let national = national_number(number);
        let number = national.as_ref();
        if let Some(ported) = self
            .numbering
            .get(&numbering_key(NumberingKind::Ported, number))
        {
            return Some(ported.carrier);
        }
        (1..=number.len())
            .rev()
            .filter_map(|len| number.get(..len))
            .find_map(|prefix| {
                self.numbering
                    .get(&numbering_key(NumberingKind::Prefix, prefix))
            })
            .map(|entry| entry.carrier)
    }

    /// The API client with this key hash, if enabled.
    pub fn client_by_key_hash(&self, key_hash: &str) -> Option<ApiClientConfig> {
        self.clients
            .values_where(|c| c.enabled && c.key_hash.eq_ignore_ascii_case(key_hash))
            .into_iter()
            .next()
    }

    /// Where a customer's reports go when the message names no client: the customer's first
    /// client (by id) that has a report URL.
    pub fn report_client(
        &self,
        customer_id: &str,
        client_id: Option<&str>,
    ) -> Option<ApiClientConfig> {
        if let Some(client) = client_id.and_then(|id| self.clients.get(&id.to_string())) {
            return Some(client);
        }
        self.clients
            .values_where(|c| c.customer_id == customer_id && c.report_url.is_some())
            .into_iter()
            .min_by(|a, b| a.client_id.cmp(&b.client_id))
    }
}
