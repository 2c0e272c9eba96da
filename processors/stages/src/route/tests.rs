//! Route's decisions on the fixture tables: ratios, carriers, failover order, health, trails.

use std::collections::HashMap;

use switchyard_runtime::Processor;

use switchyard_runtime::Table;
use switchyard_runtime::names;
use switchyard_runtime::names::SENDER_HEALTH;
use switchyard_schemas::{
    Channel, DeliveryReport, DispatchRequest, ResultStatus, RouteHop, SenderHealth,
};

use super::*;
use crate::fixtures::{tables, tables_with_rule, validated};

const NOW: i64 = 1_000_000;

fn no_health() -> Table<String, SenderHealth> {
    Table::from_entries(SENDER_HEALTH, [])
}

fn health(beats: &[(&str, bool, i64)]) -> Table<String, SenderHealth> {
    Table::from_entries(
        SENDER_HEALTH,
        beats.iter().map(|(sender, healthy, at)| {
            (
                format!("{sender}/i1"),
                SenderHealth {
                    sender: sender.to_string(),
                    healthy: *healthy,
                    reason: (!healthy).then(|| "not bound".to_string()),
                    heartbeat_at: *at,
                    instance: "i1".into(),
                    ..SenderHealth::default()
                },
            )
        }),
    )
}

/// Route `routing` at NOW with the positions of input partition 0.
fn dest(route: &Route, routing: &Routing) -> Result<Destination, NoRoute> {
    let store = route.state().expect("route keeps state");
    route.destination(routing, NOW, &mut *store.lock(0))
}

fn first(id: &str) -> Routing {
    Routing {
        message: validated(id),
        trail: Vec::new(),
        attempt: 1,
        prefer_group: None,
    }
}

/// Route `routing`, then send it back as its dispatcher would after the sender failed:
/// the sender it went to, and the routing of the next attempt.
fn failed_over(route: &Route, routing: Routing) -> (String, Routing) {
    let outputs = route_outputs(
        routing.clone(),
        dest(route, &routing),
        names::NORMAL_LANE,
        NOW,
    );
    let mut request = outputs[0]
        .value::<DispatchRequest>()
        .expect("a dispatch request")
        .clone();
    let last = request.trail.last_mut().expect("a hop");
    last.outcome = Some("try_another_sender".into());
    last.reason = Some("connection refused".into());
    (
        request.sender.clone(),
        RouteInput::Failover(Box::new(request)).into_routing(),
    )
}

#[test]
fn a_one_to_one_rule_splits_ten_messages_five_five() {
    let route = Route::new(tables(), no_health());
    let mut per_group: HashMap<String, usize> = HashMap::new();
    let mut per_sender: HashMap<String, usize> = HashMap::new();
    for i in 0..10 {
        let d = dest(&route, &first(&format!("m-{i}"))).expect("routes");
        assert_eq!(d.carrier, "skt");
        *per_group.entry(d.group).or_default() += 1;
        *per_sender.entry(d.sender.name).or_default() += 1;
    }
    assert_eq!(per_group["skt-direct"], 5);
    assert_eq!(per_group["aggregator"], 5);
    // Within skt-direct, its two senders take turns.
    assert_eq!((per_sender["skt-a1"], per_sender["skt-a2"]), (3, 2));
}

#[test]
fn longest_prefix_and_ported_numbers_pick_the_carrier() {
    let route = Route::new(tables(), no_health());
    let mut m = first("m");
    m.message.submission.to = "01091234567".into();
    let d = dest(&route, &m).expect("routes");
    assert_eq!(
        (d.carrier.as_str(), d.group.as_str()),
        ("kt", "kt-direct"),
        "0109 beats 010; ratio 0 never"
    );
    m.message.submission.to = "01099990000".into();
    assert_eq!(
        dest(&route, &m).expect("routes").carrier,
        "skt",
        "ported number wins"
    );
}

