//! validate: `messages.accepted` → `messages.validated` or `messages.rejected`.
//! Known, enabled customer and client (a client of another customer is refused and dropped from
//! the rejection, so its report URL never sees it); channel enabled; required fields; recipient format;
//! bill code; expiry; text length by channel (SMS 90 bytes and LMS/MMS 2,000 bytes in EUC-KR).

use switchyard_runtime::{ConfigTables, Origin, Output, Processor, StageError};
use switchyard_schemas::{
    Channel, Rejection, Submission, ValidatedMessage, derived_message_id, now_millis,
};

/// Output topics.
pub use switchyard_runtime::names::{REJECTED, VALIDATED};

/// Why a submission is refused (the `code` of a Rejection).
pub mod codes {
    pub const UNKNOWN_CUSTOMER: &str = "unknown_customer";
    pub const CUSTOMER_DISABLED: &str = "customer_disabled";
    pub const UNKNOWN_CLIENT: &str = "unknown_client";
    /// The client named belongs to another customer.
    pub const CLIENT_CUSTOMER_MISMATCH: &str = "client_customer_mismatch";
    pub const CHANNEL_NOT_ENABLED: &str = "channel_not_enabled";
    pub const MISSING_FIELD: &str = "missing_field";
    pub const INVALID_RECIPIENT: &str = "invalid_recipient";
    pub const UNKNOWN_BILL_CODE: &str = "unknown_bill_code";
    pub const TEXT_TOO_LONG: &str = "text_too_long";
    pub const UNENCODABLE_TEXT: &str = "unencodable_text";
    pub const EXPIRED: &str = "expired";
}

/// The verdict on one submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Valid(ValidatedMessage),
    Rejected(Rejection),
}

/// Validate one submission read at (topic, partition, offset) at time `now`.
pub fn validate(
    mut submission: Submission,
    origin: (&str, i32, i64),
    tables: &ConfigTables,
    now: i64,
) -> Verdict {
    let message_id = submission
        .message_id
        .clone()
        .filter(|id| !id.is_empty())
        .unwrap_or_else(|| derived_message_id(origin.0, origin.1, origin.2));
    submission.message_id = Some(message_id.clone());
    match check(&submission, tables, now) {
        Ok((encoding, segments)) => Verdict::Valid(ValidatedMessage {
            message_id,
            customer_id: submission.customer_id.clone(),
            submission,
            encoding: encoding.to_string(),
            segments,
            validated_at: now,
        }),
        Err((code, detail)) => {
            if code == codes::CLIENT_CUSTOMER_MISMATCH {
                // The client is another customer's: its report URL must never see this.
                submission.client_id = None;
            }
            Verdict::Rejected(Rejection {
                message_id,
                customer_id: submission.customer_id.clone(),
                code: code.to_string(),
                detail,
                submission,
                rejected_at: now,
            })
        }
    }
}

