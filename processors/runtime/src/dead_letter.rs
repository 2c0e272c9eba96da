//! Dead letters: bad input copied byte for byte to `deadletter.<topic>` with headers that say
//! why, where it came from and which stage refused it. Nothing is dropped.

use rdkafka::Message;
use rdkafka::message::{Header, Headers, OwnedHeaders, OwnedMessage};

/// Header: a person-readable reason.
pub const REASON_HEADER: &str = "switchyard.dead-letter.reason";
/// Header: `undecodable`, `invalid` or `unproducible`.
pub const KIND_HEADER: &str = "switchyard.dead-letter.kind";
/// Header: the stage that refused the record.
pub const STAGE_HEADER: &str = "switchyard.dead-letter.stage";
/// Header: the record's original topic.
pub const SOURCE_TOPIC_HEADER: &str = "switchyard.source.topic";
/// Header: the record's original partition.
pub const SOURCE_PARTITION_HEADER: &str = "switchyard.source.partition";
/// Header: the record's original offset.
pub const SOURCE_OFFSET_HEADER: &str = "switchyard.source.offset";
/// Header: set when the dead letter carries no payload because the original and the headers
/// would not fit the broker's record limit together: its size in bytes (the original stays at
/// its source position until retention).
pub const PAYLOAD_OMITTED_HEADER: &str = "switchyard.dead-letter.payload-omitted-bytes";

/// Most characters of a reason header.
const MAX_REASON_CHARS: usize = 2000;

/// Why a record is dead-lettered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadLetterKind {
    /// Not a record of the topic's type in the wire format.
    Undecodable,
    /// A well-formed record the stage refused.
    Invalid,
    /// A record whose outputs the broker can never take (too large, invalid): its message was
    /// ended by the stage's report where it has one.
    Unproducible,
}

impl DeadLetterKind {
    /// The header value.
    pub fn as_str(self) -> &'static str {
        match self {
            DeadLetterKind::Undecodable => "undecodable",
            DeadLetterKind::Invalid => "invalid",
            DeadLetterKind::Unproducible => "unproducible",
        }
    }
}

/// The headers of a dead letter: the original record's headers plus the reason headers.
pub fn dead_letter_headers(
    message: &OwnedMessage,
    stage: &str,
    kind: DeadLetterKind,
    reason: &str,
) -> OwnedHeaders {
    let mut headers = OwnedHeaders::new();
    if let Some(original) = message.headers() {
        for header in original.iter() {
            headers = headers.insert(Header {
                key: header.key,
                value: header.value,
            });
        }
    }
    // A reason may repeat input; a dead letter's headers stay small.
    let reason = match reason.char_indices().nth(MAX_REASON_CHARS) {
        Some((end, _)) => &reason[..end],
        None => reason,
    };
    let partition = message.partition().to_string();
    let offset = message.offset().to_string();
    for (key, value) in [
        (REASON_HEADER, reason),
        (KIND_HEADER, kind.as_str()),
        (STAGE_HEADER, stage),
        (SOURCE_TOPIC_HEADER, message.topic()),
        (SOURCE_PARTITION_HEADER, partition.as_str()),
        (SOURCE_OFFSET_HEADER, offset.as_str()),
    ] {
        headers = headers.insert(Header {
            key,
            value: Some(value),
        });
    }
    headers
}

/// Dead-letter headers saying the payload of `bytes` bytes was left out.
pub fn payload_omitted(headers: OwnedHeaders, bytes: usize) -> OwnedHeaders {
    headers.insert(Header {
        key: PAYLOAD_OMITTED_HEADER,
        value: Some(bytes.to_string().as_str()),
    })
}

/// The value of a header of a message, as text.
pub fn header_text<'a, H: Headers>(headers: &'a H, key: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|h| h.key == key)
        .and_then(|h| h.value)
        .and_then(|v| std::str::from_utf8(v).ok())
}