#[test]
fn a_korean_number_in_e164_form_is_looked_up_as_the_national_number() {
    let route = Route::new(tables(), no_health());
    let mut m = first("m");
    m.message.submission.to = "+821091234567".into();
    assert_eq!(
        dest(&route, &m).expect("routes").carrier,
        "kt",
        "prefix 0109"
    );
    m.message.submission.to = "+821099990000".into();
    assert_eq!(dest(&route, &m).expect("routes").carrier, "skt", "ported");
    // The message keeps the number its customer wrote.
    let outputs = route_outputs(m.clone(), dest(&route, &m), names::NORMAL_LANE, 9);
    let request = outputs[0].value::<DispatchRequest>().expect("request");
    assert_eq!(request.message.submission.to, "+821099990000");
}

#[test]
fn national_numbers_of_e164_korean_numbers() {
    use switchyard_runtime::national_number;
    assert_eq!(national_number("+821012345678"), "01012345678");
    assert_eq!(national_number("+8201012345678"), "01012345678");
    assert_eq!(national_number("01012345678"), "01012345678");
    assert_eq!(national_number("+14155550100"), "+14155550100");
    assert_eq!(national_number("+82"), "+82");
}

#[test]
fn no_route_becomes_a_failed_report() {
    let route = Route::new(tables(), no_health());
    let mut m = first("m-x");
    m.message.submission.channel = Channel::Lms;
    let outputs = route_outputs(m.clone(), dest(&route, &m), names::NORMAL_LANE, 9);
    assert_eq!(outputs.len(), 1);
    assert_eq!(outputs[0].topic, REPORTS);
    let report = outputs[0].value::<DeliveryReport>().expect("report");
    assert_eq!(
        (report.status, report.result_code.as_str()),
        (ResultStatus::Failed, NO_ROUTE)
    );
    assert!(
        report.result_text.contains("no routing rule"),
        "{}",
        report.result_text
    );
}

#[test]
fn a_route_writes_the_sender_topic_and_the_decision() {
    let route = Route::new(tables(), no_health());
    let outputs = route_outputs(
        first("m-1"),
        dest(&route, &first("m-1")),
        names::NORMAL_LANE,
        9,
    );
    let topics: Vec<&str> = outputs.iter().map(|o| o.topic.as_str()).collect();
    assert_eq!(topics, vec!["sender.skt-a1", ROUTED]);
    let request = outputs[0].value::<DispatchRequest>().expect("request");
    assert_eq!(
        (request.attempt, request.message.message_id.as_str()),
        (1, "m-1")
    );
    assert_eq!(request.trail.len(), 1, "the hop of this attempt");
}

#[test]
fn unhealthy_and_silent_senders_get_no_traffic_and_the_ratio_holds_among_the_rest() {
    // skt-a1 says it is unhealthy, skt-a2's heartbeats stopped: skt-direct has nobody, so
    // every message goes to the aggregator; agg-1 never heartbeated (unknown) and may take.
    let route = Route::new(
        tables(),
        health(&[("skt-a1", false, NOW), ("skt-a2", true, NOW - 60_000)]),
    );
    for i in 0..6 {
        let d = dest(&route, &first(&format!("m-{i}"))).expect("routes");
        assert_eq!(d.sender.name, "agg-1");
    }
    // When skt-a2 beats again it shares skt-direct's half alone.
    let route = Route::new(
        tables(),
        health(&[("skt-a1", false, NOW), ("skt-a2", true, NOW - 1_000)]),
    );
    let senders: Vec<String> = (0..4)
        .map(|i| {
            dest(&route, &first(&format!("m-{i}")))
                .expect("routes")
                .sender
                .name
        })
        .collect();
    assert_eq!(senders, vec!["skt-a2", "agg-1", "skt-a2", "agg-1"]);
}

