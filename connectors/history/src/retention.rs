//! How long the history keeps a customer's messages: a default and per-customer days (none =
//! forever), set directly or followed live from the customers' config
//! (`history_retention_days`). CQL writes carry it as a TTL; SQLite deletes what is older in
//! `purge_expired`. The length of a "day" is a setting so tests expire data in seconds.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use switchyard_runtime::Table;
use switchyard_schemas::CustomerConfig;

/// Milliseconds in a day.
pub const DAY_MS: i64 = 86_400_000;

/// Retention per customer. Cheap to clone; clones share the per-customer settings.
#[derive(Debug, Clone, Default)]
pub struct Retention {
    default_days: Option<u32>,
    customers: Arc<RwLock<HashMap<String, u32>>>,
    config: Option<Table<String, CustomerConfig>>,
    day: Option<Duration>,
}

impl Retention {
    /// Keep messages of customers without a setting `default_days` (none: forever).
    pub fn new(default_days: Option<u32>) -> Self {
        Retention {
            default_days,
            customers: Arc::default(),
            config: None,
            day: None,
        }
    }

    /// The same, following the customers table: a customer's `history_retention_days` applies
    /// from the moment the table has it (a setting made with `set_customer` still wins; a
    /// customer without one, or with a non-positive one, gets the default).
    pub fn following(mut self, customers: Table<String, CustomerConfig>) -> Self {
        self.config = Some(customers);
        self
    }

    /// The same with days of `day` (tests: a second), at least a second.
    pub fn with_day(mut self, day: Duration) -> Self {
        self.day = Some(day.max(Duration::from_secs(1)));
        self
    }

    fn day_ms(&self) -> i64 {
        self.day
            .map_or(DAY_MS, |d| i64::try_from(d.as_millis()).unwrap_or(DAY_MS))
    }

    /// The oldest time (ms) a message of that customer may have at `now` (none: forever).
    pub fn cutoff(&self, customer_id: Option<&str>, now: i64) -> Option<i64> {
        self.days_for(customer_id)
            .map(|days| now.saturating_sub(i64::from(days).saturating_mul(self.day_ms())))
    }

    /// Set (or with `None` clear) a customer's retention.
    pub fn set_customer(&self, customer_id: &str, days: Option<u32>) {
        let mut customers = self
            .customers
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match days {
            Some(days) => customers.insert(customer_id.to_string(), days),
            None => customers.remove(customer_id),
        };
    }

    /// Days a customer's messages are kept (an unknown customer: the default).
    pub fn days_for(&self, customer_id: Option<&str>) -> Option<u32> {
        let Some(customer_id) = customer_id else {
            return self.default_days;
        };
        let set = self
            .customers
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(customer_id)
            .copied();
        set.or_else(|| self.configured(customer_id))
            .or(self.default_days)
    }

    /// A customer's `history_retention_days` in the followed table, if positive.
    fn configured(&self, customer_id: &str) -> Option<u32> {
        self.config
            .as_ref()?
            .get(&customer_id.to_string())?
            .history_retention_days
            .and_then(|days| u32::try_from(days).ok())
            .filter(|days| *days > 0)
    }

    /// The TTL of a write for that customer, in seconds (0: no expiry, as CQL means it).
    pub fn ttl_seconds(&self, customer_id: Option<&str>) -> i32 {
        self.days_for(customer_id).map_or(0, |days| {
            let seconds = i64::from(days).saturating_mul(self.day_ms()) / 1000;
            i32::try_from(seconds.max(1)).unwrap_or(i32::MAX)
        })
    }

    /// The customers set with `set_customer`, and the default.
    pub fn settings(&self) -> (Option<u32>, Vec<(String, u32)>) {
        let customers = self
            .customers
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        (
            self.default_days,
            customers.iter().map(|(c, d)| (c.clone(), *d)).collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_customer_setting_overrides_the_default() {
        let retention = Retention::new(Some(30));
        retention.set_customer("acme", Some(7));
        assert_eq!(retention.days_for(Some("acme")), Some(7));
        assert_eq!(retention.days_for(Some("beta")), Some(30));
        assert_eq!(retention.days_for(None), Some(30));
        assert_eq!(retention.ttl_seconds(Some("acme")), 7 * 86_400);
        retention.set_customer("acme", None);
        assert_eq!(retention.days_for(Some("acme")), Some(30));
        assert_eq!(Retention::default().ttl_seconds(Some("acme")), 0);
        assert_eq!(
            retention.cutoff(Some("acme"), 100 * DAY_MS),
            Some(70 * DAY_MS)
        );
        assert_eq!(Retention::default().cutoff(Some("acme"), 5), None);
        let fast = Retention::new(Some(3)).with_day(Duration::from_secs(1));
        assert_eq!(fast.ttl_seconds(None), 3);
        assert_eq!(fast.cutoff(None, 10_000), Some(7_000));
    }

    fn customer(id: &str, days: Option<i32>) -> (String, CustomerConfig) {
        let config = CustomerConfig {
            customer_id: id.into(),
            name: id.into(),
            enabled: true,
            channels: Vec::new(),
            bill_codes: Vec::new(),
            tps_limits: Default::default(),
            prepaid: false,
            night_ads: Default::default(),
            auto_lms_upgrade: false,
            prices: Default::default(),
            dedup_window_hours: 24,
            history_retention_days: days,
        };
        (id.into(), config)
    }

    #[test]
    fn the_customers_config_sets_their_days_and_the_rest_get_the_default() {
        let table = Table::from_entries(
            "config.customers",
            [
                customer("acme", Some(1)),
                customer("beta", Some(30)),
                customer("gamma", None),
                customer("bad", Some(0)),
            ],
        );
        let retention = Retention::new(Some(90)).following(table);
        assert_eq!(retention.days_for(Some("acme")), Some(1));
        assert_eq!(retention.days_for(Some("beta")), Some(30));
        assert_eq!(retention.days_for(Some("gamma")), Some(90));
        assert_eq!(retention.days_for(Some("bad")), Some(90));
        assert_eq!(retention.days_for(Some("unknown")), Some(90));
        assert_eq!(retention.days_for(None), Some(90));
        assert_eq!(retention.ttl_seconds(Some("acme")), 86_400);
        retention.set_customer("acme", Some(7));
        assert_eq!(retention.days_for(Some("acme")), Some(7), "set wins");
        let forever = Retention::default().following(Table::from_entries(
            "config.customers",
            [customer("acme", Some(2))],
        ));
        assert_eq!(forever.days_for(Some("acme")), Some(2));
        assert_eq!(forever.ttl_seconds(Some("beta")), 0);
    }
}
