//! `switchyard callbacks replay`: send a client's final reports of a time range again. The
//! reports are read from `reports.final` and written unchanged to `callbacks.replay`, which the
//! callback stage delivers like new ones: same body, same `X-Switchyard-Event-Id`, so receivers
//! deduplicate them; failures go through the retry tiers as usual.

use std::time::Duration;

use switchyard_runtime::names::{CALLBACK_REPLAY, FINAL};
use switchyard_runtime::{
    CancellationToken, ConfigTables, Output, PublishError, Runtime, RuntimeError, Table,
};
use switchyard_schemas::{ApiClientConfig, FinalReport};

/// Why a replay did not happen.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// No such client; a retry will not help.
    #[error("no client {0:?}")]
    UnknownClient(String),
    /// Reading the topics failed; a retry may help.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    Publish(#[from] PublishError),
}

/// The reports of `client` finished in [`from`, `to`) (ms): those naming it, and its
/// customer's reports that name no client. Oldest first.
pub fn select(
    reports: impl IntoIterator<Item = FinalReport>,
    client: &ApiClientConfig,
    from: i64,
    to: i64,
) -> Vec<FinalReport> {
    let mut chosen: Vec<FinalReport> = reports
        .into_iter()
        .filter(|r| r.customer_id == client.customer_id)
        .filter(|r| {
            r.client_id
                .as_ref()
                .is_none_or(|id| *id == client.client_id)
        })
        .filter(|r| r.done_at >= from && r.done_at < to)
        .collect();
    chosen.sort_by(|a, b| (a.done_at, &a.message_id).cmp(&(b.done_at, &b.message_id)));
    chosen
}

/// Replay `client_id`'s reports finished in [`from`, `to`); returns how many were queued.
pub async fn replay(
    runtime: &Runtime,
    client_id: &str,
    from: i64,
    to: i64,
) -> Result<usize, ReplayError> {
    let stop = CancellationToken::new();
    let tables = ConfigTables::start(runtime, stop.clone()).await;
    let reports = Table::<String, FinalReport>::start(runtime, FINAL, stop.clone()).await;
    let ready = match &reports {
        Ok(table) => table.wait_ready(Duration::from_secs(120)).await,
        Err(_) => Ok(()),
    };
    stop.cancel();
    let (tables, reports) = (tables?, reports?);
    ready?;
    let client = tables
        .clients
        .get(&client_id.to_string())
        .ok_or_else(|| ReplayError::UnknownClient(client_id.to_string()))?;
    let chosen = select(reports.snapshot().into_values(), &client, from, to);
    let outputs: Vec<Output> = chosen
        .iter()
        .map(|r| Output::new(CALLBACK_REPLAY, r.message_id.clone(), r.clone()))
        .collect();
    for chunk in outputs.chunks(1_000) {
        runtime.publish("replay", chunk).await?;
    }
    Ok(outputs.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_schemas::{Channel, ResultStatus};

    fn report(id: &str, customer: &str, client: Option<&str>, done_at: i64) -> FinalReport {
        FinalReport {
            event_id: format!("evt-{id}"),
            message_id: id.into(),
            customer_id: customer.into(),
            client_id: client.map(str::to_string),
            client_message_id: None,
            channel: Channel::Sms,
            to: "01012345678".into(),
            status: ResultStatus::Delivered,
            result_code: "0000".into(),
            result_text: "delivered".into(),
            carrier: None,
            sender: None,
            attempt: 1,
            submitted_at: None,
            done_at,
            trail: Vec::new(),
        }
    }

    #[test]
    fn a_replay_takes_the_clients_reports_of_the_range_only() {
        let client = ApiClientConfig {
            client_id: "acme-web".into(),
            customer_id: "acme".into(),
            key_hash: "00".into(),
            report_url: None,
            signing_secret: None,
            signing_secret_previous: None,
            enabled: true,
            rate_limit_per_second: None,
        };
        let reports = vec![
            report("in-late", "acme", Some("acme-web"), 150),
            report("in-early", "acme", None, 100),
            report("other-client", "acme", Some("acme-batch"), 120),
            report("other-customer", "beta", None, 120),
            report("before", "acme", Some("acme-web"), 99),
            report("at-end", "acme", Some("acme-web"), 200),
        ];
        let ids: Vec<String> = select(reports, &client, 100, 200)
            .into_iter()
            .map(|r| r.message_id)
            .collect();
        assert_eq!(ids, vec!["in-early", "in-late"]);
    }
}
