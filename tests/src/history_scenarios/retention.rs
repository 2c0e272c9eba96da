//! Retention scenarios: messages past their customer's retention leave every query; each
//! customer's days come from its config (`history_retention_days`), the rest get the default.

use std::time::Duration;

use anyhow::ensure;
use switchyard_history::{CallbackState, Retention};
use switchyard_runtime::{Table, names};
use switchyard_schemas::CustomerConfig;

use super::events::{callback_event, final_event};
use super::stores::TestHistory;

/// A customer's config with its own history retention (or none).
fn customer(id: &str, history_retention_days: Option<i32>) -> (String, CustomerConfig) {
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
        history_retention_days,
    };
    (id.into(), config)
}

/// A store whose "days" last three seconds (long enough to see a message before it expires on
/// a loaded machine), following a customers table where `acme` keeps 1 day and `beta` 30;
/// `gamma` has no setting and gets the global default, 30.
pub fn short_retention() -> Retention {
    let customers = Table::from_entries(
        names::CONFIG_CUSTOMERS,
        [
            customer("acme", Some(1)),
            customer("beta", Some(30)),
            customer("gamma", None),
        ],
    );
    Retention::new(Some(30))
        .with_day(Duration::from_secs(3))
        .following(customers)
}

/// With `short_retention`: once a customer's retention (from its config) has passed its
/// messages leave every query; another customer's stay, and so do those of a customer on the
/// default.
pub async fn messages_past_their_customers_retention_leave_every_query(
    history: &TestHistory,
) -> anyhow::Result<()> {
    let store = &history.store;
    let now = switchyard_schemas::now_millis();
    store
        .record(&final_event("old", "acme", None, now, "failed"))
        .await?;
    store
        .record(&final_event("kept", "beta", None, now, "failed"))
        .await?;
    store
        .record(&final_event("default", "gamma", None, now, "failed"))
        .await?;
    store
        .record(&callback_event("old", 1, CallbackState::Retrying))
        .await?;
    ensure!(
        store.message("old").await?.is_some(),
        "kept until its retention passes"
    );
    ensure!(
        store
            .undelivered("acme", "acme-web", None, 10)
            .await?
            .reports
            .len()
            == 1
    );
    // CQL expires by whole seconds: a TTL of 3 s ends within 4 s of the write.
    history.let_pass(Duration::from_millis(4_500)).await?;
    ensure!(store.message("old").await?.is_none(), "acme keeps 1 day");
    ensure!(
        store
            .undelivered("acme", "acme-web", None, 10)
            .await?
            .reports
            .is_empty()
    );
    ensure!(
        store
            .failure_summary("acme", now - 1, now + 1)
            .await?
            .is_empty()
    );
    ensure!(!store.ackable("acme", "acme-web", "old").await?);
    let kept = store
        .message("kept")
        .await?
        .ok_or_else(|| anyhow::anyhow!("beta keeps 30"))?;
    ensure!(kept.events.len() == 1, "{kept:?}");
    ensure!(store.failure_summary("beta", now - 1, now + 1).await?.len() == 1);
    ensure!(
        store.message("default").await?.is_some(),
        "gamma has the default, 30"
    );
    Ok(())
}
