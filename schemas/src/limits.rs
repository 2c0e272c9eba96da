//! The one table of field bounds of a submission: the ingress refuses a longer field with 422
//! naming it, validate rejects a direct producer's (`field_too_long`), and the OpenAPI document
//! states each as `maxLength`. Lengths count characters (Unicode scalar values), as JSON
//! Schema's `maxLength` does.

use crate::{Fallback, Submission};

/// `message_id`, `customer_id` and `client_id` of a direct producer's record (the ingress sets
/// them itself).
pub const ID_MAX: usize = 128;
/// `to`: an e-mail address (≤ 320), a phone number, a push token (FCM ≈ 163, APNs 64 hex
/// characters) or a chat channel.
pub const TO_MAX: usize = 512;
/// `from`: a sender number, an e-mail address or a Kakao sender key.
pub const FROM_MAX: usize = 320;
/// `text` (and `fallback.text`): far above LMS's 2,000 bytes, room for an e-mail body. Every
/// field at its bound in four-byte characters comes to about 980 kB, under the broker's 1 MB;
/// an output that still does not fit takes the runtime's poison path.
pub const TEXT_MAX: usize = 100_000;
/// `subject` (and `fallback.subject`): RFC 5322's line limit.
pub const SUBJECT_MAX: usize = 998;
/// `bill_code`.
pub const BILL_CODE_MAX: usize = 64;
/// `template_code` (Kakao's template codes are at most 30).
pub const TEMPLATE_CODE_MAX: usize = 64;
/// `client_message_id`.
pub const CLIENT_MESSAGE_ID_MAX: usize = 128;
/// A `metadata` key.
pub const METADATA_KEY_MAX: usize = 64;
/// A `metadata` value.
pub const METADATA_VALUE_MAX: usize = 512;
/// Entries in `metadata`.
pub const METADATA_ENTRIES_MAX: usize = 32;
/// `attachments[].uri`.
pub const ATTACHMENT_URI_MAX: usize = 2048;
/// `attachments[].content_type` (RFC 6838: 127 + "/" + 127).
pub const ATTACHMENT_CONTENT_TYPE_MAX: usize = 255;
/// `attachments[].file_name`.
pub const ATTACHMENT_FILE_NAME_MAX: usize = 255;
/// Entries in `attachments`.
pub const ATTACHMENTS_MAX: usize = 10;

/// A field over its bound.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} is {length} characters long; at most {max} are allowed")]
pub struct TooLong {
    /// The field as the API names it (`to`, `metadata.<key>`, `attachments[0].uri`).
    pub field: String,
    pub length: usize,
    pub max: usize,
}

/// `Err` when `value` is longer than `max` characters.
pub fn check(field: &str, value: &str, max: usize) -> Result<(), TooLong> {
    // Cheap first: a string of at most `max` bytes has at most `max` characters.
    if value.len() <= max {
        return Ok(());
    }
    let length = value.chars().count();
    if length <= max {
        return Ok(());
    }
    Err(TooLong {
        field: field.to_string(),
        length,
        max,
    })
}

/// Every field of `submission` over its bound, in the order of the schema.
pub fn submission_violations(submission: &Submission) -> Vec<TooLong> {
    let mut found = Vec::new();
    let mut one = |field: &str, value: &str, max: usize| {
        if let Err(e) = check(field, value, max) {
            found.push(e);
        }
    };
    if let Some(id) = &submission.message_id {
        one("message_id", id, ID_MAX);
    }
    one("customer_id", &submission.customer_id, ID_MAX);
    if let Some(id) = &submission.client_id {
        one("client_id", id, ID_MAX);
    }
    if let Some(id) = &submission.client_message_id {
        one("client_message_id", id, CLIENT_MESSAGE_ID_MAX);
    }
    one("to", &submission.to, TO_MAX);
    if let Some(from) = &submission.from {
        one("from", from, FROM_MAX);
    }
    one("text", &submission.text, TEXT_MAX);
    if let Some(subject) = &submission.subject {
        one("subject", subject, SUBJECT_MAX);
    }
    if let Some(code) = &submission.bill_code {
        one("bill_code", code, BILL_CODE_MAX);
    }
    if let Some(code) = &submission.template_code {
        one("template_code", code, TEMPLATE_CODE_MAX);
    }
    if let Some(Fallback { text, subject, .. }) = &submission.fallback {
        one("fallback.text", text, TEXT_MAX);
        if let Some(subject) = subject {
            one("fallback.subject", subject, SUBJECT_MAX);
        }
    }
    for (i, attachment) in submission.attachments.iter().enumerate() {
        one(
            &format!("attachments[{i}].uri"),
            &attachment.uri,
            ATTACHMENT_URI_MAX,
        );
        one(
            &format!("attachments[{i}].content_type"),
            &attachment.content_type,
            ATTACHMENT_CONTENT_TYPE_MAX,
        );
        if let Some(name) = &attachment.file_name {
            one(
                &format!("attachments[{i}].file_name"),
                name,
                ATTACHMENT_FILE_NAME_MAX,
            );
        }
    }
    for (key, value) in &submission.metadata {
        one("metadata (a key)", key, METADATA_KEY_MAX);
        one(
            &format!("metadata.{}", truncate(key, METADATA_KEY_MAX)),
            value,
            METADATA_VALUE_MAX,
        );
    }
    if submission.metadata.len() > METADATA_ENTRIES_MAX {
        found.push(TooLong {
            field: "metadata (entries)".into(),
            length: submission.metadata.len(),
            max: METADATA_ENTRIES_MAX,
        });
    }
    if submission.attachments.len() > ATTACHMENTS_MAX {
        found.push(TooLong {
            field: "attachments (entries)".into(),
            length: submission.attachments.len(),
            max: ATTACHMENTS_MAX,
        });
    }
    found
}

