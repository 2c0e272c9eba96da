//! The OpenAPI document agrees with what the server does: required fields, batch bounds, each
//! field's bound (the numbers of `switchyard_schemas::limits`), the control characters refused,
//! channels, and the error statuses each route can answer.

use serde_json::Value;
use switchyard_ingress::OPENAPI;
use switchyard_ingress::request::{MAX_BATCH, parse};
use switchyard_schemas::Channel;
use switchyard_schemas::limits;

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
    assert_eq!(
        any_of[1]["required"],
        serde_json::json!(["channel", "template_code"])
    );
    assert_eq!(
        any_of[1]["properties"]["channel"]["enum"],
        serde_json::json!(["kakao", "rcs"])
    );
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
    assert!(parse(br#"{"channel":"rcs","to":"01012345678","template_code":"T1"}"#).is_ok());
    assert_eq!(
        parse(br#"{"channel":"sms","to":"01012345678","template_code":"T1"}"#)
            .expect_err("a template alone is for kakao")
            .status,
        422
    );
}

fn number(value: &Value, what: &str) -> usize {
    value
        .as_u64()
        .unwrap_or_else(|| panic!("{what} is not a number: {value}")) as usize
}

#[test]
fn every_bound_is_the_schema_tables() {
    let spec = spec();
    let message = &spec["components"]["schemas"]["Message"]["properties"];
    for (field, max) in [
        ("to", limits::TO_MAX),
        ("from", limits::FROM_MAX),
        ("text", limits::TEXT_MAX),
        ("subject", limits::SUBJECT_MAX),
        ("client_message_id", limits::CLIENT_MESSAGE_ID_MAX),
        ("bill_code", limits::BILL_CODE_MAX),
        ("template_code", limits::TEMPLATE_CODE_MAX),
    ] {
        assert_eq!(number(&message[field]["maxLength"], field), max, "{field}");
    }
    let fallback = &message["fallback"]["properties"];
    assert_eq!(
        number(&fallback["text"]["maxLength"], "fallback.text"),
        limits::TEXT_MAX
    );
    assert_eq!(
        number(&fallback["subject"]["maxLength"], "fallback.subject"),
        limits::SUBJECT_MAX
    );
    let attachments = &message["attachments"];
    assert_eq!(
        number(&attachments["maxItems"], "attachments"),
        limits::ATTACHMENTS_MAX
    );
    let attachment = &attachments["items"]["properties"];
    for (field, max) in [
        ("uri", limits::ATTACHMENT_URI_MAX),
        ("content_type", limits::ATTACHMENT_CONTENT_TYPE_MAX),
        ("file_name", limits::ATTACHMENT_FILE_NAME_MAX),
    ] {
        assert_eq!(
            number(&attachment[field]["maxLength"], field),
            max,
            "{field}"
        );
    }
    let metadata = &message["metadata"];
    assert_eq!(
        number(&metadata["maxProperties"], "metadata"),
        limits::METADATA_ENTRIES_MAX
    );
    assert_eq!(
        number(&metadata["propertyNames"]["maxLength"], "metadata keys"),
        limits::METADATA_KEY_MAX
    );
    assert_eq!(
        number(
            &metadata["additionalProperties"]["maxLength"],
            "metadata values"
        ),
        limits::METADATA_VALUE_MAX
    );
}

/// Every string schema under `value`, with where it is.
fn strings<'a>(value: &'a Value, at: String, out: &mut Vec<(String, &'a Value)>) {
    match value {
        Value::Object(object) => {
            let is_string = match object.get("type") {
                Some(Value::String(t)) => t == "string",
                Some(Value::Array(types)) => types.iter().any(|t| t == "string"),
                _ => false,
            };
            if is_string {
                out.push((at.clone(), value));
            }
            for (key, inner) in object {
                strings(inner, format!("{at}/{key}"), out);
            }
        }
        Value::Array(items) => {
            for (i, inner) in items.iter().enumerate() {
                strings(inner, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// The code points of the `\uXXXX` and `\uXXXX-\uXXXX` items of the first `[^…]` class of
/// `pattern` (the form the document uses).
fn refused_by(pattern: &str) -> Vec<u32> {
    let class = pattern
        .split_once("[^")
        .and_then(|(_, rest)| rest.split_once(']'))
        .map(|(class, _)| class)
        .unwrap_or_else(|| panic!("no [^…] class in {pattern}"));
    // Items are `\uXXXX` (6 characters) or `\uXXXX-\uXXXX` (13).
    let code = |item: &str| {
        let hex = item
            .strip_prefix("\\u")
            .unwrap_or_else(|| panic!("{item} in {class}"));
        u32::from_str_radix(hex, 16).unwrap_or_else(|e| panic!("{item}: {e}"))
    };
    let mut refused = Vec::new();
    let mut rest = class;
    while !rest.is_empty() {
        if rest.as_bytes().get(6) == Some(&b'-') {
            refused.extend(code(&rest[..6])..=code(&rest[7..13]));
            rest = &rest[13..];
        } else {
            refused.push(code(&rest[..6]));
            rest = &rest[6..];
        }
    }
    refused
}

#[test]
fn the_control_characters_refused_are_the_ones_the_pattern_states() {
    let spec = spec();
    let mut found = Vec::new();
    strings(
        &spec["components"]["schemas"]["Message"]["properties"],
        "Message".into(),
        &mut found,
    );
    let text_pattern = spec["components"]["schemas"]["Message"]["properties"]["text"]["pattern"]
        .as_str()
        .expect("text has a pattern");
    // Every string of a message states it (`to` adds "not blank" to it).
    // 7 fields, fallback's 2, an attachment's 3, metadata values (keys below).
    assert_eq!(found.len(), 13, "{found:?}");
    for (at, schema) in &found {
        let pattern = schema["pattern"]
            .as_str()
            .unwrap_or_else(|| panic!("{at} has no pattern"));
        assert!(
            pattern.starts_with(&text_pattern[..text_pattern.len() - 2]),
            "{at}: {pattern}"
        );
    }
    let names =
        &spec["components"]["schemas"]["Message"]["properties"]["metadata"]["propertyNames"];
    assert_eq!(names["pattern"].as_str(), Some(text_pattern));
    // What the pattern refuses is what the server refuses, character by character.
    let refused = refused_by(text_pattern);
    for code in 0..=0x7fu32 {
        let body = format!(r#"{{"channel":"sms","to":"1","text":"a\u{code:04x}b"}}"#);
        let answer = parse(body.as_bytes());
        assert_eq!(
            answer.is_err(),
            refused.contains(&code),
            "U+{code:04X}: {:?}",
            answer.err()
        );
    }
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
    for status in ["202", "400", "401", "413", "422", "429", "503"] {
        assert!(post.iter().any(|s| s == status), "POST lacks {status}");
    }
    let get = statuses(&spec, "/v1/messages/{message_id}", "get");
    for status in ["200", "400", "401", "404", "503"] {
        assert!(get.iter().any(|s| s == status), "GET lacks {status}");
    }
    // Every authenticated operation: two Authorization headers (400), none or an unknown key
    // (401, with its challenge), unavailable or too many connections (503).
    for (path, methods) in spec["paths"].as_object().expect("paths") {
        for (method, operation) in methods.as_object().expect("methods") {
            if operation.get("security") == Some(&serde_json::json!([])) {
                continue;
            }
            let documented = statuses(&spec, path, method);
            for status in ["400", "401", "503"] {
                assert!(
                    documented.iter().any(|s| s == status),
                    "{method} {path} lacks {status}"
                );
            }
        }
    }
    let responses = &spec["components"]["responses"];
    assert!(responses["Unauthorized"]["headers"]["WWW-Authenticate"].is_object());
    assert!(responses["Unavailable"]["headers"]["Retry-After"].is_object());
    assert!(
        statuses(&spec, "/v1/reports/ack", "post")
            .iter()
            .any(|s| s == "413")
    );
}
