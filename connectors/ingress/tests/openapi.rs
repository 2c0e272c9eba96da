//! The OpenAPI document agrees with what the server does: required fields, batch bounds,
//! channels, and the error statuses each route can answer.

use serde_json::Value;
use switchyard_ingress::OPENAPI;
use switchyard_ingress::request::{MAX_BATCH, parse};
use switchyard_schemas::Channel;

fn spec() -> Value {
    serde_json::from_str(OPENAPI).expect("openapi.json is JSON")
}

fn statuses(spec: &Value, path: &str, method: &str) -> Vec<String> {
    spec["paths"][path][method]["responses"]
        .as_object()
        .map(|r| r.keys().cloned().collect())
        .unwrap_or_default()
}

#[test]
fn text_is_required_unless_a_template_is_given_in_both() {
    let spec = spec();
    let any_of = &spec["components"]["schemas"]["Message"]["anyOf"];
    assert_eq!(any_of[0]["required"][0], "text");
    assert_eq!(any_of[0]["properties"]["text"]["minLength"], 1);
    assert_eq!(any_of[1]["required"][0], "template_code");
    assert_eq!(
        parse(br#"{"channel":"sms","to":"01012345678"}"#)
            .expect_err("no text")
            .status,
        422
    );
    assert_eq!(
        parse(br#"{"channel":"sms","to":"01012345678","text":""}"#)
            .expect_err("empty text")
            .status,
        422
    );
    assert!(parse(br#"{"channel":"kakao","to":"01012345678","template_code":"T1"}"#).is_ok());
}

#[test]
fn batch_bounds_agree() {
    let spec = spec();
    let messages = &spec["components"]["schemas"]["Batch"]["properties"]["messages"];
    assert_eq!(messages["minItems"], 1);
    assert_eq!(parse(br#"{"messages":[]}"#).expect_err("empty").status, 422);
    assert_eq!(messages["maxItems"].as_u64(), Some(MAX_BATCH as u64));
}

#[test]
fn channels_agree() {
    let spec = spec();
    let listed: Vec<&str> = spec["components"]["schemas"]["Channel"]["enum"]
        .as_array()
        .expect("an enum")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let known: Vec<&str> = Channel::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(listed, known);
}

#[test]
fn every_error_status_is_documented() {
    let spec = spec();
    let post = statuses(&spec, "/v1/messages", "post");
    for status in ["202", "401", "413", "422", "429", "503"] {
        assert!(post.iter().any(|s| s == status), "POST lacks {status}");
    }
    let get = statuses(&spec, "/v1/messages/{message_id}", "get");
    for status in ["200", "401", "404", "503"] {
        assert!(get.iter().any(|s| s == status), "GET lacks {status}");
    }
}
