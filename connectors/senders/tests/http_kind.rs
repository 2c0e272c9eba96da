//! The `http` kind's dispatcher against the real simulator and local servers: accepted,
//! refused for good (4xx: failed report), an outage (5xx: retried, nothing produced), and an
//! acceptance with an unreadable answer (submitted once, carrier id unknown).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;
use switchyard_carrier_http::simulator::{SimulatorSettings, serve};
use switchyard_runtime::names::{DISPATCHED, REPORTS};
use switchyard_runtime::{AsyncProcessor, CancellationToken, Origin, StageError};
use switchyard_schemas::*;
use switchyard_senders::dispatcher::Dispatcher;
use switchyard_senders::http::{HttpCarrier, HttpSettings};

fn request() -> DispatchRequest {
    let submission = Submission {
        message_id: Some("m-1".into()),
        customer_id: "acme".into(),
        client_id: Some("acme-web".into()),
        client_message_id: Some("order-1".into()),
        channel: Channel::Sms,
        to: "01012345678".into(),
        from: None,
        text: "hi".into(),
        subject: None,
        bill_code: None,
        priority: Priority::Normal,
        template_code: None,
        fallback: None,
        attachments: vec![],
        expires_at: None,
        metadata: Default::default(),
        accepted_at: 1,
    };
    DispatchRequest {
        message_id: "m-1".into(),
        customer_id: "acme".into(),
        carrier: "skt".into(),
        sender_group: "g".into(),
        sender: "skt-a".into(),
        attempt: 1,
        message: ValidatedMessage {
            message_id: "m-1".into(),
            customer_id: "acme".into(),
            submission,
            encoding: "euc-kr".into(),
            segments: 1,
            validated_at: 2,
            upgraded_from: None,
        },
        trail: vec![],
        routed_at: 3,
        prefer_group: None,
    }
}

fn sender(endpoint: &str) -> Dispatcher {
    let config = SenderConfig {
        name: "skt-a".into(),
        group: "g".into(),
        channel: Channel::Sms,
        carriers: vec!["skt".into()],
        kind: "http".into(),
        endpoint: endpoint.into(),
        tps: None,
        enabled: true,
        settings: Default::default(),
    };
    let settings = HttpSettings::parse(endpoint, &config.settings).expect("settings");
    let carrier =
        HttpCarrier::new(&config, "http://127.0.0.1:9/receipts".into(), &settings).expect("client");
    Dispatcher::new(
        &config.name,
        &config.kind,
        std::sync::Arc::new(carrier),
        Default::default(),
        switchyard_runtime::Metrics::new(),
    )
}

fn origin() -> Origin<'static> {
    Origin {
        topic: "sender.skt-a",
        partition: 0,
        offset: 0,
        timestamp: None,
        key: None,
    }
}

async fn answering(status: StatusCode) -> String {
    let app = Router::new().route("/submit", post(move || async move { (status, "no") }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/submit", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

#[tokio::test]
async fn an_accepted_submit_is_recorded_with_the_carrier_id() {
    let shutdown = CancellationToken::new();
    let settings = SimulatorSettings {
        success_rate: 1.0,
        receipt_delay: Duration::from_secs(60),
    };
    let sim = serve(
        "127.0.0.1:0".parse().expect("addr"),
        settings,
        shutdown.clone(),
    )
    .await
    .expect("sim");
    let outputs = sender(&format!("http://{sim}/submit"))
        .process(request(), origin())
        .await
        .expect("ok");
    assert_eq!(outputs.len(), 2, "the outcome and its receipt deadline");
    assert_eq!(outputs[0].topic, DISPATCHED);
    assert_eq!(outputs[1].topic, switchyard_runtime::names::DEADLINES);
    let outcome = outputs[0].value::<DispatchOutcome>().expect("outcome");
    assert_eq!(outcome.status, DispatchStatus::Submitted);
    assert!(
        outcome
            .carrier_message_id
            .as_deref()
            .is_some_and(|id| !id.is_empty())
    );
    shutdown.cancel();
}

#[tokio::test]
async fn a_refusal_fails_the_message_with_a_report() {
    let url = answering(StatusCode::BAD_REQUEST).await;
    let outputs = sender(&url).process(request(), origin()).await.expect("ok");
    let topics: Vec<&str> = outputs.iter().map(|o| o.topic.as_str()).collect();
    assert_eq!(topics, vec![REPORTS, DISPATCHED]);
    let report = outputs[0].value::<DeliveryReport>().expect("report");
    assert_eq!(report.status, ResultStatus::Failed);
    assert_eq!(report.client_message_id.as_deref(), Some("order-1"));
    let outcome = outputs[1].value::<DispatchOutcome>().expect("outcome");
    assert_eq!(outcome.failure_class, Some(FailureClass::Permanent));
}

#[tokio::test]
async fn an_outage_is_retried_not_failed() {
    let url = answering(StatusCode::SERVICE_UNAVAILABLE).await;
    let result = sender(&url).process(request(), origin()).await;
    assert!(
        matches!(result, Err(StageError::Unavailable(_))),
        "{result:?}"
    );
}

/// A carrier answering every submit with `status` and `body`, counting the submits it received.
async fn counting(status: StatusCode, body: &'static str) -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let seen = hits.clone();
    let app = Router::new().route(
        "/submit",
        post(move || {
            let seen = seen.clone();
            async move {
                seen.fetch_add(1, Ordering::SeqCst);
                (status, body)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/submit", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, hits)
}

#[tokio::test]
async fn an_accepted_submit_with_an_unreadable_answer_is_submitted_once() {
    let (url, hits) = counting(StatusCode::OK, "<html>garbage, not JSON</html>").await;
    let outputs = sender(&url).process(request(), origin()).await.expect("ok");
    assert_eq!(hits.load(Ordering::SeqCst), 1, "exactly one submit");
    assert_eq!(outputs.len(), 2, "the outcome and its receipt deadline");
    assert_eq!(outputs[0].topic, DISPATCHED);
    assert_eq!(outputs[1].topic, switchyard_runtime::names::DEADLINES);
    let outcome = outputs[0].value::<DispatchOutcome>().expect("outcome");
    assert_eq!(outcome.status, DispatchStatus::Submitted);
    assert_eq!(outcome.failure_class, None);
    assert_eq!(outcome.carrier_message_id, None);
    let detail = outcome
        .detail
        .as_deref()
        .expect("detail says why the id is unknown");
    assert!(detail.contains("garbage"), "{detail}");
}

#[tokio::test]
async fn an_accepted_submit_without_a_carrier_id_is_submitted_once() {
    let (url, hits) = counting(StatusCode::ACCEPTED, r#"{"carrier_message_id":""}"#).await;
    let outputs = sender(&url).process(request(), origin()).await.expect("ok");
    assert_eq!(hits.load(Ordering::SeqCst), 1, "exactly one submit");
    let outcome = outputs[0].value::<DispatchOutcome>().expect("outcome");
    assert_eq!(outcome.status, DispatchStatus::Submitted);
    assert_eq!(outcome.carrier_message_id, None);
}
