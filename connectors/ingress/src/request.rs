//! The request body of `POST /v1/messages` and its checks.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;
use switchyard_schemas::{Attachment, Channel, Fallback, Priority, Submission};

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

/// A parsed body: the messages and whether it was a batch.
#[derive(Debug)]
pub struct Parsed {
    pub messages: Vec<MessageRequest>,
    pub batch: bool,
}

/// Parse a body: one message, or `{"messages": [...]}` with 1 to 1,000 messages. Every invalid
/// message is reported, with its index and field.
pub fn parse(body: &[u8]) -> Result<Parsed, Problem> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| Problem::invalid(format!("the body is not JSON: {e}"), Vec::new()))?;
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
                errors.extend(check(index, &message));
                messages.push(message);
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

fn check(index: usize, m: &MessageRequest) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let mut error = |field: &str, message: &str| {
        errors.push(FieldError {
            index,
            field: field.into(),
            message: message.into(),
        })
    };
    if m.to.trim().is_empty() {
        error("to", "is required");
    }
    if m.text.is_empty() && m.template_code.is_none() {
        error("text", "is required (or template_code)");
    }
    if m.client_message_id
        .as_ref()
        .is_some_and(|id| id.chars().count() > 128)
    {
        error("client_message_id", "is longer than 128 characters");
    }
    errors
}

impl MessageRequest {
    /// The Submission for the intake topic.
    pub fn into_submission(
        self,
        message_id: String,
        customer_id: &str,
        client_id: &str,
        now: i64,
    ) -> Submission {
        Submission {
            message_id: Some(message_id),
            customer_id: customer_id.to_string(),
            client_id: Some(client_id.to_string()),
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
            accepted_at: now,
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
}