#[test]
fn a_failover_tries_the_same_group_then_the_other_groups_then_fails_with_the_trail() {
    let route = Route::new(tables(), no_health());
    let (sender, second) = failed_over(&route, first("m-f"));
    assert_eq!(sender, "skt-a1");
    assert_eq!(second.attempt, 2);
    let (sender, third) = failed_over(&route, second);
    assert_eq!(sender, "skt-a2", "the failed hop's group first");
    let (sender, fourth) = failed_over(&route, third);
    assert_eq!(sender, "agg-1", "then the other group of the carrier");
    let outputs = route_outputs(
        fourth.clone(),
        dest(&route, &fourth),
        names::NORMAL_LANE,
        NOW,
    );
    assert_eq!(outputs.len(), 1);
    let report = outputs[0].value::<DeliveryReport>().expect("a report");
    assert_eq!(
        (report.status, report.result_code.as_str(), report.attempt),
        (ResultStatus::Failed, ALL_SENDERS_FAILED, 3)
    );
    let hops: Vec<(i32, &str, Option<&str>, Option<&str>)> = report
        .trail
        .iter()
        .map(|h| {
            (
                h.attempt,
                h.sender.as_str(),
                h.outcome.as_deref(),
                h.reason.as_deref(),
            )
        })
        .collect();
    let refused = Some("connection refused");
    let failed = Some("try_another_sender");
    assert_eq!(
        hops,
        vec![
            (1, "skt-a1", failed, refused),
            (2, "skt-a2", failed, refused),
            (3, "agg-1", failed, refused)
        ]
    );
    assert_eq!(report.sender, "agg-1", "the last sender tried");
}

#[test]
fn other_carriers_are_tried_only_when_the_rule_allows_it() {
    let exhausted = |route: &Route| {
        let mut routing = first("m-o");
        for _ in 0..3 {
            routing = failed_over(route, routing).1;
        }
        routing
    };
    let strict = Route::new(tables(), no_health());
    assert!(dest(&strict, &exhausted(&strict)).is_err());
    let open = Route::new(tables_with_rule(|r| r.other_carriers = true), no_health());
    let d = dest(&open, &exhausted(&open)).expect("another carrier");
    assert_eq!((d.carrier.as_str(), d.sender.name.as_str()), ("kt", "kt-1"));
}

#[test]
fn a_message_failing_because_every_sender_is_unusable_lists_them_in_its_trail() {
    let route = Route::new(
        tables(),
        health(&[
            ("skt-a1", false, NOW),
            ("skt-a2", false, NOW),
            ("agg-1", false, NOW - 1_000),
        ]),
    );
    let outputs = route_outputs(
        first("m-u"),
        dest(&route, &first("m-u")),
        names::NORMAL_LANE,
        NOW,
    );
    let report = outputs[0].value::<DeliveryReport>().expect("a report");
    assert_eq!(report.result_code, NO_ROUTE);
    let hops: Vec<(&str, Option<&str>, Option<&str>)> = report
        .trail
        .iter()
        .map(|h| (h.sender.as_str(), h.outcome.as_deref(), h.reason.as_deref()))
        .collect();
    assert_eq!(
        hops,
        vec![
            ("skt-a1", Some(UNUSABLE), Some("not bound")),
            ("skt-a2", Some(UNUSABLE), Some("not bound")),
            ("agg-1", Some(UNUSABLE), Some("not bound")),
        ]
    );
    let _: &[RouteHop] = &report.trail;
}

#[test]
fn a_silent_sender_is_a_last_resort_so_a_dead_dispatcher_queues_instead_of_failing() {
    // Both skt-direct senders are unhealthy; agg-1's dispatcher went silent a minute ago.
    let route = Route::new(
        tables(),
        health(&[
            ("skt-a1", false, NOW),
            ("skt-a2", false, NOW),
            ("agg-1", true, NOW - 60_000),
        ]),
    );
    let d = dest(&route, &first("m-s")).expect("the silent sender, as a last resort");
    assert_eq!(d.sender.name, "agg-1");
    // While a healthy sender exists, the silent one gets nothing.
    let route = Route::new(
        tables(),
        health(&[("skt-a1", true, NOW), ("agg-1", true, NOW - 60_000)]),
    );
    for i in 0..4 {
        let d = dest(&route, &first(&format!("m-{i}"))).expect("routes");
        assert_ne!(d.sender.name, "agg-1");
    }
}

