//! Config and records shared by the stages' unit tests.

use switchyard_runtime::ConfigTables;
use switchyard_schemas::*;

pub fn submission(id: &str) -> Submission {
    Submission {
        message_id: Some(id.into()),
        customer_id: "acme".into(),
        client_id: Some("acme-web".into()),
        client_message_id: Some("c-1".into()),
        channel: Channel::Sms,
        to: "01012345678".into(),
        from: Some("0212345678".into()),
        text: "인증번호 123456".into(),
        subject: None,
        bill_code: Some("B1".into()),
        priority: Priority::Otp,
        template_code: None,
        fallback: None,
        attachments: vec![],
        expires_at: None,
        metadata: Default::default(),
        accepted_at: 500,
    }
}

pub fn validated(id: &str) -> ValidatedMessage {
    ValidatedMessage {
        message_id: id.into(),
        customer_id: "acme".into(),
        submission: submission(id),
        encoding: "euc-kr".into(),
        segments: 1,
        validated_at: 600,
        upgraded_from: None,
    }
}

fn sender(name: &str, group: &str, carrier: &str) -> SenderConfig {
    SenderConfig {
        name: name.into(),
        group: group.into(),
        channel: Channel::Sms,
        carriers: vec![carrier.into()],
        kind: "http".into(),
        endpoint: format!("http://127.0.0.1:1/{name}"),
        tps: None,
        enabled: true,
        settings: Default::default(),
    }
}

pub fn tables() -> ConfigTables {
    tables_with(|_| {})
}

/// The fixture tables with customer `acme` changed by `change`.
pub fn tables_with(change: impl FnOnce(&mut CustomerConfig)) -> ConfigTables {
    build(change, |_| {})
}

/// The fixture tables with acme's SMS rule changed by `change`.
pub fn tables_with_rule(change: impl FnOnce(&mut RouteRule)) -> ConfigTables {
    build(|_| {}, change)
}

fn build(
    change: impl FnOnce(&mut CustomerConfig),
    change_rule: impl FnOnce(&mut RouteRule),
) -> ConfigTables {
    let mut acme = CustomerConfig {
        customer_id: "acme".into(),
        name: "ACME".into(),
        enabled: true,
        channels: vec![Channel::Sms, Channel::Lms, Channel::Kakao],
        bill_codes: vec!["B1".into()],
        tps_limits: Default::default(),
        prepaid: false,
        night_ads: NightAds::Reject,
        auto_lms_upgrade: false,
        prices: Default::default(),
        dedup_window_hours: 24,
        history_retention_days: None,
    };
    change(&mut acme);
    let mut rule = RouteRule {
        customer_id: "acme".into(),
        channel: Channel::Sms,
        carriers: vec![
            CarrierRoute {
                carrier: "skt".into(),
                groups: vec![
                    GroupShare {
                        group: "skt-direct".into(),
                        ratio: 1,
                    },
                    GroupShare {
                        group: "aggregator".into(),
                        ratio: 1,
                    },
                ],
            },
            CarrierRoute {
                carrier: "kt".into(),
                groups: vec![
                    GroupShare {
                        group: "kt-direct".into(),
                        ratio: 3,
                    },
                    GroupShare {
                        group: "never".into(),
                        ratio: 0,
                    },
                ],
            },
        ],
        other_carriers: false,
    };
    change_rule(&mut rule);
    ConfigTables::fixed(
        vec![
            acme,
            CustomerConfig {
                customer_id: "beta".into(),
                name: "Beta".into(),
                enabled: true,
                channels: vec![Channel::Sms],
                bill_codes: vec![],
                tps_limits: Default::default(),
                prepaid: false,
                night_ads: NightAds::Reject,
                auto_lms_upgrade: false,
                prices: Default::default(),
                dedup_window_hours: 24,
                history_retention_days: None,
            },
        ],
        vec![
            ApiClientConfig {
                client_id: "acme-web".into(),
                customer_id: "acme".into(),
                key_hash: "00".into(),
                report_url: Some("http://127.0.0.1:1/hook".into()),
                signing_secret: Some("s".into()),
                signing_secret_previous: None,
                enabled: true,
                rate_limit_per_second: None,
            },
            ApiClientConfig {
                client_id: "other-client".into(),
                customer_id: "beta".into(),
                key_hash: "01".into(),
                report_url: None,
                signing_secret: None,
                signing_secret_previous: None,
                enabled: true,
                rate_limit_per_second: None,
            },
        ],
        vec![
            sender("skt-a1", "skt-direct", "skt"),
            sender("skt-a2", "skt-direct", "skt"),
            sender("agg-1", "aggregator", "skt"),
            sender("kt-1", "kt-direct", "kt"),
        ],
        vec![rule],
        vec![
            NumberingEntry {
                kind: NumberingKind::Prefix,
                number: "010".into(),
                carrier: "skt".into(),
            },
            NumberingEntry {
                kind: NumberingKind::Prefix,
                number: "0109".into(),
                carrier: "kt".into(),
            },
            NumberingEntry {
                kind: NumberingKind::Ported,
                number: "01099990000".into(),
                carrier: "skt".into(),
            },
        ],
    )
}
