//! The request body of `POST /v1/messages` and its checks: every field within its bound
//! ([`switchyard_schemas::limits`]), no control characters, no key given twice.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;
use switchyard_schemas::limits::{TooLong, forbidden_control, submission_violations};
use switchyard_schemas::{Attachment, Channel, Fallback, Priority, Submission};

use crate::json::{JsonError, Step, parse_strict, render};
use crate::problem::{FieldError, Problem};

/// Most messages in one request.
pub const MAX_BATCH: usize = 1000;

/// One message as a client sends it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageRequest {
    pub channel: Channel,
    pub to: String,
    pub from: Option<String>,
    #[serde(default)]
    pub text: String,
    pub subject: Option<String>,
    pub client_message_id: Option<String>,
    pub bill_code: Option<String>,
    #[serde(default)]
    pub priority: Priority,
    pub template_code: Option<String>,
    pub fallback: Option<FallbackRequest>,
    #[serde(default)]
    pub attachments: Vec<AttachmentRequest>,
    /// Milliseconds since the Unix epoch (a JSON integer, also when written `1.7e12` or
    /// `1700000000000.0`, as JSON Schema's `integer` allows).
    #[serde(default, deserialize_with = "integral")]
    pub expires_at: Option<i64>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FallbackRequest {
    pub channel: Channel,
    pub text: String,
    pub subject: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttachmentRequest {
    pub uri: String,
    pub content_type: String,
    pub file_name: Option<String>,
}

/// A parsed body: the messages and whether it was a batch. Each is a Submission still to be
/// stamped with its id, customer, client and acceptance time ([`stamp`]).
#[derive(Debug)]
pub struct Parsed {
    pub messages: Vec<Submission>,
    pub batch: bool,
}

/// Parse a body: one message, or `{"messages": [...]}` with 1 to 1,000 messages. Every invalid
/// message is reported, with its index and field.
pub fn parse(body: &[u8]) -> Result<Parsed, Problem> {
    let value = parse_strict(body).map_err(|e| match e {
        JsonError::Syntax(e) => Problem::invalid(format!("the body is not JSON: {e}"), Vec::new()),
        JsonError::DuplicateKey(path) => duplicate_key(&path),
    })?;
    let (items, batch) = match value {
        Value::Object(mut object) if object.contains_key("messages") => {
            match object.remove("messages") {
                Some(Value::Array(items)) => (items, true),
                _ => return Err(Problem::invalid("messages must be an array", Vec::new())),
            }
        }
        single @ Value::Object(_) => (vec![single], false),
        _ => {
            return Err(Problem::invalid(
                "the body must be a message object or {\"messages\": [...]}",
                Vec::new(),
            ));
        }
    };
    if items.is_empty() {
        return Err(Problem::invalid("messages is empty", Vec::new()));
    }
    if items.len() > MAX_BATCH {
        let detail = format!("{} messages; at most {MAX_BATCH} per request", items.len());
        return Err(Problem::invalid(
            detail,
            vec![FieldError {
                index: 0,
                field: "messages".into(),
                message: format!("has more than {MAX_BATCH} items"),
            }],
        ));
    }
    let mut messages = Vec::with_capacity(items.len());
    let mut errors = Vec::new();
    for (index, item) in items.into_iter().enumerate() {
        match serde_path_to_error::deserialize::<_, MessageRequest>(item) {
            Ok(message) => {
                let submission = message.into_submission();
                errors.extend(check(index, &submission));
                messages.push(submission);
            }
            Err(e) => errors.push(FieldError {
                index,
                field: field_of(&e),
                message: e.inner().to_string(),
            }),
        }
    }
    if !errors.is_empty() {
        let detail = format!("{} problem(s); nothing was accepted", errors.len());
        return Err(Problem::invalid(detail, errors));
    }
    Ok(Parsed { messages, batch })
}

/// The problem of a key given twice in one object: which message and which field.
fn duplicate_key(path: &[Step]) -> Problem {
    let (index, field) = match path {
        [Step::Key(messages), Step::Item(index), rest @ ..]
            if messages == "messages" && !rest.is_empty() =>
        {
            (*index, render(rest))
        }
        _ => (0, render(path)),
    };
    Problem::invalid(
        format!("{field} is given twice in one object; send each key once. Nothing was accepted"),
        vec![FieldError {
            index,
            field,
            message: "is given twice in one object".into(),
        }],
    )
}

/// The field an error is about: its path, or for an unknown or missing field, its name.
fn field_of(error: &serde_path_to_error::Error<serde_json::Error>) -> String {
    let path = error.path().to_string();
    if path != "." {
        return path;
    }
    let message = error.inner().to_string();
    message
        .split('`')
        .nth(1)
        .map(str::to_string)
        .unwrap_or_else(|| "body".to_string())
}

/// An optional integer that JSON may spell with a fraction of zero (`5.0`).
fn integral<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    let Some(number) = Option::<serde_json::Number>::deserialize(deserializer)? else {
        return Ok(None);
    };
    if let Some(n) = number.as_i64() {
        return Ok(Some(n));
    }
    match number.as_f64() {
        Some(f) if f.fract() == 0.0 && f > i64::MIN as f64 && f < i64::MAX as f64 => {
            Ok(Some(f as i64))
        }
        _ => Err(serde::de::Error::custom(format!(
            "{number} is not a whole number of milliseconds"
        ))),
    }
}

