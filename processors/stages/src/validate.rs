//! validate: `messages.accepted` → `messages.validated`, `messages.rejected` or
//! `messages.held`.
//! Known, enabled customer and client (a client of another customer is refused and dropped from
//! the rejection, so its report URL never sees it); channel enabled; required fields; recipient
//! format; expiry; bill code; content policy (ad marking and opt-out, keyword blocklist, no ads
//! in the quiet hours: held or rejected as the customer chose); text length by channel (SMS 90
//! and LMS/MMS 2,000 bytes in EUC-KR/CP949, an SMS upgraded to LMS if the customer opted in;
//! GSM-7/UCS-2 segments abroad). The rules are plain functions in [`crate::policy`]; the time
//! is the injected `now`.

use std::sync::Arc;

use futures::future::BoxFuture;
use switchyard_runtime::names::{BALANCE_COMMANDS, BALANCE_LEDGER, STATE_VALIDATE};
use switchyard_runtime::{
    ConfigTables, Origin, Output, Processor, StageError, StageInput, StateAccess, StateStore,
    bill_code_key,
};
use switchyard_schemas::{
    BalanceCommand, Channel, Codec, CodecError, ContentPolicy, CustomerConfig, HeldMessage,
    NightAds, Rejection, Submission, ValidatedMessage, derived_message_id, limits, unproducible,
};

use crate::admit::admit;
use crate::balances;
use crate::clock::Clock;
use crate::duplicates;
use crate::pacing::{self, Ticket, Wait};
use crate::policy::{self, ad_marking, bill_codes, encoding, keywords, night_hours, rules};

/// Output topics.
pub use switchyard_runtime::names::{HELD, PACED, REJECTED, VALIDATED};

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
    /// The bill code is neither in the customer's list nor in `config.bill_codes`.
    pub const UNKNOWN_BILL_CODE: &str = "unknown_bill_code";
    pub const TEXT_TOO_LONG: &str = "text_too_long";
    pub const UNENCODABLE_TEXT: &str = "unencodable_text";
    /// `expires_at` had passed when validate saw it.
    pub const EXPIRED: &str = "expired";
    /// An ad that does not begin with the ad prefix, "(광고)" (rule `ad_marking`).
    pub const AD_NOT_MARKED: &str = "ad_not_marked";
    /// An ad without "무료수신거부" and a number (rule `ad_marking`).
    pub const AD_NO_OPT_OUT: &str = "ad_no_opt_out";
    /// The text holds a word of the blocklist (rule `keywords`).
    pub const BLOCKED_KEYWORD: &str = "blocked_keyword";
    /// An ad in the quiet hours of a customer who chose `night_ads = "reject"` (rule
    /// `night_hours`).
    pub const NIGHT_AD: &str = "night_ad";
    /// The customer already used this client_message_id within its window; the detail names
    /// the first message.
    pub const DUPLICATE: &str = "duplicate";
    /// A prepaid customer's balance cannot cover the message's price.
    pub const INSUFFICIENT_BALANCE: &str = "insufficient_balance";
    /// A prepaid customer has no price for the channel (config apply refuses this; a table
    /// written by an older version may still hold it).
    pub const NO_PRICE: &str = "no_price";
    /// A field is longer than its bound (`switchyard_schemas::limits`); the detail names every
    /// such field, and the rejection repeats them cut to their bounds.
    pub const FIELD_TOO_LONG: &str = "field_too_long";
    /// A text field carries a control character (NUL, ESC, …; tab and newlines are fine).
    pub const CONTROL_CHARACTER: &str = "control_character";
    /// The message's records can never be written to the broker (too large, invalid): its
    /// input is dead-lettered with the reason.
    pub use switchyard_schemas::unproducible::RESULT_CODE as UNPRODUCIBLE;
}

/// Most parts an international SMS may take.
pub const MAX_INTERNATIONAL_SEGMENTS: usize = 10;

/// The verdict on one submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Valid(ValidatedMessage),
    Rejected(Rejection),
    /// Valid, but not to be sent before `release_at` (an ad in the quiet hours).
    Held(HeldMessage),
    /// Valid, but over its customer's rate for the channel: sent at `release_at`, its slot.
    Paced(HeldMessage),
}

/// Validate one submission read at (topic, partition, offset) at time `now`.
pub fn validate(
    submission: Submission,
    origin: (&str, i32, i64),
    tables: &ConfigTables,
    now: i64,
) -> Verdict {
    validate_with(submission, origin, tables, now, false)
}

