//! The HTTP sender: consumes `sender.<name>`, submits each message to the sender's endpoint,
//! records the outcome in `messages.dispatched`. A refusal (4xx) fails the message with a
//! report; an outage (5xx, timeout, refused connection) is retried — the queue waits for the
//! carrier rather than failing messages it could still deliver. Any 2xx is final: the message is
//! submitted even when the answer cannot be read, so it is never sent twice.

use std::time::Duration;

use futures::future::BoxFuture;
use switchyard_runtime::{AsyncProcessor, Origin, Output, StageError};
use switchyard_schemas::{
    DeliveryReport, DispatchOutcome, DispatchRequest, DispatchStatus, FailureClass, ResultStatus,
    SenderConfig, event_id, now_millis,
};

use crate::codes::SUBMIT_REFUSED;
use crate::protocol::{SubmitRequest, SubmitResponse};
use crate::reference::Reference;

use switchyard_runtime::names::{DISPATCHED, REPORTS};

/// One HTTP sender.
#[derive(Debug, Clone)]
pub struct HttpSender {
    pub sender: SenderConfig,
    pub receipt_url: String,
    pub client: reqwest::Client,
    /// Requests in flight at once.
    pub window: usize,
}

impl HttpSender {
    pub fn new(sender: SenderConfig, receipt_url: String) -> Self {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .pool_max_idle_per_host(64)
            .build()
            .unwrap_or_default();
        let window = sender
            .settings
            .get("window")
            .and_then(|w| w.parse().ok())
            .unwrap_or(64);
        HttpSender {
            sender,
            receipt_url,
            client,
            window,
        }
    }

    async fn dispatch(&self, request: DispatchRequest) -> Result<Vec<Output>, StageError> {
        let submitted_at = now_millis();
        let s = &request.message.submission;
        let body = SubmitRequest {
            reference: Reference::of(&request, submitted_at).encode(),
            channel: s.channel.to_string(),
            to: s.to.clone(),
            from: s.from.clone(),
            text: s.text.clone(),
            subject: s.subject.clone(),
            receipt_url: self.receipt_url.clone(),
        };
        let answer = self
            .client
            .post(&self.sender.endpoint)
            .json(&body)
            .send()
            .await;
        let response = match answer {
            Ok(response) => response,
            Err(e) => {
                return Err(StageError::Unavailable(format!(
                    "sender {}: {e}",
                    self.sender.name
                )));
            }
        };
        let status = response.status();
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            return Err(StageError::Unavailable(format!(
                "sender {} answered {status}",
                self.sender.name
            )));
        }
        if !status.is_success() {
            let detail = response.text().await.unwrap_or_default();
            tracing::info!(stage = "dispatch", message_id = %request.message_id, sender = %self.sender.name, %status, "carrier refused");
            return Ok(refused(
                request,
                format!("{status}: {detail}"),
                now_millis(),
            ));
        }
        // From here on the carrier has accepted the message: whatever its answer says, sending
        // it again would deliver it twice. An answer without a readable carrier message id is
        // recorded as submitted with the id unknown (the receipt still matches on `reference`).
        let accepted = match response.text().await {
            Ok(text) => match serde_json::from_str::<SubmitResponse>(&text) {
                Ok(answer) if !answer.carrier_message_id.is_empty() => {
                    Ok(answer.carrier_message_id)
                }
                Ok(_) => Err(format!("{status} without a carrier message id")),
                Err(e) => Err(format!(
                    "{status} with an unreadable answer ({e}): {:?}",
                    excerpt(&text)
                )),
            },
            Err(e) => Err(format!(
                "{status} with an answer that could not be read: {e}"
            )),
        };
        match accepted {
            Ok(carrier_message_id) => {
                tracing::debug!(stage = "dispatch", message_id = %request.message_id, sender = %self.sender.name, "submitted");
                Ok(vec![submitted(request, carrier_message_id, now_millis())])
            }
            Err(why) => {
                tracing::warn!(stage = "dispatch", message_id = %request.message_id, sender = %self.sender.name, %why, "submitted; carrier message id unknown");
                Ok(vec![submitted_unknown(
                    request,
                    format!("carrier message id unknown: accepted {why}"),
                    now_millis(),
                )])
            }
        }
    }
}

