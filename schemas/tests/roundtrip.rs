//! Every record survives encode → decode unchanged, for arbitrary values (property tests).

use std::collections::BTreeMap;

use proptest::prelude::*;
use switchyard_schemas::*;

fn channel() -> impl Strategy<Value = Channel> {
    proptest::sample::select(Channel::ALL.to_vec())
}

fn priority() -> impl Strategy<Value = Priority> {
    proptest::sample::select(vec![
        Priority::Otp,
        Priority::Normal,
        Priority::Bulk,
        Priority::Ad,
    ])
}

fn status() -> impl Strategy<Value = ResultStatus> {
    proptest::sample::select(vec![
        ResultStatus::Delivered,
        ResultStatus::Failed,
        ResultStatus::Rejected,
        ResultStatus::Expired,
        ResultStatus::Unknown,
    ])
}

fn text() -> impl Strategy<Value = String> {
    // Any Unicode, including Korean and emoji, and the empty string.
    "\\PC{0,40}"
}

fn opt_text() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(text())
}

fn submission() -> impl Strategy<Value = Submission> {
    (
        (
            opt_text(),
            text(),
            opt_text(),
            opt_text(),
            channel(),
            text(),
            opt_text(),
            text(),
        ),
        (
            opt_text(),
            opt_text(),
            priority(),
            opt_text(),
            proptest::option::of((channel(), text(), opt_text())),
            proptest::collection::vec((text(), text(), opt_text()), 0..3),
            proptest::option::of(any::<i64>()),
            proptest::collection::btree_map(text(), text(), 0..4),
            any::<i64>(),
        ),
    )
        .prop_map(
            |(
                (message_id, customer_id, client_id, client_message_id, channel, to, from, text),
                (
                    subject,
                    bill_code,
                    priority,
                    template_code,
                    fallback,
                    attachments,
                    expires_at,
                    metadata,
                    accepted_at,
                ),
            )| Submission {
                message_id,
                customer_id,
                client_id,
                client_message_id,
                channel,
                to,
                from,
                text,
                subject,
                bill_code,
                priority,
                template_code,
                fallback: fallback.map(|(channel, text, subject)| Fallback {
                    channel,
                    text,
                    subject,
                }),
                attachments: attachments
                    .into_iter()
                    .map(|(uri, content_type, file_name)| Attachment {
                        uri,
                        content_type,
                        file_name,
                    })
                    .collect(),
                expires_at,
                metadata,
                accepted_at,
            },
        )
}

fn validated() -> impl Strategy<Value = ValidatedMessage> {
    (
        submission(),
        text(),
        any::<i32>(),
        any::<i64>(),
        proptest::option::of(channel()),
    )
        .prop_map(
            |(submission, encoding, segments, at, upgraded_from)| ValidatedMessage {
                message_id: submission.message_id.clone().unwrap_or_default(),
                customer_id: submission.customer_id.clone(),
                submission,
                encoding,
                segments,
                validated_at: at,
                upgraded_from,
            },
        )
}

fn hop() -> impl Strategy<Value = RouteHop> {
    (
        any::<i32>(),
        text(),
        text(),
        text(),
        opt_text(),
        any::<i64>(),
    )
        .prop_map(
            |(attempt, carrier, sender_group, sender, outcome, at)| RouteHop {
                attempt,
                carrier,
                sender_group,
                sender,
                reason: outcome.clone().map(|o| format!("because {o}")),
                outcome,
                at,
            },
        )
}

fn dispatch_request() -> impl Strategy<Value = DispatchRequest> {
    (
        validated(),
        text(),
        text(),
        text(),
        any::<i32>(),
        proptest::collection::vec(hop(), 0..3),
        any::<i64>(),
    )
        .prop_map(
            |(message, carrier, sender_group, sender, attempt, trail, routed_at)| DispatchRequest {
                message_id: message.message_id.clone(),
                customer_id: message.customer_id.clone(),
                carrier,
                sender_group,
                sender,
                attempt,
                message,
                trail,
                routed_at,
                prefer_group: None,
            },
        )
}