/// The same for a message coming back from the quiet hours (`released`): its wait is over,
/// so they do not hold it again.
pub fn validate_with(
    mut submission: Submission,
    origin: (&str, i32, i64),
    tables: &ConfigTables,
    now: i64,
    released: bool,
) -> Verdict {
    let message_id = submission
        .message_id
        .clone()
        .filter(|id| !id.is_empty())
        .unwrap_or_else(|| derived_message_id(origin.0, origin.1, origin.2));
    let violations = limits::submission_violations(&submission);
    if !violations.is_empty() {
        // Checked first: no other rule and no rejection repeats an unbounded field.
        let fields: Vec<String> = violations.iter().map(ToString::to_string).collect();
        let submission = limits::truncated(&submission);
        let message_id = limits::truncate(&message_id, limits::ID_MAX).to_string();
        return Verdict::Rejected(Rejection {
            customer_id: submission.customer_id.clone(),
            message_id: message_id.clone(),
            code: codes::FIELD_TOO_LONG.to_string(),
            detail: fields.join("; "),
            submission: Submission {
                message_id: Some(message_id),
                ..submission
            },
            rejected_at: now,
            rule: None,
        });
    }
    submission.message_id = Some(message_id.clone());
    match check(&submission, tables, now, released) {
        Ok(Pass::Send(sized)) => {
            let upgraded_from = (sized.channel != submission.channel).then_some(submission.channel);
            submission.channel = sized.channel;
            Verdict::Valid(ValidatedMessage {
                message_id,
                customer_id: submission.customer_id.clone(),
                submission,
                encoding: sized.encoding.to_string(),
                segments: sized.segments,
                validated_at: now,
                upgraded_from,
            })
        }
        Ok(Pass::Hold { release_at, reason }) => Verdict::Held(HeldMessage {
            message_id,
            customer_id: submission.customer_id.clone(),
            submission,
            release_at,
            reason,
            held_at: now,
        }),
        Err(refusal) => {
            if refusal.code == codes::CLIENT_CUSTOMER_MISMATCH {
                // The client is another customer's: its report URL must never see this.
                submission.client_id = None;
            }
            Verdict::Rejected(Rejection {
                message_id,
                customer_id: submission.customer_id.clone(),
                code: refusal.code.to_string(),
                detail: refusal.detail,
                submission,
                rejected_at: now,
                rule: refusal.rule.map(str::to_string),
            })
        }
    }
}

/// Why a submission is refused; `rule` is set for content-policy blocks.
#[derive(Debug)]
struct Refusal {
    code: &'static str,
    rule: Option<&'static str>,
    detail: String,
}

impl From<(&'static str, String)> for Refusal {
    fn from((code, detail): (&'static str, String)) -> Self {
        Refusal {
            code,
            rule: None,
            detail,
        }
    }
}

/// A content-policy block: the detail starts with the rule's name.
fn block(rule: &'static str, code: &'static str, detail: String) -> Refusal {
    Refusal {
        code,
        rule: Some(rule),
        detail: format!("rule {rule}: {detail}"),
    }
}

/// How a message that passes is sent.
#[derive(Debug)]
struct Sized {
    channel: Channel,
    encoding: &'static str,
    segments: i32,
}

#[derive(Debug)]
enum Pass {
    Send(Sized),
    Hold { release_at: i64, reason: String },
}

fn check(s: &Submission, tables: &ConfigTables, now: i64, released: bool) -> Result<Pass, Refusal> {
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
        )
            .into());
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
            )
                .into());
        }
        if client.as_ref().is_none_or(|c| !c.enabled) {
            return Err((
                codes::UNKNOWN_CLIENT,
                format!(
                    "client {client_id:?} is not an enabled client of {:?}",
                    s.customer_id
                ),
            )
                .into());
        }
    }
    if !customer.channels.contains(&s.channel) {
        return Err((
            codes::CHANNEL_NOT_ENABLED,
            format!(
                "channel {} is not enabled for {:?}",
                s.channel, s.customer_id
            ),
        )
            .into());
    }
    if s.to.trim().is_empty() {
        return Err((codes::MISSING_FIELD, "to is empty".to_string()).into());
    }
    let templated = matches!(s.channel, Channel::Kakao | Channel::Rcs) && s.template_code.is_some();
    if s.text.is_empty() && !templated {
        return Err((
            codes::MISSING_FIELD,
            "text is empty (a template_code without text is only for kakao and rcs)".to_string(),
        )
            .into());
    }
    for (field, value) in [
        ("text", Some(s.text.as_str())),
        ("subject", s.subject.as_deref()),
        ("from", s.from.as_deref()),
        ("to", Some(s.to.as_str())),
        (
            "fallback.text",
            s.fallback.as_ref().map(|f| f.text.as_str()),
        ),
        (
            "fallback.subject",
            s.fallback.as_ref().and_then(|f| f.subject.as_deref()),
        ),
    ] {
        if let Some((at, c)) = value.and_then(limits::forbidden_control) {
            return Err((
                codes::CONTROL_CHARACTER,
                format!("{field} carries the control character U+{:04X} at character {at}; only tab, line feed and carriage return are allowed", c as u32),
            )
                .into());
        }
    }
    if matches!(s.channel, Channel::Email) && s.subject.as_deref().is_none_or(str::is_empty) {
        return Err((codes::MISSING_FIELD, "email needs a subject".to_string()).into());
    }
    if matches!(s.channel, Channel::Kakao) && s.template_code.is_none() {
        return Err((
            codes::MISSING_FIELD,
            "kakao needs a template_code".to_string(),
        )
            .into());
    }
    check_recipient(s)?;
    if let Some(expires_at) = s.expires_at
        && expires_at <= now
    {
        return Err((
            codes::EXPIRED,
            format!("expired at {expires_at} before validation at {now}"),
        )
            .into());
    }
    let ad_check = match &s.bill_code {
        None => false,
        Some(code) => {
            let declared = tables.bill_codes.get(&bill_code_key(&s.customer_id, code));
            bill_codes::lookup(code, &customer.bill_codes, declared.as_ref()).ok_or_else(|| {
                (
                    codes::UNKNOWN_BILL_CODE,
                    format!("bill code {code:?} is not one of {:?}", s.customer_id),
                )
            })?
        }
    };
    let policy = policy::effective(
        tables.policy.get(&ContentPolicy::GLOBAL.to_string()),
        tables.policy.get(&s.customer_id),
    );
    let is_ad = ad_marking::is_ad(s.priority, ad_check);
    if is_ad {
        check_ad_marking(s, &policy, ad_check)?;
    }
    for (field, text) in [
        ("text", Some(s.text.as_str())),
        ("subject", s.subject.as_deref()),
        (
            "fallback.text",
            s.fallback.as_ref().map(|f| f.text.as_str()),
        ),
    ] {
        if let Some(word) = text.and_then(|t| keywords::find_blocked(t, &policy.blocked_keywords)) {
            return Err(block(
                rules::KEYWORDS,
                codes::BLOCKED_KEYWORD,
                format!("{field} contains the blocked word {word:?}"),
            ));
        }
    }
    let sized = length(s, &customer)?;
    if is_ad
        && !released
        && night_hours::is_quiet(now, policy.quiet_start_hour, policy.quiet_end_hour)
    {
        let quiet = format!(
            "an ad at {:02}h KST, in the quiet hours {:02}:00-{:02}:00 KST",
            night_hours::kst_hour(now),
            policy.quiet_start_hour,
            policy.quiet_end_hour
        );
        let release_at = night_hours::release_at(now, policy.quiet_end_hour);
        return match customer.night_ads {
            NightAds::Reject => Err(block(
                rules::NIGHT_HOURS,
                codes::NIGHT_AD,
                format!(
                    "{quiet}; customer {:?} has night_ads = \"reject\"",
                    s.customer_id
                ),
            )),
            NightAds::Hold if s.expires_at.is_some_and(|e| e <= release_at) => Err(block(
                rules::NIGHT_HOURS,
                codes::NIGHT_AD,
                format!("{quiet}; it would expire before the release at {release_at}"),
            )),
            NightAds::Hold => Ok(Pass::Hold {
                release_at,
                reason: format!(
                    "rule {}: {quiet}; held until {release_at}",
                    rules::NIGHT_HOURS
                ),
            }),
        };
    }
    Ok(Pass::Send(sized))
}

