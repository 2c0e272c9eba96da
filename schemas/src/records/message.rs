//! Intake records: what customers submit and what validate makes of it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Millis;

/// The channel a message travels on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Sms,
    Lms,
    Mms,
    Kakao,
    Rcs,
    Email,
    Push,
    Chat,
}

impl Channel {
    /// Every channel, in schema order.
    pub const ALL: [Channel; 8] = [
        Channel::Sms,
        Channel::Lms,
        Channel::Mms,
        Channel::Kakao,
        Channel::Rcs,
        Channel::Email,
        Channel::Push,
        Channel::Chat,
    ];

    /// The lowercase name used in topics, config files and the HTTP API.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Sms => "sms",
            Channel::Lms => "lms",
            Channel::Mms => "mms",
            Channel::Kakao => "kakao",
            Channel::Rcs => "rcs",
            Channel::Email => "email",
            Channel::Push => "push",
            Channel::Chat => "chat",
        }
    }
}

impl std::fmt::Display for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Channel {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Channel::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| format!("unknown channel {s:?}"))
    }
}

/// Delivery lane: otp before normal before bulk before ad.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Otp,
    #[default]
    Normal,
    Bulk,
    Ad,
}

/// A file sent with an MMS, RCS or email message, referenced by URI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub uri: String,
    pub content_type: String,
    pub file_name: Option<String>,
}

/// What to send instead when a kakao or rcs message fails.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fallback {
    pub channel: Channel,
    pub text: String,
    pub subject: Option<String>,
}

/// A message as a customer submitted it; the record of `messages.accepted`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Submission {
    pub message_id: Option<String>,
    pub customer_id: String,
    pub client_id: Option<String>,
    pub client_message_id: Option<String>,
    pub channel: Channel,
    pub to: String,
    pub from: Option<String>,
    pub text: String,
    pub subject: Option<String>,
    pub bill_code: Option<String>,
    pub priority: Priority,
    pub template_code: Option<String>,
    pub fallback: Option<Fallback>,
    pub attachments: Vec<Attachment>,
    pub expires_at: Option<Millis>,
    pub metadata: BTreeMap<String, String>,
    pub accepted_at: Millis,
}

/// A submission that passed validation; the record of `messages.validated`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidatedMessage {
    pub message_id: String,
    pub customer_id: String,
    pub submission: Submission,
    pub encoding: String,
    pub segments: i32,
    pub validated_at: Millis,
    /// The channel submitted when validate changed it (an SMS upgraded to LMS).
    pub upgraded_from: Option<Channel>,
}

/// A submission that failed validation; the record of `messages.rejected`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    pub message_id: String,
    pub customer_id: String,
    pub code: String,
    pub detail: String,
    pub submission: Submission,
    pub rejected_at: Millis,
    /// The content-policy rule that blocked it; `None` for other refusals.
    pub rule: Option<String>,
}

/// A valid submission that may not be sent yet (an ad in the quiet hours); the record of
/// `messages.held`. Written back to `messages.accepted` at `release_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldMessage {
    pub message_id: String,
    pub customer_id: String,
    pub submission: Submission,
    pub release_at: Millis,
    pub reason: String,
    pub held_at: Millis,
}
