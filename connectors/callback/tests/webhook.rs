//! The callback stage against real local receivers: a signed POST that verifies, a failure
//! that is queued for retry 1 instead of being lost, and a retry read from its tier by the same
//! stage.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use switchyard_callback::signature::verify;
use switchyard_callback::{
    ATTEMPT_HEADER, Callback, EVENT_ID_HEADER, SIGNATURE_HEADER, WebhookBody, WebhookMode,
    WebhookPolicy, WebhookSettings,
};
use switchyard_runtime::{AsyncProcessor, ConfigTables, Origin};
use switchyard_schemas::{
    ApiClientConfig, CallbackAttempt, CallbackResult, Channel, FinalReport, ResultStatus,
    now_millis,
};

type Seen = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

/// A receiver on port 0 answering `status`; returns its URL and what it saw.
async fn receiver(status: StatusCode) -> (String, Seen) {
    let seen: Seen = Arc::default();
    let record = seen.clone();
    let app = Router::new().route(
        "/hook",
        post(move |headers: HeaderMap, body: Bytes| {
            let record = record.clone();
            async move {
                record.lock().expect("lock").push((headers, body));
                status
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

/// Loopback receivers need the dev webhook policy.
fn dev() -> WebhookSettings {
    WebhookSettings {
        policy: WebhookPolicy {
            mode: WebhookMode::Dev,
            allow: Vec::new(),
        },
        ..WebhookSettings::default()
    }
}

fn tables(url: &str) -> ConfigTables {
    let client = ApiClientConfig {
        client_id: "acme-web".into(),
        customer_id: "acme".into(),
        key_hash: "00".into(),
        report_url: Some(url.into()),
        signing_secret: Some("whsec".into()),
        signing_secret_previous: None,
        enabled: true,
        rate_limit_per_second: None,
    };
    ConfigTables::fixed(vec![], vec![client], vec![], vec![], vec![])
}

fn report() -> FinalReport {
    FinalReport {
        event_id: "evt-1".into(),
        message_id: "m-1".into(),
        customer_id: "acme".into(),
        client_id: None,
        client_message_id: Some("order-7".into()),
        channel: Channel::Sms,
        to: "01012345678".into(),
        status: ResultStatus::Delivered,
        result_code: "0000".into(),
        result_text: "delivered".into(),
        carrier: Some("skt".into()),
        sender: Some("skt-a".into()),
        attempt: 1,
        submitted_at: Some(1),
        done_at: 2,
        trail: Vec::new(),
    }
}

fn origin() -> Origin<'static> {
    Origin {
        topic: "reports.final",
        partition: 0,
        offset: 0,
        timestamp: None,
        key: None,
    }
}

#[tokio::test]
async fn a_delivered_webhook_is_signed_and_needs_nothing_more() {
    let (url, seen) = receiver(StatusCode::NO_CONTENT).await;
    let callback = Callback::new(tables(&url), Duration::from_secs(60), dev()).expect("a client");
    let outputs = callback
        .process(report().into(), origin())
        .await
        .expect("processed");
    assert_eq!(outputs.len(), 1, "a 2xx needs no retry, only its result");
    let result = outputs[0].value::<CallbackResult>().expect("a result");
    assert!(result.delivered);
    assert_eq!(result.http_status, Some(204));
    let seen = seen.lock().expect("lock");
    assert_eq!(seen.len(), 1);
    let (headers, body) = &seen[0];
    let signature = headers[SIGNATURE_HEADER].to_str().expect("text");
    assert!(
        verify(signature, "whsec", body, now_millis() / 1000, 60),
        "signature verifies"
    );
    assert_eq!(headers[EVENT_ID_HEADER], "evt-1");
    let parsed: WebhookBody = serde_json::from_slice(body).expect("json");
    assert_eq!(
        (parsed.status.as_str(), parsed.client_message_id.as_deref()),
        ("delivered", Some("order-7"))
    );
}

#[tokio::test]
async fn a_failed_webhook_is_queued_for_retry_one() {
    let (url, seen) = receiver(StatusCode::INTERNAL_SERVER_ERROR).await;
    let minute = Duration::from_millis(250);
    let callback = Callback::new(tables(&url), minute, dev()).expect("a client");
    let before = now_millis();
    let outputs = callback
        .process(report().into(), origin())
        .await
        .expect("processed");
    assert_eq!(seen.lock().expect("lock").len(), 1, "one attempt was made");
    assert_eq!(outputs.len(), 2, "its result and the retry");
    assert_eq!(outputs[1].topic, switchyard_topics::callback_retry_topic(1));
    assert_eq!(outputs[1].key, "m-1");
    let result = outputs[0].value::<CallbackResult>().expect("a result");
    assert_eq!((result.delivered, result.http_status), (false, Some(500)));
    let attempt = outputs[1].value::<CallbackAttempt>().expect("attempt");
    assert_eq!(attempt.retry, 1);
    assert!(
        attempt.last_failure.contains("500"),
        "{}",
        attempt.last_failure
    );
    assert_eq!(attempt.report, report());
    // Tier 1 waits 1² − 1 + 1 = 1 minute (here a 250 ms minute).
    assert!(attempt.due_at >= before + 250 && attempt.due_at <= now_millis() + 250);
}

#[tokio::test]
async fn a_report_read_from_a_retry_tier_is_its_next_attempt() {
    let (url, seen) = receiver(StatusCode::SERVICE_UNAVAILABLE).await;
    let minute = Duration::from_millis(250);
    let callback = Callback::new(tables(&url), minute, dev()).expect("a client");
    let waiting = CallbackAttempt {
        report: report(),
        report_url: "http://127.0.0.1:9/gone".into(),
        retry: 3,
        due_at: 0,
        last_failure: "HTTP 503".into(),
        first_failed_at: -7,
        failed_at: 0,
    };
    let before = now_millis();
    let outputs = callback
        .process(waiting.into(), origin())
        .await
        .expect("processed");
    let seen = seen.lock().expect("lock");
    assert_eq!(seen.len(), 1, "sent to the client's current URL");
    assert_eq!(seen[0].0[ATTEMPT_HEADER], "4", "retry 3 is attempt 4");
    let result = outputs[0].value::<CallbackResult>().expect("a result");
    assert_eq!((result.attempt, result.http_status), (4, Some(503)));
    assert_eq!(outputs[1].topic, switchyard_topics::callback_retry_topic(4));
    let next = outputs[1].value::<CallbackAttempt>().expect("attempt");
    assert_eq!((next.retry, next.first_failed_at), (4, -7));
    // Tier 4 waits 4² − 4 + 1 = 13 minutes.
    assert!(next.due_at >= before + 13 * 250 && next.due_at <= now_millis() + 13 * 250);
}

#[tokio::test]
async fn an_unreachable_receiver_is_a_failure_too() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    drop(listener);
    let callback = Callback::new(tables(&url), Duration::from_secs(60), dev()).expect("a client");
    let outputs = callback
        .process(report().into(), origin())
        .await
        .expect("processed");
    let attempt = outputs[1].value::<CallbackAttempt>().expect("attempt");
    assert!(
        attempt.last_failure.starts_with("transport"),
        "{}",
        attempt.last_failure
    );
}

#[tokio::test]
async fn a_report_naming_another_customers_client_goes_to_its_own_customer_only() {
    let (acme_url, acme_seen) = receiver(StatusCode::NO_CONTENT).await;
    let (beta_url, beta_seen) = receiver(StatusCode::NO_CONTENT).await;
    let client = |id: &str, customer: &str, url: &str| ApiClientConfig {
        client_id: id.into(),
        customer_id: customer.into(),
        key_hash: id.into(),
        report_url: Some(url.into()),
        signing_secret: None,
        signing_secret_previous: None,
        enabled: true,
        rate_limit_per_second: None,
    };
    let tables = ConfigTables::fixed(
        vec![],
        vec![
            client("acme-web", "acme", &acme_url),
            client("beta-web", "beta", &beta_url),
        ],
        vec![],
        vec![],
        vec![],
    );
    let callback = Callback::new(tables, Duration::from_secs(60), dev()).expect("a client");
    let mut cross = report();
    cross.customer_id = "beta".into();
    cross.client_id = Some("acme-web".into());
    let outputs = callback
        .process(cross.into(), origin())
        .await
        .expect("processed");
    assert_eq!(outputs.len(), 1, "delivered: only its result");
    assert_eq!(
        acme_seen.lock().expect("lock").len(),
        0,
        "acme got beta's report"
    );
    assert_eq!(
        beta_seen.lock().expect("lock").len(),
        1,
        "beta's own client"
    );
}

#[tokio::test]
async fn during_a_secret_rotation_each_webhook_carries_both_signatures() {
    let (url, seen) = receiver(StatusCode::NO_CONTENT).await;
    let client = ApiClientConfig {
        client_id: "acme-web".into(),
        customer_id: "acme".into(),
        key_hash: "00".into(),
        report_url: Some(url),
        signing_secret: Some("whsec-new".into()),
        signing_secret_previous: Some("whsec-old".into()),
        enabled: true,
        rate_limit_per_second: None,
    };
    let tables = ConfigTables::fixed(vec![], vec![client], vec![], vec![], vec![]);
    let callback = Callback::new(tables, Duration::from_secs(60), dev()).expect("a client");
    callback
        .process(report().into(), origin())
        .await
        .expect("processed");
    let seen = seen.lock().expect("lock");
    let (headers, body) = &seen[0];
    let signature = headers[SIGNATURE_HEADER].to_str().expect("text");
    assert_eq!(signature.matches("v1=").count(), 2, "{signature}");
    for secret in ["whsec-new", "whsec-old"] {
        assert!(
            verify(signature, secret, body, now_millis() / 1000, 60),
            "{secret}"
        );
    }
    assert!(!verify(signature, "whsec", body, now_millis() / 1000, 60));
}