/// An ad begins with the prefix (in an email: its subject) and has an opt-out number.
fn check_ad_marking(
    s: &Submission,
    policy: &policy::Effective,
    ad_check: bool,
) -> Result<(), Refusal> {
    let why = if ad_check {
        format!(
            "an ad (bill code {:?} is ad_check)",
            s.bill_code.as_deref().unwrap_or("")
        )
    } else {
        "an ad (priority ad)".to_string()
    };
    let marked = if matches!(s.channel, Channel::Email) {
        s.subject.as_deref().unwrap_or("")
    } else {
        s.text.as_str()
    };
    if !ad_marking::begins_with(marked, &policy.ad_prefix) {
        return Err(block(
            rules::AD_MARKING,
            codes::AD_NOT_MARKED,
            format!("{why} must begin with {:?}", policy.ad_prefix),
        ));
    }
    if !ad_marking::has_opt_out(&s.text, &policy.ad_opt_out_marker) {
        return Err(block(
            rules::AD_MARKING,
            codes::AD_NO_OPT_OUT,
            format!(
                "{why} must carry an opt-out line: {:?} followed by a number",
                policy.ad_opt_out_marker
            ),
        ));
    }
    Ok(())
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
            )
                .into());
        }
    }
    if matches!(s.channel, Channel::Email) && !s.to.contains('@') {
        return Err((
            codes::INVALID_RECIPIENT,
            format!("{:?} is not an e-mail address", s.to),
        )
            .into());
    }
    Ok(())
}

/// Whether a phone number is international (E.164 `+`, not Korea's +82).
fn is_international(to: &str) -> bool {
    to.starts_with('+') && !to.starts_with("+82")
}