fn check(index: usize, s: &Submission) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let mut error = |field: String, message: String| {
        errors.push(FieldError {
            index,
            field,
            message,
        })
    };
    if s.to.trim().is_empty() {
        error("to".into(), "is required".into());
    }
    // A Kakao Alimtalk or RCS message may be only its template (as validate has it).
    let templates = matches!(s.channel, Channel::Kakao | Channel::Rcs);
    if s.text.is_empty() && templates && s.template_code.is_none() {
        error("text".into(), "is required (or template_code)".into());
    } else if s.text.is_empty() && !templates {
        error(
            "text".into(),
            format!(
                "is required for {} (template_code alone is for kakao and rcs only)",
                s.channel
            ),
        );
    }
    for TooLong { field, length, max } in submission_violations(s) {
        let message = if field.ends_with("(entries)") {
            format!("has {length} entries; at most {max} are allowed")
        } else {
            format!("is {length} characters long; at most {max} are allowed")
        };
        error(field, message);
    }
    each_string(s, |field, value| {
        if let Some((at, control)) = forbidden_control(value) {
            error(
                field(),
                format!(
                    "contains the control character U+{:04X} at character {at}; of the \
                     control characters only tab, line feed and carriage return are allowed",
                    u32::from(control)
                ),
            );
        }
    });
    errors
}

/// Every string of `s` a client gives, with a function naming its field.
fn each_string(s: &Submission, mut visit: impl FnMut(&dyn Fn() -> String, &str)) {
    let fixed = |name: &'static str| move || name.to_string();
    visit(&fixed("to"), &s.to);
    if let Some(from) = &s.from {
        visit(&fixed("from"), from);
    }
    visit(&fixed("text"), &s.text);
    if let Some(subject) = &s.subject {
        visit(&fixed("subject"), subject);
    }
    if let Some(id) = &s.client_message_id {
        visit(&fixed("client_message_id"), id);
    }
    if let Some(code) = &s.bill_code {
        visit(&fixed("bill_code"), code);
    }
    if let Some(code) = &s.template_code {
        visit(&fixed("template_code"), code);
    }
    if let Some(fallback) = &s.fallback {
        visit(&fixed("fallback.text"), &fallback.text);
        if let Some(subject) = &fallback.subject {
            visit(&fixed("fallback.subject"), subject);
        }
    }
    for (i, a) in s.attachments.iter().enumerate() {
        visit(&|| format!("attachments[{i}].uri"), &a.uri);
        visit(
            &|| format!("attachments[{i}].content_type"),
            &a.content_type,
        );
        if let Some(name) = &a.file_name {
            visit(&|| format!("attachments[{i}].file_name"), name);
        }
    }
    for (key, value) in &s.metadata {
        visit(&fixed("metadata (a key)"), key);
        visit(&|| format!("metadata.{key}"), value);
    }
}

