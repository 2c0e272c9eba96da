//! A running `http` sender: POSTs each message to the endpoint and classifies the answer
//! (pure: [`classify_answer`], [`classify_error`]). Any 2xx is final — the message is taken
//! even when the answer cannot be read, so it is never sent twice; no answer in time is
//! ambiguous (never resent: the receipt, which echoes our reference, still reports it).

use std::time::Duration;

use futures::future::BoxFuture;
use switchyard_carrier_http::codes::{HttpAnswer, SUBMIT_REFUSED, http_answer};
use switchyard_carrier_http::protocol::{SubmitRequest, SubmitResponse};
use switchyard_carrier_http::reference::Reference;
use switchyard_schemas::{DispatchRequest, SenderConfig, now_millis};

use super::HttpSettings;
use crate::failure::{DispatchFailure, Sent};
use crate::registry::Carrier;
use crate::settings::KindError;

/// One HTTP sender.
#[derive(Debug, Clone)]
pub struct HttpCarrier {
    name: String,
    endpoint: String,
    receipt_url: String,
    client: reqwest::Client,
    window: usize,
    auth: Auth,
}

/// How submits authenticate.
#[derive(Clone)]
enum Auth {
    None,
    Bearer(String),
    Basic(String, String),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Auth::None => "none",
            Auth::Bearer(_) => "bearer",
            Auth::Basic(..) => "basic",
        })
    }
}

impl HttpCarrier {
    pub fn new(
        sender: &SenderConfig,
        receipt_url: String,
        settings: &HttpSettings,
    ) -> Result<Self, KindError> {
        let client = reqwest::Client::builder()
            .timeout(settings.timeout())
            .connect_timeout(settings.timeout().min(Duration::from_secs(5)))
            .pool_max_idle_per_host(settings.window)
            .build()
            .map_err(|e| KindError::Start {
                reason: format!("http client: {e}"),
                retriable: false,
            })?;
        Ok(HttpCarrier {
            name: sender.name.clone(),
            endpoint: sender.endpoint.clone(),
            receipt_url,
            client,
            window: settings.window,
            auth: match (&settings.api_token, &settings.password) {
                (Some(token), _) => Auth::Bearer(token.clone()),
                (None, Some(password)) => Auth::Basic(
                    settings.username.clone().unwrap_or_default(),
                    password.clone(),
                ),
                (None, None) => Auth::None,
            },
        })
    }

    async fn submit(&self, request: &DispatchRequest) -> Sent {
        let s = &request.message.submission;
        let body = SubmitRequest {
            reference: Reference::of(request, now_millis()).encode(),
            channel: s.channel.to_string(),
            to: s.to.clone(),
            from: s.from.clone(),
            text: s.text.clone(),
            subject: s.subject.clone(),
            receipt_url: self.receipt_url.clone(),
        };
        let post = self.client.post(&self.endpoint).json(&body);
        let post = match &self.auth {
            Auth::None => post,
            Auth::Bearer(token) => post.bearer_auth(token),
            Auth::Basic(user, password) => post.basic_auth(user, Some(password)),
        };
        let response = match post.send().await {
            Ok(response) => response,
            Err(e) => return classify_error(e.is_connect(), &e.to_string()),
        };
        let status = response.status().as_u16();
        let text = response.text().await;
        let sent = classify_answer(status, text.as_deref().map_err(ToString::to_string));
        tracing::debug!(stage = "dispatch", message_id = %request.message_id, sender = %self.name, status, ?sent, "http submit");
        sent
    }
}

/// What a submit that got no HTTP answer means: refused connections never reached the
/// carrier (another sender may take it); anything else may have (ambiguous).
pub fn classify_error(connect: bool, error: &str) -> Sent {
    if connect {
        Sent::failed(DispatchFailure::TryAnotherSender, error)
    } else {
        Sent::failed(DispatchFailure::Ambiguous, format!("no answer: {error}"))
    }
}