/// The text's encoding, segment count and the channel it goes on (an SMS may be upgraded to
/// LMS), or why it does not fit the channel.
fn length(s: &Submission, customer: &CustomerConfig) -> Result<Sized, Refusal> {
    let sms_family = matches!(s.channel, Channel::Sms | Channel::Lms | Channel::Mms);
    if sms_family && is_international(&s.to) {
        let segments = encoding::sms_segments(&s.text);
        if segments.segments > MAX_INTERNATIONAL_SEGMENTS {
            return Err((
                codes::TEXT_TOO_LONG,
                format!(
                    "{} {} units make {} parts; an international message may have {MAX_INTERNATIONAL_SEGMENTS}",
                    segments.units,
                    segments.encoding.as_str(),
                    segments.segments
                ),
            )
                .into());
        }
        return Ok(Sized {
            channel: s.channel,
            encoding: segments.encoding.as_str(),
            // At most MAX_INTERNATIONAL_SEGMENTS: fits.
            segments: i32::try_from(segments.segments).unwrap_or(i32::MAX),
        });
    }
    if sms_family {
        let bytes = encoding::euc_kr_bytes(&s.text).map_err(|c| {
            Refusal::from((
                codes::UNENCODABLE_TEXT,
                format!(
                    "{c:?} (U+{:04X}) cannot be sent in EUC-KR/CP949 ({} channel)",
                    c as u32, s.channel
                ),
            ))
        })?;
        let limit = if s.channel == Channel::Sms {
            SMS_BYTES
        } else {
            LMS_BYTES
        };
        if bytes <= limit {
            return Ok(Sized {
                channel: s.channel,
                encoding: "euc-kr",
                segments: 1,
            });
        }
        if s.channel == Channel::Sms && bytes <= LMS_BYTES && customer.auto_lms_upgrade {
            if customer.channels.contains(&Channel::Lms) {
                return Ok(Sized {
                    channel: Channel::Lms,
                    encoding: "euc-kr",
                    segments: 1,
                });
            }
            return Err((
                codes::TEXT_TOO_LONG,
                format!(
                    "{bytes} bytes in EUC-KR, sms allows {SMS_BYTES}; auto_lms_upgrade is on but lms is not enabled for {:?}",
                    s.customer_id
                ),
            )
                .into());
        }
        let hint = if s.channel == Channel::Sms && bytes <= LMS_BYTES {
            " (send it as lms, or set auto_lms_upgrade)"
        } else {
            ""
        };
        return Err((
            codes::TEXT_TOO_LONG,
            format!(
                "{bytes} bytes in EUC-KR, {} allows {limit}{hint}",
                s.channel
            ),
        )
            .into());
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
        )
            .into());
    }
    Ok(Sized {
        channel: s.channel,
        encoding: "utf-8",
        segments: 1,
    })
}

/// EUC-KR bytes an SMS may have.
pub const SMS_BYTES: usize = 90;
/// EUC-KR bytes an LMS or MMS may have.
pub const LMS_BYTES: usize = 2000;

/// What validate reads: submissions from `messages.accepted` and credits and refunds from
/// `balance.commands` (co-partitioned by customer id, so one member owns a customer's state).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValidateInput {
    Submission(Box<Submission>),
    Balance(BalanceCommand),
}

impl StageInput for ValidateInput {
    fn decode<'a>(
        codec: &'a Codec,
        topic: &'a str,
        payload: &'a [u8],
    ) -> BoxFuture<'a, Result<Self, CodecError>> {
        Box::pin(async move {
            if topic == BALANCE_COMMANDS {
                codec.decode(payload).await.map(ValidateInput::Balance)
            } else {
                codec
                    .decode(payload)
                    .await
                    .map(|s| ValidateInput::Submission(Box::new(s)))
            }
        })
    }
}

/// The validate stage. Its state (duplicate windows, balances, charges) is a runtime state
/// store on `state.validate`.
#[derive(Debug, Clone)]
pub struct Validate {
    pub tables: ConfigTables,
    /// Where "now" comes from: the system clock, or one a test sets.
    pub clock: Clock,
    store: StateStore,
}

impl Validate {
    /// The stage over `tables`, judging by `clock`.
    pub fn new(tables: ConfigTables, clock: Clock) -> Self {
        let now = clock.clone();
        Validate {
            tables,
            clock,
            store: StateStore::new(STATE_VALIDATE, Arc::new(move || now.now())),
        }
    }

    /// Its state store (for tests and tools).
    pub fn store(&self) -> &StateStore {
        &self.store
    }
}

