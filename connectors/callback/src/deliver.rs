//! One webhook POST: the signed JSON body of a final report to a report URL, and how it ended.
//! The URL must pass the webhook policy (`url_policy.rs`; its host is resolved and checked at
//! send time), no redirect is followed (a redirect is a failure), the answer's body is never
//! read, and a call takes at most the timeout (10 s by default).

use std::sync::Arc;
use std::time::Duration;

use switchyard_schemas::{FinalReport, now_millis};

use crate::endpoint_guard::{Admission, CallEnd, EndpointGuard, GuardSettings, endpoint_of};
use crate::guarded_dns::GuardedResolver;
use crate::signature::sign_all;
use crate::url_policy::WebhookPolicy;
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
    /// The failure will happen again however often it is retried (the policy refuses the
    /// URL): no retry tier, the report stays pullable.
    pub permanent: bool,
}

impl Attempted {
    pub fn delivered(&self) -> bool {
        self.failure.is_none()
    }
}

/// How webhooks are sent: where they may go, how long a call may take, and how endpoints are
/// kept from holding each other up.
#[derive(Debug, Clone, Default)]
pub struct WebhookSettings {
    pub policy: WebhookPolicy,
    /// `None`: `DEFAULT_TIMEOUT`.
    pub timeout: Option<Duration>,
    pub guard: GuardSettings,
}

/// Sends webhooks. Cheap to clone (one connection pool, one endpoint guard).
#[derive(Debug, Clone)]
pub struct Deliverer {
    client: reqwest::Client,
    policy: Arc<WebhookPolicy>,
    guard: Arc<std::sync::Mutex<EndpointGuard>>,
}

impl Deliverer {
    /// A deliverer; fails only if the HTTP client cannot be built (no TLS backend), never
    /// falling back to a client without the policy's resolver.
    pub fn new(settings: WebhookSettings) -> Result<Self, reqwest::Error> {
        let policy = Arc::new(settings.policy);
        let client = reqwest::Client::builder()
            .timeout(settings.timeout.unwrap_or(DEFAULT_TIMEOUT))
            .redirect(reqwest::redirect::Policy::none())
            // A proxy would resolve the webhook's host itself, past the policy's resolver.
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver::new(policy.clone())))
            .build()?;
        Ok(Deliverer {
            client,
            policy,
            guard: Arc::new(std::sync::Mutex::new(EndpointGuard::new(settings.guard))),
        })
    }

    fn guard(&self) -> std::sync::MutexGuard<'_, EndpointGuard> {
        self.guard
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// POST `report` to `url`, signed with each of `secrets` (none: unsigned), as attempt
    /// `attempt`.
    pub async fn send(
        &self,
        report: &FinalReport,
        url: &str,
        secrets: &[&str],
        attempt: i32,
    ) -> Attempted {
        let refused = |reason: String| Attempted {
            at: now_millis(),
            http_status: None,
            failure: Some(reason),
            permanent: true,
        };
        let parsed = match reqwest::Url::parse(url) {
            Ok(parsed) => parsed,
            Err(e) => return refused(format!("report URL {url:?}: {e}")),
        };
        if let Err(e) = self.policy.check_url(&parsed) {
            return refused(format!("refused by the webhook policy: {e}"));
        }
        let body = match serde_json::to_vec(&WebhookBody::from(report)) {
            Ok(body) => body,
            Err(e) => return refused(format!("body: {e}")),
        };
        let endpoint = endpoint_of(&parsed);
        let deferred = |reason: String| Attempted {
            at: now_millis(),
            http_status: None,
            failure: Some(reason),
            permanent: false,
        };
        let started = loop {
            let admission = self.guard().admit(&endpoint, now_millis());
            match admission {
                Admission::Go { started } => break started,
                Admission::Wait => tokio::time::sleep(Duration::from_millis(5)).await,
                Admission::Busy => {
                    return deferred(format!(
                        "not sent: {endpoint} is slow and has the most calls in flight it may have"
                    ));
                }
                Admission::Open { until } => {
                    return deferred(format!(
                        "not sent: {endpoint} timed out repeatedly (circuit open until {until})"
                    ));
                }
            }
        };
        let mut request = self
            .client
            .post(parsed)
            .header("Content-Type", "application/json")
            .header(EVENT_ID_HEADER, &report.event_id)
            .header(ATTEMPT_HEADER, attempt.to_string());
        if !secrets.is_empty() {
            request = request.header(
                SIGNATURE_HEADER,
                sign_all(secrets, now_millis() / 1000, &body),
            );
        }
        let result = request.body(body).send().await;
        let at = now_millis();
        let end = match &result {
            Ok(_) => CallEnd::Answered,
            Err(e) if e.is_timeout() => CallEnd::TimedOut,
            Err(_) => CallEnd::Failed,
        };
        self.guard().end(&endpoint, started, end, at);
        match result {
            Ok(response) if response.status().is_success() => Attempted {
                at,
                http_status: Some(response.status().as_u16()),
                failure: None,
                permanent: false,
            },
            Ok(response) if response.status().is_redirection() => Attempted {
                at,
                http_status: Some(response.status().as_u16()),
                failure: Some(format!(
                    "HTTP {} (redirects are not followed)",
                    response.status()
                )),
                permanent: false,
            },
            Ok(response) => Attempted {
                at,
                http_status: Some(response.status().as_u16()),
                failure: Some(format!("HTTP {}", response.status())),
                permanent: false,
            },
            Err(e) if e.is_timeout() => Attempted {
                at,
                http_status: None,
                failure: Some("timeout".into()),
                permanent: false,
            },
            Err(e) => {
                let reason = error_chain(&e);
                Attempted {
                    at,
                    http_status: None,
                    permanent: reason.contains("not allowed for webhooks"),
                    failure: Some(format!("transport: {reason}")),
                }
            }
        }
    }
}

/// An error and its sources, one after the other (the resolver's refusal is a source).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
