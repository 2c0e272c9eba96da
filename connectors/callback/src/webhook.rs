//! The callback stage: the first delivery of each final report (`reports.final`,
//! `callbacks.replay`) and its retries (`callbacks.retry.<n>`), each POSTing the signed report
//! to its client's report URL. Every attempt is recorded in `callbacks.results`; a failure
//! moves the report to its next tier (`attempt.rs`), whose records the runner holds until they
//! are due (`role.rs`).

use std::time::Duration;

use futures::future::BoxFuture;
use serde::Serialize;
use switchyard_runtime::{AsyncProcessor, ConfigTables, Origin, Output, StageError};
use switchyard_schemas::{ApiClientConfig, CallbackAttempt, FinalReport};

use crate::attempt::outputs;
use crate::deliver::{Deliverer, WebhookSettings};
use crate::input::CallbackInput;

/// The webhook body (public contract).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct WebhookBody {
    pub message_id: String,
    pub client_message_id: Option<String>,
    pub channel: String,
    pub to: String,
    pub status: String,
    pub result_code: String,
    pub result_text: String,
    pub carrier: Option<String>,
    pub sender: Option<String>,
    /// Milliseconds since the Unix epoch.
    pub submitted_at: Option<i64>,
    /// Milliseconds since the Unix epoch.
    pub done_at: i64,
    pub attempt: i32,
    /// The senders tried before the last one (failover), in order; empty when the first
    /// sender took the message.
    #[serde(default)]
    pub trail: Vec<WebhookHop>,
}

/// One sender a message was tried on (public contract).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct WebhookHop {
    pub attempt: i32,
    pub carrier: String,
    pub sender_group: String,
    pub sender: String,
    /// `sender_down`, `unusable`, … (null while it was in flight).
    pub outcome: Option<String>,
    /// The carrier's or the health table's words.
    pub reason: Option<String>,
    /// Milliseconds since the Unix epoch.
    pub at: i64,
}

impl From<&FinalReport> for WebhookBody {
    fn from(r: &FinalReport) -> Self {
        WebhookBody {
            message_id: r.message_id.clone(),
            client_message_id: r.client_message_id.clone(),
            channel: r.channel.to_string(),
            to: r.to.clone(),
            status: r.status.as_str().to_string(),
            result_code: r.result_code.clone(),
            result_text: r.result_text.clone(),
            carrier: r.carrier.clone(),
            sender: r.sender.clone(),
            submitted_at: r.submitted_at,
            done_at: r.done_at,
            attempt: r.attempt,
            trail: r
                .trail
                .iter()
                .map(|h| WebhookHop {
                    attempt: h.attempt,
                    carrier: h.carrier.clone(),
                    sender_group: h.sender_group.clone(),
                    sender: h.sender.clone(),
                    outcome: h.outcome.clone(),
                    reason: h.reason.clone(),
                    at: h.at,
                })
                .collect(),
        }
    }
}

/// The callback stage: first deliveries and retries alike.
#[derive(Debug, Clone)]
pub struct Callback {
    pub tables: ConfigTables,
    pub deliverer: Deliverer,
    /// Length of the retry schedule's "minute" (tests shrink it).
    pub minute: Duration,
}

impl Callback {
    pub fn new(
        tables: ConfigTables,
        minute: Duration,
        webhooks: WebhookSettings,
    ) -> Result<Self, reqwest::Error> {
        Ok(Callback {
            tables,
            deliverer: Deliverer::new(webhooks)?,
            minute,
        })
    }

    /// The client whose report URL gets `report`: only a client of the report's own customer
    /// (a client id naming another customer's client is ignored).
    fn client_of(&self, report: &FinalReport) -> Option<ApiClientConfig> {
        let own_client = report.client_id.as_deref().filter(|id| {
            let owner = self.tables.clients.get(&id.to_string());
            let own = owner
                .as_ref()
                .is_none_or(|c| c.customer_id == report.customer_id);
            if !own {
                tracing::warn!(stage = "callback", message_id = %report.message_id, client = %id, customer = %report.customer_id, "report names another customer's client; not using it");
            }
            own
        });
        self.tables.report_client(&report.customer_id, own_client)
    }

    async fn first(&self, report: FinalReport) -> Result<Vec<Output>, StageError> {
        let Some(client) = self.client_of(&report) else {
            tracing::debug!(stage = "callback", message_id = %report.message_id, "no report URL; report stays pullable");
            return Ok(Vec::new());
        };
        let Some(url) = client.report_url.clone() else {
            return Ok(Vec::new());
        };
        let attempted = self
            .deliverer
            .send(&report, &url, &secrets(Some(&client)), 1)
            .await;
        if let Some(failure) = &attempted.failure {
            tracing::info!(stage = "callback", message_id = %report.message_id, %failure, "callback failed; queued for retry 1");
        }
        Ok(outputs(&report, &url, 1, &attempted, None, self.minute))
    }

    async fn retry(&self, waiting: CallbackAttempt) -> Result<Vec<Output>, StageError> {
        let report = &waiting.report;
        // The client's current URL and secret (they may have changed since the failure); the
        // URL the report failed at if the client is gone.
        let client = self.client_of(report);
        let url = client
            .as_ref()
            .and_then(|c| c.report_url.clone())
            .unwrap_or_else(|| waiting.report_url.clone());
        let attempt = waiting.retry.max(1) as u32 + 1;
        let attempted = self
            .deliverer
            .send(report, &url, &secrets(client.as_ref()), attempt as i32)
            .await;
        if let Some(failure) = &attempted.failure {
            tracing::info!(stage = "callback", message_id = %report.message_id, retry = waiting.retry, %failure, "callback retry failed");
        }
        Ok(outputs(
            report,
            &url,
            attempt,
            &attempted,
            Some(waiting.first_failed_at),
            self.minute,
        ))
    }
}

/// The secrets a client's webhooks are signed with: the current one, then during a rotation
/// the previous one.
fn secrets(client: Option<&ApiClientConfig>) -> Vec<&str> {
    client
        .into_iter()
        .flat_map(|c| [&c.signing_secret, &c.signing_secret_previous])
        .filter_map(|s| s.as_deref())
        .collect()
}

impl AsyncProcessor for Callback {
    type Input = CallbackInput;

    fn process<'a>(
        &'a self,
        input: CallbackInput,
        _origin: Origin<'a>,
    ) -> BoxFuture<'a, Result<Vec<Output>, StageError>> {
        match input {
            CallbackInput::Report(report) => Box::pin(self.first(report)),
            CallbackInput::Retry(waiting) => Box::pin(self.retry(waiting)),
        }
    }

    fn concurrency(&self) -> usize {
        64
    }
}
