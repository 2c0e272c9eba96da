//! The callback stage: each final report is POSTed as JSON to its client's report URL, signed.
//! Any 2xx within 10 s is success. A failure is kept, not lost: it goes to `callbacks.retry.1`
//! with the time it is due (the retry tiers run it later).

use std::time::Duration;

use futures::future::BoxFuture;
use serde::Serialize;
use switchyard_runtime::{AsyncProcessor, ConfigTables, Invalid, Origin, Output, StageError};
use switchyard_schemas::{CallbackAttempt, FinalReport, now_millis};
use switchyard_topics::{callback_retry_delay_minutes, callback_retry_topic};

use crate::signature::sign;

/// Header: stable id of the report (receivers deduplicate with it).
pub const EVENT_ID_HEADER: &str = "X-Switchyard-Event-Id";
/// Header: the signature.
pub const SIGNATURE_HEADER: &str = "X-Switchyard-Signature";

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
        }
    }
}

/// The callback stage.
#[derive(Debug, Clone)]
pub struct Callback {
    pub tables: ConfigTables,
    pub client: reqwest::Client,
    /// Length of the retry schedule's "minute" (tests shrink it).
    pub minute: Duration,
}

impl Callback {
    pub fn new(tables: ConfigTables, minute: Duration) -> Self {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        Callback {
            tables,
            client,
            minute,
        }
    }

    async fn deliver(&self, report: FinalReport) -> Result<Vec<Output>, StageError> {
        // Only a client of the report's own customer may receive it: a client id naming
        // another customer's client is ignored (that customer's own client gets it instead).
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
        let Some(client) = self.tables.report_client(&report.customer_id, own_client) else {
            tracing::debug!(stage = "callback", message_id = %report.message_id, "no report URL; report stays pullable");
            return Ok(Vec::new());
        };
        let Some(url) = client.report_url.clone() else {
            return Ok(Vec::new());
        };
        let body = serde_json::to_vec(&WebhookBody::from(&report))
            .map_err(|e| StageError::Invalid(Invalid::new(e.to_string())))?;
        let now = now_millis();
        let mut request = self
            .client
            .post(&url)
            .header("Content-Type", "application/json")
            .header(EVENT_ID_HEADER, &report.event_id)
            .body(body.clone());
        if let Some(secret) = &client.signing_secret {
            request = request.header(SIGNATURE_HEADER, sign(secret, now / 1000, &body));
        }
        let failure = match request.send().await {
            Ok(response) if response.status().is_success() => {
                tracing::debug!(stage = "callback", message_id = %report.message_id, "delivered");
                return Ok(Vec::new());
            }
            Ok(response) => format!("HTTP {}", response.status()),
            Err(e) => format!("transport: {e}"),
        };
        tracing::info!(stage = "callback", message_id = %report.message_id, %failure, "callback failed; queued for retry 1");
        Ok(vec![first_retry(report, url, failure, now, self.minute)])
    }
}

/// The record that schedules the first retry of a failed callback.
pub fn first_retry(
    report: FinalReport,
    url: String,
    failure: String,
    now: i64,
    minute: Duration,
) -> Output {
    let delay = minute.as_millis() as i64 * i64::from(callback_retry_delay_minutes(1));
    let key = report.message_id.clone();
    Output::new(
        callback_retry_topic(1),
        key,
        CallbackAttempt {
            report,
            report_url: url,
            retry: 1,
            due_at: now + delay,
            last_failure: failure,
            first_failed_at: now,
            failed_at: now,
        },
    )
}

impl AsyncProcessor for Callback {
    type Input = FinalReport;

    fn process<'a>(
        &'a self,
        input: FinalReport,
        _origin: Origin<'a>,
    ) -> BoxFuture<'a, Result<Vec<Output>, StageError>> {
        Box::pin(self.deliver(input))
    }

    fn concurrency(&self) -> usize {
        64
    }
}