fn final_report() -> impl Strategy<Value = FinalReport> {
    (
        (
            text(),
            text(),
            text(),
            opt_text(),
            opt_text(),
            channel(),
            text(),
            status(),
        ),
        (
            text(),
            text(),
            opt_text(),
            opt_text(),
            any::<i32>(),
            proptest::option::of(any::<i64>()),
            any::<i64>(),
        ),
    )
        .prop_map(
            |(
                (
                    event_id,
                    message_id,
                    customer_id,
                    client_id,
                    client_message_id,
                    channel,
                    to,
                    status,
                ),
                (result_code, result_text, carrier, sender, attempt, submitted_at, done_at),
            )| FinalReport {
                event_id,
                message_id,
                customer_id,
                client_id,
                client_message_id,
                channel,
                to,
                status,
                result_code,
                result_text,
                carrier,
                sender,
                attempt,
                submitted_at,
                done_at,
                trail: Vec::new(),
            },
        )
}

fn roundtrip<T: Record + PartialEq + std::fmt::Debug>(value: &T) {
    let bytes = to_datum(value).expect("encodes");
    let back: T = from_datum(&bytes).expect("decodes");
    assert_eq!(&back, value);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn submission_roundtrips(s in submission()) { roundtrip(&s); }

    #[test]
    fn validated_message_roundtrips(v in validated()) { roundtrip(&v); }

    #[test]
    fn rejection_roundtrips(s in submission(), code in text(), detail in text(), at in any::<i64>(), rule in opt_text()) {
        roundtrip(&Rejection { message_id: "m".into(), customer_id: s.customer_id.clone(), code, detail, submission: s, rejected_at: at, rule });
    }

    #[test]
    fn held_message_roundtrips(s in submission(), reason in text(), release_at in any::<i64>(), held_at in any::<i64>()) {
        roundtrip(&HeldMessage { message_id: "m".into(), customer_id: s.customer_id.clone(), submission: s, release_at, reason, held_at });
    }

    #[test]
    fn routing_decision_roundtrips(h in proptest::collection::vec(hop(), 0..4), c in channel(), p in priority(), attempt in any::<i32>()) {
        roundtrip(&RoutingDecision {
            message_id: "m".into(), customer_id: "c".into(), channel: c, to: "01012345678".into(),
            carrier: "skt".into(), sender_group: "g".into(), sender: "s".into(), attempt,
            priority: p, trail: h, routed_at: 1,
        });
    }

    #[test]
    fn dispatch_request_roundtrips(r in dispatch_request()) { roundtrip(&r); }

    #[test]
    fn dispatch_outcome_roundtrips(r in dispatch_request(), failed in any::<bool>(), detail in opt_text()) {
        roundtrip(&DispatchOutcome {
            message_id: r.message_id.clone(), attempt: r.attempt, carrier: r.carrier.clone(),
            sender_group: r.sender_group.clone(), sender: r.sender.clone(),
            status: if failed { DispatchStatus::Failed } else { DispatchStatus::Submitted },
            failure_class: failed.then_some(FailureClass::SenderDown),
            carrier_message_id: (!failed).then(|| "cm-1".to_string()),
            detail, request: r, dispatched_at: 7,
        });
    }

    #[test]
    fn delivery_report_roundtrips(s in status(), code in text(), cm in opt_text(), at in proptest::option::of(any::<i64>())) {
        roundtrip(&DeliveryReport {
            event_id: "e".into(), message_id: "m".into(), customer_id: "c".into(), client_id: None,
            client_message_id: Some("x".into()), channel: Channel::Lms, to: "010".into(),
            carrier: "kt".into(), sender: "s".into(),
            carrier_message_id: cm.clone(), status: s, carrier_code: code.clone(), result_code: code, result_text: "t".into(),
            attempt: 2, submitted_at: at, reported_at: 3,
            trail: vec![RouteHop { attempt: 1, carrier: "kt".into(), sender_group: "g".into(), sender: "s0".into(), outcome: Some("sender_down".into()), at: 2, reason: cm.clone() }],
        });
    }

    #[test]
    fn final_report_roundtrips(r in final_report()) { roundtrip(&r); }

    #[test]
    fn callback_attempt_roundtrips(report in final_report(), retry in 1..=10i32, failure in text()) {
        roundtrip(&CallbackAttempt {
            report, report_url: "http://127.0.0.1/cb".into(), retry, due_at: 10,
            last_failure: failure, first_failed_at: 1, failed_at: 2,
        });
    }

    #[test]
    fn config_records_roundtrip(
        channels in proptest::collection::vec(channel(), 0..8),
        limits in proptest::collection::btree_map(text(), any::<i32>(), 0..3),
        settings in proptest::collection::btree_map(text(), text(), 0..3),
        ratio in any::<i32>(),
        secret in opt_text(),
    ) {
        let prices = limits.iter().map(|(k, v)| (k.clone(), i64::from(*v) * 1_000)).collect();
        let night_ads = if ratio % 2 == 0 { NightAds::Hold } else { NightAds::Reject };
        roundtrip(&CustomerConfig { customer_id: "c".into(), name: "C".into(), enabled: true, channels: channels.clone(), bill_codes: vec!["b".into()], tps_limits: limits, prepaid: false, night_ads, auto_lms_upgrade: ratio > 0, prices, dedup_window_hours: 24, history_retention_days: if ratio > 0 { Some(ratio) } else { None } });
        roundtrip(&BillCode { customer_id: "c".into(), code: "광고-1".into(), ad_check: ratio > 0, description: secret.clone().unwrap_or_default() });
        roundtrip(&ApiClientConfig { client_id: "k".into(), customer_id: "c".into(), key_hash: "ab".into(), report_url: None, signing_secret: secret, signing_secret_previous: None, enabled: true, rate_limit_per_second: Some(ratio) });
        roundtrip(&SenderConfig { name: "s".into(), group: "g".into(), channel: Channel::Sms, carriers: vec!["skt".into()], kind: "http".into(), endpoint: "http://x".into(), tps: None, enabled: true, settings });
        roundtrip(&RouteRule { customer_id: "*".into(), channel: Channel::Lms, carriers: vec![CarrierRoute { carrier: "kt".into(), groups: vec![GroupShare { group: "a".into(), ratio }] }], other_carriers: ratio > 0 });
        roundtrip(&ContentPolicy { policy_id: "*".into(), blocked_keywords: channels.iter().map(|c| c.to_string()).collect(), ad_prefix: "(광고)".into(), ad_opt_out_marker: "무료수신거부".into(), ad_quiet_start_hour: 21, ad_quiet_end_hour: 8 });
        roundtrip(&NumberingEntry { kind: NumberingKind::Ported, number: "01012345678".into(), carrier: "lgt".into() });
        roundtrip(&SenderHealth { sender: "s".into(), healthy: ratio > 0, able: true, reason: None, in_flight: ratio, heartbeat_at: 5, instance: "i".into(), bound: true, window: 10, error_rate: 0.25, throughput: f64::from(ratio), last_success_at: Some(4) });
    }
}

#[test]
fn every_schema_file_loads_self_contained() {
    for name in files::full_names().expect("names") {
        let loaded = files::loaded(&name).expect("loads");
        // Self-contained: the registered JSON parses alone, with no other schema known.
        apache_avro::Schema::parse_str(&loaded.json).expect("parses alone");
    }
    for name in RECORD_NAMES {
        files::loaded(name).expect("record schema exists");
    }
}

#[test]
fn older_reader_fields_get_defaults() {
    // A record written without optional fields reads with their defaults: the JSON has them.
    let loaded = files::loaded("io.switchyard.Submission").expect("loads");
    assert!(
        loaded.json.contains("\"default\""),
        "defaults survive inlining"
    );
    let metadata: BTreeMap<String, String> = BTreeMap::new();
    let s = Submission {
        message_id: None,
        customer_id: "c".into(),
        client_id: None,
        client_message_id: None,
        channel: Channel::Kakao,
        to: "010".into(),
        from: None,
        text: "안녕하세요".into(),
        subject: None,
        bill_code: None,
        priority: Priority::Otp,
        template_code: Some("T1".into()),
        fallback: None,
        attachments: vec![],
        expires_at: None,
        metadata,
        accepted_at: 0,
    };
    roundtrip(&s);
}