/// The outputs of one submission judged with the state of its partition.
pub fn judge(
    submission: Submission,
    origin: (&str, i32, i64),
    tables: &ConfigTables,
    state: &mut dyn StateAccess,
    now: i64,
) -> Vec<Output> {
    let ticket = match submission.message_id.as_deref().filter(|id| !id.is_empty()) {
        Some(id) => pacing::redeem_ticket(state, id, now),
        None => Ticket::None,
    };
    if ticket == Ticket::AlreadyReleased {
        // The release runner is at least once: this copy of a message already sent on is
        // dropped so it is not sent twice.
        tracing::warn!(
            stage = "validate",
            message_id = submission.message_id.as_deref().unwrap_or_default(),
            "a second copy of a released message; dropped"
        );
        return Vec::new();
    }
    let waited = match ticket {
        Ticket::Back(wait) => Some(wait),
        _ => None,
    };
    if waited.is_none()
        && let Some(id) = submission.message_id.as_deref()
        && let Some(client_message_id) = submission.client_message_id.as_deref()
        && duplicates::taken_by(state, &submission.customer_id, client_message_id, now)
            .is_some_and(|first| first == id)
    {
        // The very message again (a producer's retry): it was judged already.
        tracing::warn!(
            stage = "validate",
            message_id = id,
            "the same message again; dropped"
        );
        return Vec::new();
    }
    let verdict = validate_with(
        submission,
        origin,
        tables,
        now,
        waited == Some(Wait::QuietHours),
    );
    let admitted = admit(verdict, tables, state, now, waited == Some(Wait::Pacing));
    let mut outputs = Vec::with_capacity(2);
    if let Some(event) = admitted.ledger {
        outputs.push(Output::new(
            BALANCE_LEDGER,
            event.customer_id.clone(),
            event,
        ));
    }
    outputs.push(match admitted.verdict {
        Verdict::Valid(message) => {
            tracing::debug!(stage = "validate", message_id = %message.message_id, "valid");
            Output::new(VALIDATED, message.message_id.clone(), message)
        }
        Verdict::Rejected(rejection) => {
            tracing::info!(
                stage = "validate",
                message_id = %rejection.message_id,
                code = %rejection.code,
                rule = rejection.rule.as_deref().unwrap_or(""),
                "rejected"
            );
            Output::new(REJECTED, rejection.message_id.clone(), rejection)
        }
        Verdict::Held(held) => {
            tracing::info!(
                stage = "validate",
                message_id = %held.message_id,
                release_at = held.release_at,
                "held"
            );
            pacing::issue_ticket(state, &held.message_id, Wait::QuietHours, held.release_at);
            let due = held.release_at;
            Output::new(HELD, held.message_id.clone(), held).due_at(due)
        }
        Verdict::Paced(paced) => {
            tracing::debug!(
                stage = "validate",
                message_id = %paced.message_id,
                release_at = paced.release_at,
                "paced"
            );
            pacing::issue_ticket(state, &paced.message_id, Wait::Pacing, paced.release_at);
            let due = paced.release_at;
            Output::new(PACED, paced.message_id.clone(), paced).due_at(due)
        }
    });
    outputs
}

/// The ledger output of a balance command, if it changed the balance.
pub fn command(command: &BalanceCommand, state: &mut dyn StateAccess, now: i64) -> Vec<Output> {
    match balances::apply(state, command, now) {
        Some(event) => {
            tracing::info!(stage = "validate", customer = %event.customer_id, kind = event.kind.as_str(), amount = event.amount, balance = event.balance_after, "balance moved");
            vec![Output::new(
                BALANCE_LEDGER,
                event.customer_id.clone(),
                event,
            )]
        }
        None => {
            tracing::debug!(stage = "validate", request_id = %command.request_id, "balance command changes nothing");
            Vec::new()
        }
    }
}

impl Processor for Validate {
    type Input = ValidateInput;

    fn process(&self, input: ValidateInput, origin: Origin<'_>) -> Result<Vec<Output>, StageError> {
        let now = self.clock.now();
        let mut state = self.store.lock(origin.partition);
        Ok(match input {
            ValidateInput::Submission(submission) => judge(
                *submission,
                (origin.topic, origin.partition, origin.offset),
                &self.tables,
                &mut *state,
                now,
            ),
            ValidateInput::Balance(balance) => command(&balance, &mut *state, now),
        })
    }

    fn unproducible(&self, input: ValidateInput, origin: Origin<'_>, reason: &str) -> Vec<Output> {
        let ValidateInput::Submission(submission) = input else {
            // A balance command ends no message: its dead letter is all.
            return Vec::new();
        };
        let message_id = submission
            .message_id
            .clone()
            .filter(|id| !id.is_empty())
            .unwrap_or_else(|| derived_message_id(origin.topic, origin.partition, origin.offset));
        let rejection = unproducible::rejection(&submission, &message_id, reason, self.clock.now());
        vec![Output::new(
            REJECTED,
            rejection.message_id.clone(),
            rejection,
        )]
    }