/// What an HTTP answer (`status`, its body or why it could not be read) means.
pub fn classify_answer(status: u16, body: Result<&str, String>) -> Sent {
    match http_answer(status) {
        HttpAnswer::Busy => Sent::failed(DispatchFailure::SlowDown, format!("HTTP {status}")),
        HttpAnswer::Unavailable => Sent::failed(
            DispatchFailure::TryAnotherSender,
            format!("HTTP {status}: {}", excerpt(body.as_deref().unwrap_or(""))),
        ),
        HttpAnswer::Refused => Sent::failed(
            DispatchFailure::NeverResend {
                code: SUBMIT_REFUSED,
            },
            format!("{status}: {}", excerpt(body.as_deref().unwrap_or(""))),
        ),
        // Taken: whatever the answer says, sending it again would deliver it twice.
        HttpAnswer::Accepted => match body {
            Ok(text) => match serde_json::from_str::<SubmitResponse>(text) {
                Ok(answer) if !answer.carrier_message_id.is_empty() => {
                    Sent::accepted(answer.carrier_message_id)
                }
                Ok(_) => unknown_id(format!("{status} without a carrier message id")),
                Err(e) => unknown_id(format!(
                    "{status} with an unreadable answer ({e}): {:?}",
                    excerpt(text)
                )),
            },
            Err(e) => unknown_id(format!(
                "{status} with an answer that could not be read: {e}"
            )),
        },
    }
}

fn unknown_id(why: String) -> Sent {
    Sent::Accepted {
        carrier_message_id: None,
        detail: Some(format!("carrier message id unknown: accepted {why}")),
    }
}

/// At most [`EXCERPT_CHARS`] characters of a carrier's answer, for logs and details.
fn excerpt(body: &str) -> String {
    let mut chars = body.chars();
    let head: String = chars.by_ref().take(EXCERPT_CHARS).collect();
    if chars.next().is_some() {
        format!("{head}…")
    } else {
        head
    }
}

const EXCERPT_CHARS: usize = 200;

impl Carrier for HttpCarrier {
    fn send<'a>(&'a self, request: &'a DispatchRequest) -> BoxFuture<'a, Sent> {
        Box::pin(self.submit(request))
    }

    fn window(&self) -> usize {
        self.window
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(sent: &Sent) -> Option<DispatchFailure> {
        match sent {
            Sent::Failed { failure, .. } => Some(*failure),
            Sent::Accepted { .. } => None,
        }
    }

    #[test]
    fn answers_map_to_classes() {
        assert_eq!(
            classify_answer(200, Ok(r#"{"carrier_message_id":"c-9"}"#)),
            Sent::accepted("c-9")
        );
        assert_eq!(
            failure(&classify_answer(429, Ok(""))),
            Some(DispatchFailure::SlowDown)
        );
        assert_eq!(
            failure(&classify_answer(503, Ok("down"))),
            Some(DispatchFailure::TryAnotherSender)
        );
        assert_eq!(
            failure(&classify_answer(400, Ok("bad number"))),
            Some(DispatchFailure::NeverResend {
                code: SUBMIT_REFUSED
            })
        );
        assert_eq!(
            failure(&classify_error(true, "connection refused")),
            Some(DispatchFailure::TryAnotherSender)
        );
        assert_eq!(
            failure(&classify_error(false, "timed out")),
            Some(DispatchFailure::Ambiguous)
        );
    }

    #[test]
    fn a_2xx_is_taken_whatever_its_body() {
        for body in [
            Ok("<html>garbage</html>"),
            Ok(r#"{"carrier_message_id":""}"#),
        ] {
            match classify_answer(202, body) {
                Sent::Accepted {
                    carrier_message_id: None,
                    detail: Some(detail),
                } => assert!(detail.starts_with("carrier message id unknown"), "{detail}"),
                other => panic!("{other:?}"),
            }
        }
        assert!(matches!(
            classify_answer(200, Err("reset".into())),
            Sent::Accepted {
                carrier_message_id: None,
                ..
            }
        ));
    }
}
