//! SSRF protection of webhooks against real local servers: outside dev mode, loopback,
//! private, link-local and metadata addresses are refused before anything is sent, so is a
//! name that resolves to one (`localhost`) and plain http; a redirect is never followed, even in
//! dev mode. A refusal is permanent: the report goes to `callbacks.exhausted`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::post;
use switchyard_callback::{Deliverer, WebhookMode, WebhookPolicy, WebhookSettings};
use switchyard_schemas::{Channel, FinalReport, ResultStatus};

fn report() -> FinalReport {
    FinalReport {
        event_id: "evt-1".into(),
        message_id: "m-1".into(),
        customer_id: "acme".into(),
        client_id: None,
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
        done_at: 0,
        trail: Vec::new(),
    }
}

/// A server on loopback that counts its calls and answers with `answer`.
async fn server(answer: fn() -> axum::response::Response) -> (u16, Arc<Mutex<usize>>) {
    let calls = Arc::new(Mutex::new(0));
    let counter = calls.clone();
    let app = Router::new().fallback(post(move || {
        let counter = counter.clone();
        async move {
            *counter.lock().expect("lock") += 1;
            answer()
        }
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (port, calls)
}

fn ok() -> axum::response::Response {
    StatusCode::NO_CONTENT.into_response()
}

fn deliverer(mode: WebhookMode) -> Deliverer {
    Deliverer::new(WebhookSettings {
        policy: WebhookPolicy {
            mode,
            allow: Vec::new(),
        },
        timeout: Some(Duration::from_secs(2)),
        ..WebhookSettings::default()
    })
    .expect("a client")
}

#[tokio::test]
async fn production_refuses_private_targets_before_sending_anything() {
    let (port, calls) = server(ok).await;
    let production = deliverer(WebhookMode::Production);
    for url in [
        format!("https://127.0.0.1:{port}/"),
        format!("https://localhost:{port}/"),
        format!("https://[::1]:{port}/"),
        "https://10.0.0.1/hook".to_string(),
        "https://192.168.0.10/hook".to_string(),
        "https://169.254.169.254/latest/meta-data/".to_string(),
        "https://[fd00:ec2::254]/".to_string(),
        format!("http://127.0.0.1:{port}/"),
        "http://example.com/hook".to_string(),
    ] {
        let attempted = production.send(&report(), &url, &[], 1).await;
        let failure = attempted.failure.clone().unwrap_or_default();
        assert!(attempted.permanent, "{url}: {failure}");
        assert!(
            failure.contains("not allowed for webhooks") || failure.contains("not https"),
            "{url}: {failure}"
        );
    }
    assert_eq!(
        *calls.lock().expect("lock"),
        0,
        "nothing reached the server"
    );
    // The same server is reachable in dev mode: the refusals above were the policy's.
    let dev = deliverer(WebhookMode::Dev);
    let attempted = dev
        .send(&report(), &format!("http://localhost:{port}/"), &[], 1)
        .await;
    assert_eq!(attempted.failure, None);
    assert_eq!(*calls.lock().expect("lock"), 1);
}

#[tokio::test]
async fn a_redirect_is_not_followed() {
    let (target_port, target_calls) = server(ok).await;
    static TARGET: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TARGET.get_or_init(|| format!("http://127.0.0.1:{target_port}/"));
    let (port, calls) = server(|| {
        (
            StatusCode::TEMPORARY_REDIRECT,
            [(header::LOCATION, TARGET.get().cloned().unwrap_or_default())],
        )
            .into_response()
    })
    .await;
    let attempted = deliverer(WebhookMode::Dev)
        .send(&report(), &format!("http://127.0.0.1:{port}/"), &[], 1)
        .await;
    assert_eq!(attempted.http_status, Some(307));
    assert!(
        attempted
            .failure
            .as_deref()
            .is_some_and(|f| f.contains("redirects are not followed")),
        "{attempted:?}"
    );
    assert_eq!(*calls.lock().expect("lock"), 1);
    assert_eq!(
        *target_calls.lock().expect("lock"),
        0,
        "the redirect was followed"
    );
}