    fn state(&self) -> Option<&StateStore> {
        Some(&self.store)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{submission, tables};

    #[test]
    fn an_unbounded_field_is_rejected_first_and_the_rejection_stays_small() {
        let mut huge = submission("m1");
        huge.to = "1".repeat(500_000);
        huge.bill_code = Some("b".repeat(600_000));
        let Verdict::Rejected(r) = validate(huge, ("messages.accepted", 0, 1), &tables(), 5) else {
            panic!("rejected")
        };
        assert_eq!(r.code, codes::FIELD_TOO_LONG);
        assert!(
            r.detail
                .contains("to is 500000 characters long; at most 512"),
            "{}",
            r.detail
        );
        assert!(r.detail.contains("bill_code is 600000"), "{}", r.detail);
        assert_eq!(r.submission.to.len(), limits::TO_MAX);
        let bytes = switchyard_schemas::to_datum(&r).expect("encodes").len();
        assert!(bytes < 5_000, "the rejection is {bytes} bytes");
    }

    #[test]
    fn control_characters_and_template_only_sms_are_refused() {
        let mut nul = submission("m1");
        nul.text = "\u{0}".into();
        assert_eq!(
            verdict_code(nul.clone()).as_deref(),
            Some(codes::CONTROL_CHARACTER)
        );
        nul.text = "line one\r\n\tline two".into();
        assert_eq!(verdict_code(nul), None);
        let mut templated = submission("m1");
        templated.text = String::new();
        templated.template_code = Some("T-1".into());
        assert_eq!(
            verdict_code(templated).as_deref(),
            Some(codes::MISSING_FIELD)
        );
    }

    #[test]
    fn a_poison_submission_ends_in_one_small_rejection_naming_why() {
        let stage = Validate::new(tables(), crate::clock::ManualClock::new(7).clock());
        let mut huge = submission("m1");
        huge.text = "가".repeat(90_000);
        huge.message_id = None;
        let origin = Origin {
            topic: "messages.accepted",
            partition: 2,
            offset: 40,
            timestamp: None,
            key: None,
        };
        let outputs = Processor::unproducible(
            &stage,
            ValidateInput::Submission(Box::new(huge)),
            origin,
            "its output to messages.validated is 2000000 bytes",
        );
        assert_eq!(outputs.len(), 1);
        assert_eq!(outputs[0].topic, REJECTED);
        let r = outputs[0].value::<Rejection>().expect("a rejection");
        assert_eq!(r.code, codes::UNPRODUCIBLE);
        assert_eq!(r.message_id, derived_message_id("messages.accepted", 2, 40));
        assert_eq!(outputs[0].key, r.message_id);
        assert!(r.detail.contains("2000000 bytes"));
        assert!(switchyard_schemas::to_datum(r).expect("encodes").len() < 10_000);
        let balance = ValidateInput::Balance(BalanceCommand {
            request_id: "r".into(),
            customer_id: "acme".into(),
            kind: switchyard_schemas::BalanceKind::Credit,
            amount: 1,
            message_id: None,
            reason: String::new(),
            requested_at: 0,
        });
        assert!(Processor::unproducible(&stage, balance, origin, "x").is_empty());
    }

    fn verdict_code(s: Submission) -> Option<String> {
        match validate(s, ("messages.accepted", 0, 7), &tables(), 1_000) {
            Verdict::Valid(_) => None,
            Verdict::Rejected(r) => Some(r.code),
            Verdict::Held(h) => Some(format!("held until {}", h.release_at)),
            Verdict::Paced(p) => Some(format!("paced until {}", p.release_at)),
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

    use crate::policy::night_hours::kst;
    use switchyard_schemas::{BillCode, Priority};

    /// Noon and 22:00 KST on one day.
    fn noon() -> i64 {
        kst(2026, 11, 23, 12, 0)
    }
    fn night() -> i64 {
        kst(2026, 11, 23, 22, 0)
    }

    const LEGAL_AD: &str = "(광고) 봄 세일 20%\n무료수신거부 080-123-4567";

    /// acme with a global and an own policy, bill codes B1 (listed), AD-1 (ad_check) and
    /// B2 (declared, not ads); beta holds night ads and upgrades long SMS.
    fn policy_tables() -> ConfigTables {
        let mut t = tables();
        let mut beta = t.customers.get(&"beta".to_string()).expect("beta");
        beta.night_ads = NightAds::Hold;
        beta.auto_lms_upgrade = true;
        beta.channels = vec![Channel::Sms, Channel::Lms];
        let acme = t.customers.get(&"acme".to_string()).expect("acme");
        t = ConfigTables::fixed(
            vec![acme, beta],
            t.clients.snapshot().into_values().collect(),
            vec![],
            vec![],
            vec![],
        );
        let global = ContentPolicy {
            blocked_keywords: vec!["대출".into()],
            ..ContentPolicy::new("*")
        };
        let own = ContentPolicy {
            blocked_keywords: vec!["카지노".into()],
            ..ContentPolicy::new("acme")
        };
        let code = |customer: &str, code: &str, ad_check: bool| BillCode {
            customer_id: customer.into(),
            code: code.into(),
            ad_check,
            description: String::new(),
        };
        t.with_policy(
            vec![global, own],
            vec![
                code("acme", "AD-1", true),
                code("acme", "B2", false),
                code("beta", "AD-9", true),
            ],
        )
    }

    fn judged(s: Submission, now: i64) -> Verdict {
        validate(s, ("messages.accepted", 0, 7), &policy_tables(), now)
    }

    /// (code, rule) of a rejection; "valid"/"held" otherwise.
    fn outcome(s: Submission, now: i64) -> (String, Option<String>) {
        match judged(s, now) {
            Verdict::Valid(_) => ("valid".into(), None),
            Verdict::Held(_) | Verdict::Paced(_) => ("held".into(), None),
            Verdict::Rejected(r) => {
                if let Some(rule) = &r.rule {
                    assert!(
                        r.detail.starts_with(&format!("rule {rule}:")),
                        "{}",
                        r.detail
                    );
                }
                (r.code, r.rule)
            }
        }
    }

    fn msg(customer: &str, priority: Priority, bill_code: Option<&str>, text: &str) -> Submission {
        let mut s = submission("m");
        s.customer_id = customer.into();
        s.client_id = None;
        s.priority = priority;
        s.bill_code = bill_code.map(String::from);
        s.text = text.into();
        s
    }

    #[test]
    fn every_rule_rejects_its_bad_sample_and_passes_the_legal_one() {
        let cases: Vec<(&str, Submission, i64, &str, Option<&str>)> = vec![
            // bill codes
            (
                "listed code",
                msg("acme", Priority::Normal, Some("B1"), "배송 안내"),
                noon(),
                "valid",
                None,
            ),
            (
                "declared code",
                msg("acme", Priority::Normal, Some("B2"), "배송 안내"),
                noon(),
                "valid",
                None,
            ),
            (
                "unknown code",
                msg("acme", Priority::Normal, Some("B9"), "배송 안내"),
                noon(),
                codes::UNKNOWN_BILL_CODE,
                None,
            ),
            (
                "another customer's code",
                msg("beta", Priority::Normal, Some("B2"), "배송 안내"),
                noon(),
                codes::UNKNOWN_BILL_CODE,
                None,
            ),
            (
                "no code",
                msg("beta", Priority::Normal, None, "배송 안내"),
                noon(),
                "valid",
                None,
            ),
            // ad marking
            (
                "legal ad",
                msg("acme", Priority::Ad, None, LEGAL_AD),
                noon(),
                "valid",
                None,
            ),
            (
                "unmarked ad",
                msg(
                    "acme",
                    Priority::Ad,
                    None,
                    "봄 세일 20%\n무료수신거부 080-123-4567",
                ),
                noon(),
                codes::AD_NOT_MARKED,
                Some(rules::AD_MARKING),
            ),
            (
                "ad without opt-out",
                msg("acme", Priority::Ad, None, "(광고) 봄 세일 20%"),
                noon(),
                codes::AD_NO_OPT_OUT,
                Some(rules::AD_MARKING),
            ),
            (
                "ad_check bill code, unmarked",
                msg("acme", Priority::Normal, Some("AD-1"), "봄 세일 20%"),
                noon(),
                codes::AD_NOT_MARKED,
                Some(rules::AD_MARKING),
            ),
            (
                "ad_check bill code, marked",
                msg("acme", Priority::Normal, Some("AD-1"), LEGAL_AD),
                noon(),
                "valid",
                None,
            ),
            (
                "not an ad needs no marking",
                msg("acme", Priority::Normal, Some("B1"), "봄 세일 20%"),
                noon(),
                "valid",
                None,
            ),
            // keywords: global and own, through tricks
            (
                "global word",
                msg("acme", Priority::Normal, None, "저금리 대.출 상담"),
                noon(),
                codes::BLOCKED_KEYWORD,
                Some(rules::KEYWORDS),
            ),
            (
                "global word, spaced",
                msg("beta", Priority::Normal, None, "저금리 대 출 상담"),
                noon(),
                codes::BLOCKED_KEYWORD,
                Some(rules::KEYWORDS),
            ),
            (
                "own word",
                msg("acme", Priority::Normal, None, "카\u{200b}지노 오픈"),
                noon(),
                codes::BLOCKED_KEYWORD,
                Some(rules::KEYWORDS),
            ),
            (
                "another customer's word",
                msg("beta", Priority::Normal, None, "카지노 오픈"),
                noon(),
                "valid",
                None,
            ),
            (
                "clean text",
                msg("acme", Priority::Normal, None, "대학 출석 안내"),
                noon(),
                "valid",
                None,
            ),
            // night hours
            (
                "ad at night, reject",
                msg("acme", Priority::Ad, None, LEGAL_AD),
                night(),
                codes::NIGHT_AD,
                Some(rules::NIGHT_HOURS),
            ),
            (
                "ad at night, hold",
                msg("beta", Priority::Ad, None, LEGAL_AD),
                night(),
                "held",
                None,
            ),
            (
                "ad_check ad at night, hold",
                msg("beta", Priority::Normal, Some("AD-9"), LEGAL_AD),
                night(),
                "held",
                None,
            ),
            (
                "ad at 08:00",
                msg("acme", Priority::Ad, None, LEGAL_AD),
                kst(2026, 11, 23, 8, 0),
                "valid",
                None,
            ),
            (
                "ad at 20:59",
                msg("acme", Priority::Ad, None, LEGAL_AD),
                kst(2026, 11, 23, 20, 59),
                "valid",
                None,
            ),
            (
                "non-ad at night",
                msg("acme", Priority::Otp, None, "인증번호 123456"),
                night(),
                "valid",
                None,
            ),
            (
                "unmarked ad at night is blocked for the marking",
                msg("beta", Priority::Ad, None, "세일"),
                night(),
                codes::AD_NOT_MARKED,
                Some(rules::AD_MARKING),
            ),
        ];
        for (case, s, now, code, rule) in cases {
            let (got, got_rule) = outcome(s, now);
            assert_eq!((got.as_str(), got_rule.as_deref()), (code, rule), "{case}");
        }
    }

    #[test]
    fn a_held_ad_waits_for_8_oclock_kst_unless_it_expires_first() {
        let Verdict::Held(held) = judged(msg("beta", Priority::Ad, None, LEGAL_AD), night()) else {
            panic!("not held")
        };
        assert_eq!(held.release_at, kst(2026, 11, 24, 8, 0));
        assert_eq!(held.message_id, "m");
        assert_eq!(held.submission.message_id.as_deref(), Some("m"));
        assert_eq!(held.held_at, night());
        assert!(held.reason.contains("night_hours"), "{}", held.reason);
        // Released at 08:00 it passes.
        assert!(matches!(
            judged(held.submission, held.release_at),
            Verdict::Valid(_)
        ));

        let mut expiring = msg("beta", Priority::Ad, None, LEGAL_AD);
        expiring.expires_at = Some(kst(2026, 11, 24, 7, 0));
        assert_eq!(
            outcome(expiring, night()),
            (
                codes::NIGHT_AD.to_string(),
                Some(rules::NIGHT_HOURS.to_string())
            )
        );
    }

    #[test]
    fn the_blocked_word_is_named() {
        let Verdict::Rejected(r) =
            judged(msg("acme", Priority::Normal, None, "대\u{3000}출"), noon())
        else {
            panic!("not rejected")
        };
        assert!(r.detail.contains("\"대출\""), "{}", r.detail);
        assert!(r.detail.starts_with("rule keywords:"), "{}", r.detail);
    }

    #[test]
    fn a_long_sms_is_upgraded_to_lms_only_if_the_customer_opted_in() {
        let long = "안녕하세요 고객님, ".repeat(10); // 190 bytes in EUC-KR
        // beta opted in.
        let Verdict::Valid(v) = judged(msg("beta", Priority::Normal, None, &long), noon()) else {
            panic!("not upgraded")
        };
        assert_eq!(v.submission.channel, Channel::Lms);
        assert_eq!(v.upgraded_from, Some(Channel::Sms));
        // acme did not.
        let (code, _) = outcome(msg("acme", Priority::Normal, None, &long), noon());
        assert_eq!(code, codes::TEXT_TOO_LONG);
        // A short one stays SMS.
        let Verdict::Valid(v) = judged(msg("beta", Priority::Normal, None, "짧은 문자"), noon())
        else {
            panic!("refused")
        };
        assert_eq!(
            (v.submission.channel, v.upgraded_from),
            (Channel::Sms, None)
        );
        // Over 2,000 bytes not even LMS takes it.
        let (code, _) = outcome(
            msg("beta", Priority::Normal, None, &"가".repeat(1001)),
            noon(),
        );
        assert_eq!(code, codes::TEXT_TOO_LONG);
    }

    #[test]
    fn international_numbers_get_gsm7_or_ucs2_segments() {
        // (to, text, Ok((encoding, segments)) or Err(code))
        type Case<'a> = (&'a str, String, Result<(&'a str, i32), &'a str>);
        let cases: &[Case] = &[
            (
                "+14155550100",
                "Your code is 123456".into(),
                Ok(("gsm-7", 1)),
            ),
            ("+14155550100", "a".repeat(161), Ok(("gsm-7", 2))),
            (
                "+819012345678",
                "認証コード 123456".into(),
                Ok(("ucs-2", 1)),
            ),
            ("+819012345678", "가".repeat(71), Ok(("ucs-2", 2))),
            ("+14155550100", "hi 😀".into(), Ok(("ucs-2", 1))),
            (
                "+14155550100",
                "a".repeat(153 * 10 + 1),
                Err(codes::TEXT_TOO_LONG),
            ),
            // +82 is domestic: EUC-KR bytes.
            ("+821012345678", "인증번호 123456".into(), Ok(("euc-kr", 1))),
            (
                "+821012345678",
                "hi 😀".into(),
                Err(codes::UNENCODABLE_TEXT),
            ),
        ];
        for (to, text, expected) in cases {
            let mut s = msg("acme", Priority::Otp, None, text);
            s.to = to.to_string();
            let got = match judged(s, noon()) {
                Verdict::Valid(v) => Ok((v.encoding, v.segments)),
                Verdict::Rejected(r) => Err(r.code),
                Verdict::Held(_) | Verdict::Paced(_) => panic!("held"),
            };
            let expected = expected
                .map(|(e, n)| (e.to_string(), n))
                .map_err(str::to_string);
            assert_eq!(got, expected, "{to} {text:?}");
        }
    }

    #[test]
    fn an_unencodable_character_is_named() {
        let Verdict::Rejected(r) = judged(msg("acme", Priority::Normal, None, "안녕 😀"), noon())
        else {
            panic!("accepted")
        };
        assert_eq!(r.code, codes::UNENCODABLE_TEXT);
        assert!(r.detail.contains("U+1F600"), "{}", r.detail);
    }
}