type Refusal = (&'static str, String);

fn check(s: &Submission, tables: &ConfigTables, now: i64) -> Result<(&'static str, i32), Refusal> {
    let customer = tables.customers.get(&s.customer_id).ok_or_else(|| {
        (
            codes::UNKNOWN_CUSTOMER,
            format!("customer {:?} is not configured", s.customer_id),
        )
    })?;
    if !customer.enabled {
        return Err((
            codes::CUSTOMER_DISABLED,
            format!("customer {:?} is disabled", s.customer_id),
        ));
    }
    if let Some(client_id) = &s.client_id {
        let client = tables.clients.get(client_id);
        if let Some(c) = &client
            && c.customer_id != s.customer_id
        {
            return Err((
                codes::CLIENT_CUSTOMER_MISMATCH,
                format!(
                    "client {client_id:?} does not belong to customer {:?}",
                    s.customer_id
                ),
            ));
        }
        if client.as_ref().is_none_or(|c| !c.enabled) {
            return Err((
                codes::UNKNOWN_CLIENT,
                format!(
                    "client {client_id:?} is not an enabled client of {:?}",
                    s.customer_id
                ),
            ));
        }
    }
    if !customer.channels.contains(&s.channel) {
        return Err((
            codes::CHANNEL_NOT_ENABLED,
            format!(
                "channel {} is not enabled for {:?}",
                s.channel, s.customer_id
            ),
        ));
    }
    if s.to.trim().is_empty() {
        return Err((codes::MISSING_FIELD, "to is empty".into()));
    }
    if s.text.is_empty() && s.template_code.is_none() {
        return Err((codes::MISSING_FIELD, "text is empty".into()));
    }
    if matches!(s.channel, Channel::Email) && s.subject.as_deref().is_none_or(str::is_empty) {
        return Err((codes::MISSING_FIELD, "email needs a subject".into()));
    }
    if matches!(s.channel, Channel::Kakao) && s.template_code.is_none() {
        return Err((codes::MISSING_FIELD, "kakao needs a template_code".into()));
    }
    check_recipient(s)?;
    if let Some(bill_code) = &s.bill_code
        && !customer.bill_codes.is_empty()
        && !customer.bill_codes.contains(bill_code)
    {
        return Err((
            codes::UNKNOWN_BILL_CODE,
            format!("bill code {bill_code:?} is not one of {:?}", s.customer_id),
        ));
    }
    if let Some(expires_at) = s.expires_at
        && expires_at <= now
    {
        return Err((
            codes::EXPIRED,
            format!("expired at {expires_at} before validation at {now}"),
        ));
    }
    length(s)
}

/// Phone channels need a Korean mobile number (01X, 10–11 digits) or an international +number.
fn check_recipient(s: &Submission) -> Result<(), Refusal> {
    let phone = matches!(
        s.channel,
        Channel::Sms | Channel::Lms | Channel::Mms | Channel::Kakao | Channel::Rcs
    );
    if phone {
        let digits = s.to.strip_prefix('+').unwrap_or(&s.to);
        let valid = digits.chars().all(|c| c.is_ascii_digit())
            && if s.to.starts_with('+') {
                (8..=15).contains(&digits.len())
            } else {
                digits.starts_with("01") && (10..=11).contains(&digits.len())
            };
        if !valid {
            return Err((
                codes::INVALID_RECIPIENT,
                format!("{:?} is not a mobile number", s.to),
            ));
        }
    }
    if matches!(s.channel, Channel::Email) && !s.to.contains('@') {
        return Err((
            codes::INVALID_RECIPIENT,
            format!("{:?} is not an e-mail address", s.to),
        ));
    }
    Ok(())
}

/// The text's encoding and segment count, or why it does not fit the channel.
fn length(s: &Submission) -> Result<(&'static str, i32), Refusal> {
    let euc_kr_limit = match s.channel {
        Channel::Sms => Some(90),
        Channel::Lms | Channel::Mms => Some(2000),
        _ => None,
    };
    if let Some(limit) = euc_kr_limit {
        let (bytes, _, unmappable) = encoding_rs::EUC_KR.encode(&s.text);
        if unmappable {
            return Err((
                codes::UNENCODABLE_TEXT,
                format!(
                    "text has characters EUC-KR cannot encode ({} channel)",
                    s.channel
                ),
            ));
        }
        if bytes.len() > limit {
            return Err((
                codes::TEXT_TOO_LONG,
                format!(
                    "{} bytes in EUC-KR, {} allows {limit}",
                    bytes.len(),
                    s.channel
                ),
            ));
        }
        return Ok(("euc-kr", 1));
    }
    let char_limit = match s.channel {
        Channel::Kakao => 1000,
        Channel::Rcs => 1300,
        Channel::Push | Channel::Chat => 4000,
        _ => 1_000_000,
    };
    let chars = s.text.chars().count();
    if chars > char_limit {
        return Err((
            codes::TEXT_TOO_LONG,
            format!("{chars} characters, {} allows {char_limit}", s.channel),
        ));
    }
    Ok(("utf-8", 1))
}

/// The validate stage.
#[derive(Debug, Clone)]
pub struct Validate {
    pub tables: ConfigTables,
}

impl Processor for Validate {
    type Input = Submission;

    fn process(&self, input: Submission, origin: Origin<'_>) -> Result<Vec<Output>, StageError> {
        let verdict = validate(
            input,
            (origin.topic, origin.partition, origin.offset),
            &self.tables,
            now_millis(),
        );
        Ok(vec![match verdict {
            Verdict::Valid(message) => {
                tracing::debug!(stage = "validate", message_id = %message.message_id, "valid");
                Output::new(VALIDATED, message.message_id.clone(), message)
            }
            Verdict::Rejected(rejection) => {
                tracing::info!(stage = "validate", message_id = %rejection.message_id, code = %rejection.code, "rejected");
                Output::new(REJECTED, rejection.message_id.clone(), rejection)
            }
        }])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{submission, tables};

    fn verdict_code(s: Submission) -> Option<String> {
        match validate(s, ("messages.accepted", 0, 7), &tables(), 1_000) {
            Verdict::Valid(_) => None,
            Verdict::Rejected(r) => Some(r.code),
        }
    }

    #[test]
    fn a_good_sms_is_valid_and_keeps_its_id() {
        match validate(
            submission("m-1"),
            ("messages.accepted", 0, 7),
            &tables(),
            1_000,
        ) {
            Verdict::Valid(v) => {
                assert_eq!(v.message_id, "m-1");
                assert_eq!(v.encoding, "euc-kr");
                assert_eq!(v.validated_at, 1_000);
            }
            other => panic!("expected valid, got {other:?}"),
        }
    }

    #[test]
    fn a_missing_id_is_derived_from_the_intake_position() {
        let mut s = submission("");
        s.message_id = None;
        let Verdict::Valid(first) = validate(s.clone(), ("messages.accepted", 2, 9), &tables(), 1)
        else {
            panic!()
        };
        let Verdict::Valid(again) = validate(s, ("messages.accepted", 2, 9), &tables(), 2) else {
            panic!()
        };
        assert_eq!(first.message_id, again.message_id);
        assert_eq!(
            first.message_id,
            derived_message_id("messages.accepted", 2, 9)
        );
    }

    #[test]
    fn refusals_carry_their_code() {
        let mut unknown = submission("m");
        unknown.customer_id = "nobody".into();
        assert_eq!(
            verdict_code(unknown).as_deref(),
            Some(codes::UNKNOWN_CUSTOMER)
        );

        let mut email = submission("m");
        email.channel = Channel::Email;
        assert_eq!(
            verdict_code(email).as_deref(),
            Some(codes::CHANNEL_NOT_ENABLED)
        );

        let mut ghost_client = submission("m");
        ghost_client.client_id = Some("ghost".into());
        assert_eq!(
            verdict_code(ghost_client).as_deref(),
            Some(codes::UNKNOWN_CLIENT)
        );

        let mut bad_number = submission("m");
        bad_number.to = "12345".into();
        assert_eq!(
            verdict_code(bad_number).as_deref(),
            Some(codes::INVALID_RECIPIENT)
        );

        let mut expired = submission("m");
        expired.expires_at = Some(999);
        assert_eq!(verdict_code(expired).as_deref(), Some(codes::EXPIRED));

        let mut bill = submission("m");
        bill.bill_code = Some("NOPE".into());
        assert_eq!(
            verdict_code(bill).as_deref(),
            Some(codes::UNKNOWN_BILL_CODE)
        );

        let mut empty = submission("m");
        empty.text = String::new();
        assert_eq!(verdict_code(empty).as_deref(), Some(codes::MISSING_FIELD));
    }

    #[test]
    fn sms_length_is_counted_in_euc_kr_bytes() {
        let mut fits = submission("m");
        fits.text = "가".repeat(45); // 2 bytes each in EUC-KR: exactly 90
        assert_eq!(verdict_code(fits), None);
        let mut long = submission("m");
        long.text = "가".repeat(46);
        assert_eq!(verdict_code(long).as_deref(), Some(codes::TEXT_TOO_LONG));
        let mut lms = submission("m");
        lms.channel = Channel::Lms;
        lms.text = "가".repeat(1000);
        assert_eq!(verdict_code(lms), None);
        let mut emoji = submission("m");
        emoji.text = "hi 😀".into();
        assert_eq!(
            verdict_code(emoji).as_deref(),
            Some(codes::UNENCODABLE_TEXT)
        );
    }

    #[test]
    fn another_customers_client_is_refused_and_dropped_from_the_rejection() {
        // other-client belongs to beta; this submission is acme's.
        let mut foreign = submission("m");
        foreign.client_id = Some("other-client".into());
        let Verdict::Rejected(rejection) =
            validate(foreign, ("messages.accepted", 0, 7), &tables(), 1_000)
        else {
            panic!("a cross-tenant client was accepted")
        };
        assert_eq!(rejection.code, codes::CLIENT_CUSTOMER_MISMATCH);
        assert_eq!(rejection.customer_id, "acme");
        assert_eq!(rejection.submission.client_id, None);
        assert!(
            rejection.detail.contains("other-client"),
            "{}",
            rejection.detail
        );
        let report = crate::report::from_rejection(&rejection, 2_000);
        assert_eq!(report.client_id, None);
        assert_eq!(report.customer_id, "acme");
    }
}