#[test]
fn each_message_goes_to_its_priority_lane_and_an_ad_bill_code_makes_it_an_ad() {
    use switchyard_runtime::Origin;
    use switchyard_schemas::{BillCode, Priority};
    let mut tables = tables();
    tables.bill_codes = Table::from_entries(
        names::CONFIG_BILL_CODES,
        [(
            switchyard_runtime::bill_code_key("acme", "B1"),
            BillCode {
                customer_id: "acme".into(),
                code: "B1".into(),
                ad_check: true,
                description: "promotions".into(),
            },
        )],
    );
    let route = Route::new(tables, no_health());
    let origin = Origin {
        topic: names::VALIDATED,
        partition: 0,
        offset: 0,
        timestamp: None,
        key: None,
    };
    let lane_topic = |priority: Priority, bill_code: Option<&str>| {
        let mut message = validated("m-lane");
        message.submission.priority = priority;
        message.submission.bill_code = bill_code.map(str::to_string);
        let outputs = route
            .process(RouteInput::Validated(Box::new(message)), origin)
            .expect("routed");
        outputs[0].topic.clone()
    };
    let sender = |topic: &str| names::sender_of(topic).expect("a sender topic").to_string();
    let otp = lane_topic(Priority::Otp, None);
    assert_eq!(otp, names::sender_lane(&sender(&otp), "otp"));
    let normal = lane_topic(Priority::Normal, None);
    assert_eq!(normal, names::sender(&sender(&normal)));
    let bulk = lane_topic(Priority::Bulk, None);
    assert_eq!(bulk, names::sender_lane(&sender(&bulk), "bulk"));
    let ad = lane_topic(Priority::Ad, None);
    assert_eq!(ad, names::sender_lane(&sender(&ad), "ad"));
    let billed_as_ad = lane_topic(Priority::Otp, Some("B1"));
    assert_eq!(
        billed_as_ad,
        names::sender_lane(&sender(&billed_as_ad), "ad")
    );
}

#[test]
fn a_handed_back_attempt_is_routed_once_however_often_it_comes_back() {
    use switchyard_runtime::Origin;
    let route = Route::new(tables(), no_health());
    let (_, next) = failed_over(&route, first("m-twice"));
    let request = DispatchRequest {
        message_id: "m-twice".into(),
        customer_id: "acme".into(),
        carrier: "skt".into(),
        sender_group: next.trail[0].sender_group.clone(),
        sender: next.trail[0].sender.clone(),
        attempt: 1,
        message: next.message.clone(),
        trail: next.trail.clone(),
        routed_at: NOW,
        prefer_group: None,
    };
    let origin = Origin {
        topic: names::FAILOVER,
        partition: 0,
        offset: 0,
        timestamp: None,
        key: None,
    };
    let input = || RouteInput::Failover(Box::new(request.clone()));
    let routed = route.process(input(), origin).expect("routed");
    assert_eq!(routed.len(), 2, "to a sender, and the decision");
    let again = route.process(input(), origin).expect("not an error");
    assert!(again.is_empty(), "the second copy is dropped: {again:?}");
    // The next attempt of the same message is a new hand-back.
    let mut later = request.clone();
    later.attempt = 2;
    let routed = route
        .process(RouteInput::Failover(Box::new(later)), origin)
        .expect("routed");
    assert!(!routed.is_empty());
}

#[test]
fn a_drained_sender_gets_nothing_and_its_queue_goes_to_the_drains_group_first() {
    use switchyard_schemas::SenderDrain;
    let drains = Table::from_entries(
        names::SENDER_DRAINS,
        [(
            "skt-a1".to_string(),
            SenderDrain {
                sender: "skt-a1".into(),
                to_group: Some("aggregator".into()),
                requested_at: NOW,
                reason: String::new(),
            },
        )],
    );
    let route = Route::new(tables(), no_health()).with_drains(drains);
    for i in 0..20 {
        let d = dest(&route, &first(&format!("m-{i}"))).expect("a sender");
        assert_ne!(d.sender.name, "skt-a1", "a drained sender gets nothing new");
    }
    // A message handed back by the drain, with a direct group's hop: the drain's group first.
    let mut back = first("m-drained");
    back.trail.push(RouteHop {
        attempt: 1,
        carrier: "skt".into(),
        sender_group: "skt-direct".into(),
        sender: "skt-a1".into(),
        outcome: Some("drained".into()),
        at: NOW,
        reason: Some("drained by an operator to group aggregator".into()),
    });
    back.attempt = 2;
    back.prefer_group = Some("aggregator".into());
    let d = dest(&route, &back).expect("a sender");
    assert_eq!(d.group, "aggregator");
}
