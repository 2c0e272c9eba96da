//! One webhook POST: the signed JSON body of a final report to a report URL, and how it ended.
//! No redirect is followed (a redirect is a failure), the answer's body is never read, and a
//! call takes at most the timeout (10 s by default).

use std::time::Duration;

use switchyard_schemas::{FinalReport, now_millis};

use crate::signature::sign;
use crate::webhook::WebhookBody;

/// Header: stable id of the report (receivers deduplicate with it).
pub const EVENT_ID_HEADER: &str = "X-Switchyard-Event-Id";
/// Header: the signature.
pub const SIGNATURE_HEADER: &str = "X-Switchyard-Signature";
/// Header: which delivery attempt this is (1 = the first, 11 = the last retry).
pub const ATTEMPT_HEADER: &str = "X-Switchyard-Attempt";

/// How long one webhook call may take.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempted {
    /// When the attempt ended (ms).
    pub at: i64,
    /// The receiver's status, if it answered.
    pub http_status: Option<u16>,
    /// Why it failed; `None` = delivered (any 2xx).
    pub failure: Option<String>,
}

impl Attempted {
    pub fn delivered(&self) -> bool {
        self.failure.is_none()
    }
}

/// Sends webhooks. Cheap to clone (one connection pool).
#[derive(Debug, Clone)]
pub struct Deliverer {
    client: reqwest::Client,
}

impl Deliverer {
    pub fn new(timeout: Duration) -> Self {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Deliverer { client }
    }

    /// POST `report` to `url`, signed with `secret` if there is one, as attempt `attempt`.
    pub async fn send(
        &self,
        report: &FinalReport,
        url: &str,
        secret: Option<&str>,
        attempt: i32,
    ) -> Attempted {
        let body = match serde_json::to_vec(&WebhookBody::from(report)) {
            Ok(body) => body,
            Err(e) => {
                return Attempted {
                    at: now_millis(),
                    http_status: None,
                    failure: Some(format!("body: {e}")),
                };
            }
        };
        let mut request = self
            .client
            .post(url)
            .header("Content-Type", "application/json")
            .header(EVENT_ID_HEADER, &report.event_id)
            .header(ATTEMPT_HEADER, attempt.to_string());
        if let Some(secret) = secret {
            request = request.header(SIGNATURE_HEADER, sign(secret, now_millis() / 1000, &body));
        }
        let result = request.body(body).send().await;
        let at = now_millis();
        match result {
            Ok(response) if response.status().is_success() => Attempted {
                at,
                http_status: Some(response.status().as_u16()),
                failure: None,
            },
            Ok(response) => Attempted {
                at,
                http_status: Some(response.status().as_u16()),
                failure: Some(format!("HTTP {}", response.status())),
            },
            Err(e) if e.is_timeout() => Attempted {
                at,
                http_status: None,
                failure: Some("timeout".into()),
            },
            Err(e) => Attempted {
                at,
                http_status: None,
                failure: Some(format!("transport: {e}")),
            },
        }
    }
}