/// `submission` as accepted: its new id, the client's customer and client, the time.
pub fn stamp(
    mut submission: Submission,
    message_id: String,
    customer_id: &str,
    client_id: &str,
    now: i64,
) -> Submission {
    submission.message_id = Some(message_id);
    submission.customer_id = customer_id.to_string();
    submission.client_id = Some(client_id.to_string());
    submission.accepted_at = now;
    submission
}

impl MessageRequest {
    /// The Submission of this message, not yet stamped ([`stamp`]): no id, customer or client.
    pub fn into_submission(self) -> Submission {
        Submission {
            message_id: None,
            customer_id: String::new(),
            client_id: None,
            client_message_id: self.client_message_id,
            channel: self.channel,
            to: self.to,
            from: self.from,
            text: self.text,
            subject: self.subject,
            bill_code: self.bill_code,
            priority: self.priority,
            template_code: self.template_code,
            fallback: self.fallback.map(|f| Fallback {
                channel: f.channel,
                text: f.text,
                subject: f.subject,
            }),
            attachments: self
                .attachments
                .into_iter()
                .map(|a| Attachment {
                    uri: a.uri,
                    content_type: a.content_type,
                    file_name: a.file_name,
                })
                .collect(),
            expires_at: self.expires_at,
            metadata: self.metadata,
            accepted_at: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_and_batch_bodies() {
        let one = parse(br#"{"channel":"sms","to":"01012345678","text":"hi"}"#).expect("single");
        assert!(!one.batch);
        let many = parse(br#"{"messages":[{"channel":"sms","to":"010","text":"a"},{"channel":"lms","to":"010","text":"b"}]}"#)
            .expect("batch");
        assert_eq!((many.batch, many.messages.len()), (true, 2));
    }

    #[test]
    fn every_bad_message_is_reported_with_its_index() {
        let problem = parse(br#"{"messages":[{"channel":"sms","to":"010","text":"ok"},{"channel":"fax","to":"1","text":"x"},{"channel":"sms","to":"","text":""}]}"#)
            .expect_err("invalid");
        assert_eq!(problem.status, 422);
        let fields: Vec<(usize, &str)> = problem
            .errors
            .iter()
            .map(|e| (e.index, e.field.as_str()))
            .collect();
        assert_eq!(fields, vec![(1, "channel"), (2, "to"), (2, "text")]);
    }

    #[test]
    fn limits_and_shapes() {
        let too_many = format!(
            r#"{{"messages":[{}]}}"#,
            vec![r#"{"channel":"sms","to":"1","text":"x"}"#; 1001].join(",")
        );
        assert_eq!(
            parse(too_many.as_bytes()).expect_err("too many").status,
            422
        );
        assert_eq!(parse(b"[1,2]").expect_err("array").status, 422);
        assert_eq!(parse(b"{nope").expect_err("not json").status, 422);
        let whole = parse(br#"{"channel":"sms","to":"1","text":"x","expires_at":60113.0}"#)
            .expect("a whole float is an integer");
        assert_eq!(whole.messages[0].expires_at, Some(60113));
        let none = parse(br#"{"channel":"sms","to":"1","text":"x","expires_at":null}"#)
            .expect("null is absent");
        assert_eq!(none.messages[0].expires_at, None);
        let fraction = parse(br#"{"channel":"sms","to":"1","text":"x","expires_at":1.5}"#)
            .expect_err("a fraction");
        assert_eq!(fraction.errors[0].field, "expires_at");
        let below =
            parse(br#"{"channel":"sms","to":"1","text":"x","expires_at":-9223372036854775809}"#)
                .expect_err("below i64");
        assert_eq!(below.errors[0].field, "expires_at");
        // 128 characters (as JSON Schema's maxLength counts), not bytes.
        let korean = format!(
            r#"{{"channel":"sms","to":"1","text":"x","client_message_id":"{}"}}"#,
            "가".repeat(128)
        );
        assert!(parse(korean.as_bytes()).is_ok());
        let longer = format!(
            r#"{{"channel":"sms","to":"1","text":"x","client_message_id":"{}"}}"#,
            "a".repeat(129)
        );
        assert_eq!(
            parse(longer.as_bytes()).expect_err("129").errors[0].field,
            "client_message_id"
        );
        let unknown = parse(br#"{"channel":"sms","to":"1","text":"x","colour":"red"}"#)
            .expect_err("unknown field");
        assert_eq!(unknown.errors[0].field, "colour");
    }

    /// The (index, field) pairs a refused body names.
    fn named(body: &str) -> Vec<(usize, String)> {
        let problem = parse(body.as_bytes()).expect_err("refused");
        assert_eq!(problem.status, 422, "{body}");
        problem
            .errors
            .iter()
            .map(|e| (e.index, e.field.clone()))
            .collect()
    }

    fn one(field: &str) -> Vec<(usize, String)> {
        vec![(0, field.to_string())]
    }

    #[test]
    fn poison_lengths_are_refused_naming_the_field() {
        let to = format!(
            r#"{{"channel":"sms","to":"{}","text":"x"}}"#,
            "1".repeat(500_000)
        );
        assert_eq!(named(&to), one("to"));
        let bill = format!(
            r#"{{"channel":"sms","to":"1","text":"x","bill_code":"{}"}}"#,
            "b".repeat(600_000)
        );
        assert_eq!(named(&bill), one("bill_code"));
        let from = format!(
            r#"{{"channel":"sms","to":"1","text":"x","from":"{}"}}"#,
            "f".repeat(600_000)
        );
        assert_eq!(named(&from), one("from"));
        // The bounds are the schema's table: one character more than each is refused, the
        // bound itself is not (65 and 64 written out, not read from the table under test).
        let template = |n: usize| {
            format!(
                r#"{{"channel":"kakao","to":"1","template_code":"{}"}}"#,
                "t".repeat(n)
            )
        };
        assert!(parse(template(64).as_bytes()).is_ok());
        assert_eq!(named(&template(65)), one("template_code"));
    }

    #[test]
    fn fallback_attachments_and_metadata_are_bounded_too() {
        let fallback = format!(
            r#"{{"channel":"kakao","to":"1","template_code":"T","fallback":{{"channel":"sms","text":"{}","subject":"{}"}}}}"#,
            "x".repeat(100_001),
            "s".repeat(999)
        );
        assert_eq!(
            named(&fallback),
            vec![
                (0, "fallback.text".to_string()),
                (0, "fallback.subject".to_string())
            ]
        );
        let attachment = r#"{"uri":"https://x/a.jpg","content_type":"image/jpeg"}"#;
        let eleven = format!(
            r#"{{"channel":"mms","to":"1","text":"x","attachments":[{}]}}"#,
            [attachment; 11].join(",")
        );
        assert_eq!(named(&eleven), one("attachments (entries)"));
        let ten = eleven.replacen(&format!("{attachment},"), "", 1);
        assert!(parse(ten.as_bytes()).is_ok());
        let long_uri = format!(
            r#"{{"channel":"mms","to":"1","text":"x","attachments":[{attachment},{{"uri":"{}","content_type":"image/png"}}]}}"#,
            "u".repeat(2049)
        );
        assert_eq!(named(&long_uri), one("attachments[1].uri"));
        let entries: Vec<String> = (0..33).map(|i| format!(r#""k{i}":"v""#)).collect();
        let metadata = format!(
            r#"{{"channel":"sms","to":"1","text":"x","metadata":{{{}}}}}"#,
            entries.join(",")
        );
        assert_eq!(named(&metadata), one("metadata (entries)"));
        let value = format!(
            r#"{{"channel":"sms","to":"1","text":"x","metadata":{{"k":"{}"}}}}"#,
            "v".repeat(513)
        );
        assert_eq!(named(&value), one("metadata.k"));
        // In a batch, the message's index.
        let batch = format!(
            r#"{{"messages":[{{"channel":"sms","to":"1","text":"x"}},{}]}}"#,
            value
        );
        assert_eq!(named(&batch), vec![(1, "metadata.k".to_string())]);
    }

    #[test]
    fn control_characters_are_refused_but_tab_newline_and_return_are_text() {
        assert_eq!(
            named(r#"{"channel":"sms","to":"01012345678","text":"\u0000"}"#),
            one("text")
        );
        for control in ["\\u0001", "\\u0008", "\\u000b", "\\u000c", "\\u001f"] {
            let body = format!(r#"{{"channel":"sms","to":"1","text":"a{control}b"}}"#);
            assert_eq!(named(&body), one("text"), "{control}");
        }
        assert!(parse(br#"{"channel":"sms","to":"1","text":"a\tb\nc\r\n"}"#).is_ok());
        // DEL is refused too; C1 controls (U+0080 to U+009F) are not ASCII: allowed.
        assert_eq!(
            named(r#"{"channel":"sms","to":"1","text":"\u007f"}"#),
            one("text")
        );
        assert!(parse(br#"{"channel":"sms","to":"1","text":"\u0085"}"#).is_ok());
        assert_eq!(
            named(r#"{"channel":"sms","to":"010\u00001234","text":"x"}"#),
            one("to")
        );
        assert_eq!(
            named(
                r#"{"channel":"sms","to":"1","text":"x","fallback":{"channel":"sms","text":"\u0000"}}"#
            ),
            one("fallback.text")
        );
        assert_eq!(
            named(r#"{"channel":"sms","to":"1","text":"x","metadata":{"k":"\u0007"}}"#),
            one("metadata.k")
        );
        let message = &parse(br#"{"channel":"sms","to":"1","text":"\u0000"}"#)
            .expect_err("NUL")
            .errors[0]
            .message;
        assert!(message.contains("U+0000"), "{message}");
    }

    #[test]
    fn a_template_alone_is_a_kakao_or_rcs_message_only() {
        for channel in ["sms", "lms", "mms", "email", "push", "chat"] {
            let body = format!(r#"{{"channel":"{channel}","to":"1","template_code":"T1"}}"#);
            assert_eq!(named(&body), one("text"), "{channel}");
            let empty =
                format!(r#"{{"channel":"{channel}","to":"1","text":"","template_code":"T1"}}"#);
            assert_eq!(named(&empty), one("text"), "{channel}");
        }
        for channel in ["kakao", "rcs"] {
            let body = format!(r#"{{"channel":"{channel}","to":"1","template_code":"T1"}}"#);
            assert!(parse(body.as_bytes()).is_ok(), "{channel}");
            let both =
                format!(r#"{{"channel":"{channel}","to":"1","text":"hi","template_code":"T1"}}"#);
            assert!(parse(both.as_bytes()).is_ok(), "{channel}");
            let neither = format!(r#"{{"channel":"{channel}","to":"1"}}"#);
            assert_eq!(named(&neither), one("text"), "{channel}");
        }
    }

    #[test]
    fn a_key_given_twice_is_refused_naming_it() {
        assert_eq!(
            named(r#"{"channel":"sms","to":"+1","to":"01012345678","text":"x"}"#),
            one("to")
        );
        assert_eq!(
            named(r#"{"channel":"sms","to":"1","text":"x","metadata":{"a":"1","a":"2"}}"#),
            one("metadata.a")
        );
        assert_eq!(
            named(
                r#"{"messages":[{"channel":"sms","to":"1","text":"x"},{"channel":"sms","channel":"lms","to":"1","text":"x"}]}"#
            ),
            vec![(1, "channel".to_string())]
        );
        assert_eq!(
            named(r#"{"messages":[{"channel":"sms","to":"1","text":"x"}],"messages":[]}"#),
            one("messages")
        );
    }
}