/// The first control character of `value` that a message may not carry (every C0 control and
/// DEL but tab, line feed and carriage return): its position in characters and the character.
pub fn forbidden_control(value: &str) -> Option<(usize, char)> {
    value
        .chars()
        .enumerate()
        .find(|(_, c)| c.is_ascii_control() && !matches!(c, '\t' | '\n' | '\r'))
}

/// `value` cut to at most `max` characters (for repeating a refused field in a report).
pub fn truncate(value: &str, max: usize) -> &str {
    match value.char_indices().nth(max) {
        Some((end, _)) => &value[..end],
        None => value,
    }
}

/// A copy of `submission` with every field cut to its bound and at most the allowed entries:
/// what a rejection may repeat of a refused submission without growing past the broker's
/// record limit.
pub fn truncated(submission: &Submission) -> Submission {
    let cut = |value: &str, max: usize| truncate(value, max).to_string();
    let cut_opt = |value: &Option<String>, max: usize| value.as_deref().map(|v| cut(v, max));
    let mut copy = submission.clone();
    copy.message_id = cut_opt(&submission.message_id, ID_MAX);
    copy.customer_id = cut(&submission.customer_id, ID_MAX);
    copy.client_id = cut_opt(&submission.client_id, ID_MAX);
    copy.client_message_id = cut_opt(&submission.client_message_id, CLIENT_MESSAGE_ID_MAX);
    copy.to = cut(&submission.to, TO_MAX);
    copy.from = cut_opt(&submission.from, FROM_MAX);
    copy.text = cut(&submission.text, TEXT_MAX);
    copy.subject = cut_opt(&submission.subject, SUBJECT_MAX);
    copy.bill_code = cut_opt(&submission.bill_code, BILL_CODE_MAX);
    copy.template_code = cut_opt(&submission.template_code, TEMPLATE_CODE_MAX);
    if let Some(fallback) = &mut copy.fallback {
        fallback.text = cut(&fallback.text, TEXT_MAX);
        fallback.subject = cut_opt(&fallback.subject, SUBJECT_MAX);
    }
    copy.attachments.truncate(ATTACHMENTS_MAX);
    for attachment in &mut copy.attachments {
        attachment.uri = cut(&attachment.uri, ATTACHMENT_URI_MAX);
        attachment.content_type = cut(&attachment.content_type, ATTACHMENT_CONTENT_TYPE_MAX);
        attachment.file_name = cut_opt(&attachment.file_name, ATTACHMENT_FILE_NAME_MAX);
    }
    copy.metadata = submission
        .metadata
        .iter()
        .take(METADATA_ENTRIES_MAX)
        .map(|(k, v)| (cut(k, METADATA_KEY_MAX), cut(v, METADATA_VALUE_MAX)))
        .collect();
    copy
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Channel;

    fn submission(to: &str) -> Submission {
        Submission {
            message_id: Some("m1".into()),
            customer_id: "acme".into(),
            client_id: None,
            client_message_id: None,
            channel: Channel::Sms,
            to: to.into(),
            from: None,
            text: "hi".into(),
            subject: None,
            bill_code: None,
            priority: Default::default(),
            template_code: None,
            fallback: None,
            attachments: Vec::new(),
            expires_at: None,
            metadata: Default::default(),
            accepted_at: 0,
        }
    }

    #[test]
    fn a_field_at_its_bound_passes_and_one_more_character_is_named() {
        assert!(submission_violations(&submission(&"1".repeat(TO_MAX))).is_empty());
        let over = submission_violations(&submission(&"1".repeat(TO_MAX + 1)));
        assert_eq!(
            over,
            vec![TooLong {
                field: "to".into(),
                length: TO_MAX + 1,
                max: TO_MAX
            }]
        );
    }

    #[test]
    fn nul_and_other_controls_are_forbidden_but_tab_and_newlines_are_not() {
        assert_eq!(forbidden_control("\u{0}"), Some((0, '\u{0}')));
        assert_eq!(forbidden_control("a\u{1b}[31m"), Some((1, '\u{1b}')));
        assert_eq!(forbidden_control("a\u{7f}"), Some((1, '\u{7f}')));
        assert_eq!(forbidden_control("line\r\nnext\tcol 한글"), None);
    }

    #[test]
    fn lengths_count_characters_not_bytes() {
        // 512 Hangul syllables are 1,536 bytes of UTF-8 but 512 characters.
        assert!(check("to", &"가".repeat(TO_MAX), TO_MAX).is_ok());
        assert!(check("to", &"가".repeat(TO_MAX + 1), TO_MAX).is_err());
        assert_eq!(truncate("가나다", 2), "가나");
        assert_eq!(truncate("ab", 5), "ab");
    }

    #[test]
    fn truncated_copy_has_no_violation_left() {
        let mut big = submission(&"9".repeat(500_000));
        big.bill_code = Some("b".repeat(600_000));
        big.from = Some("f".repeat(600_000));
        for i in 0..100 {
            big.metadata
                .insert(format!("{i}{}", "k".repeat(100)), "v".repeat(1000));
        }
        let fields: Vec<String> = submission_violations(&big)
            .into_iter()
            .map(|v| v.field)
            .collect();
        assert!(fields.contains(&"to".to_string()));
        assert!(fields.contains(&"bill_code".to_string()));
        assert!(fields.contains(&"metadata (entries)".to_string()));
        let cut = truncated(&big);
        assert_eq!(submission_violations(&cut), Vec::new());
        assert_eq!(cut.to.len(), TO_MAX);
    }
}
