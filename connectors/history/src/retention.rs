//! How long the history keeps a customer's messages: a default and per-customer days (none =
//! forever). CQL writes carry it as a TTL; SQLite deletes what is older in `purge_expired`.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// Milliseconds in a day.
pub const DAY_MS: i64 = 86_400_000;

/// Retention per customer. Cheap to clone; clones share the per-customer settings.
#[derive(Debug, Clone, Default)]
pub struct Retention {
    default_days: Option<u32>,
    customers: Arc<RwLock<HashMap<String, u32>>>,
}

impl Retention {
    /// Keep messages of customers without a setting `default_days` (none: forever).
    pub fn new(default_days: Option<u32>) -> Self {
        Retention {
            default_days,
            customers: Arc::default(),
        }
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
        let customers = self
            .customers
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        customer_id
            .and_then(|c| customers.get(c).copied())
            .or(self.default_days)
    }

    /// The TTL of a write for that customer, in seconds (0: no expiry, as CQL means it).
    pub fn ttl_seconds(&self, customer_id: Option<&str>) -> i32 {
        self.days_for(customer_id)
            .map_or(0, |days| i32::try_from(u64::from(days) * 86_400).unwrap_or(i32::MAX))
    }

    /// The customers with their own setting, and the default.
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
    }
}