/// At most [`EXCERPT_CHARS`] characters of a carrier's answer, for the logs.
fn excerpt(body: &str) -> String {
    let mut chars = body.chars();
    let head: String = chars.by_ref().take(EXCERPT_CHARS).collect();
    if chars.next().is_some() {
        format!("{head}…")
    } else {
        head
    }
}

/// How much of an unreadable answer the warning shows.
const EXCERPT_CHARS: usize = 200;

/// The `messages.dispatched` record of what a sender did with `request`.
fn outcome(request: DispatchRequest, result: Result<Submitted, String>, now: i64) -> Output {
    let key = request.message_id.clone();
    let (status, failure_class, carrier_message_id, detail) = match result {
        Ok(Submitted::Known(id)) => (DispatchStatus::Submitted, None, Some(id), None),
        Ok(Submitted::Unknown(detail)) => (DispatchStatus::Submitted, None, None, Some(detail)),
        Err(detail) => (
            DispatchStatus::Failed,
            Some(FailureClass::Permanent),
            None,
            Some(detail),
        ),
    };
    Output::new(
        DISPATCHED,
        key,
        DispatchOutcome {
            message_id: request.message_id.clone(),
            attempt: request.attempt,
            carrier: request.carrier.clone(),
            sender_group: request.sender_group.clone(),
            sender: request.sender.clone(),
            status,
            failure_class,
            carrier_message_id,
            detail,
            request,
            dispatched_at: now,
        },
    )
}

/// What is known of an accepted submit.
enum Submitted {
    /// The carrier's id for the message.
    Known(String),
    /// The carrier accepted it without saying which id it gave it; why, for `detail`.
    Unknown(String),
}

/// The outcome record of an accepted submit.
pub fn submitted(request: DispatchRequest, carrier_message_id: String, now: i64) -> Output {
    outcome(request, Ok(Submitted::Known(carrier_message_id)), now)
}

/// The outcome record of a submit the carrier accepted (2xx) without a readable carrier
/// message id: submitted all the same, no carrier message id, `detail` says why.
pub fn submitted_unknown(request: DispatchRequest, detail: String, now: i64) -> Output {
    outcome(request, Ok(Submitted::Unknown(detail)), now)
}

/// The records of a submit the carrier refused for good: the outcome and a failed report.
pub fn refused(request: DispatchRequest, detail: String, now: i64) -> Vec<Output> {
    let s = &request.message.submission;
    let report = DeliveryReport {
        event_id: event_id(&[&request.message_id, &request.attempt.to_string(), "refused"]),
        message_id: request.message_id.clone(),
        customer_id: request.customer_id.clone(),
        client_id: s.client_id.clone(),
        client_message_id: s.client_message_id.clone(),
        channel: s.channel,
        to: s.to.clone(),
        carrier: request.carrier.clone(),
        sender: request.sender.clone(),
        carrier_message_id: None,
        status: ResultStatus::Failed,
        carrier_code: detail.clone(),
        result_code: SUBMIT_REFUSED.into(),
        result_text: "the carrier refused the message".into(),
        attempt: request.attempt,
        submitted_at: None,
        reported_at: now,
    };
    let key = request.message_id.clone();
    vec![
        Output::new(REPORTS, key, report),
        outcome(request, Err(detail), now),
    ]
}

impl AsyncProcessor for HttpSender {
    type Input = DispatchRequest;

    fn process<'a>(
        &'a self,
        input: DispatchRequest,
        _origin: Origin<'a>,
    ) -> BoxFuture<'a, Result<Vec<Output>, StageError>> {
        Box::pin(self.dispatch(input))
    }

    fn concurrency(&self) -> usize {
        self.window
    }
}
