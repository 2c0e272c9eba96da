//! Text to short_message octets (pure): data_coding 0x00 (GSM 03.38 default alphabet, one
//! septet per octet, unpacked as SMPP carries it), 0x08 (UCS-2, big-endian UTF-16) and 0x0E
//! (KS C 5601, as EUC-KR). A text too long for one message is cut into parts with a UDH
//! concatenation header (IE 0x00, 8-bit reference), or sent whole in a `message_payload` TLV.
//! A part never ends inside a character (a GSM escape pair, a surrogate pair, a Korean syllable).

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The data_coding a sender uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataCoding {
    /// 0x00: the SMSC default alphabet (GSM 03.38).
    #[default]
    Gsm,
    /// 0x08: UCS-2.
    Ucs2,
    /// 0x0E: KS C 5601 (EUC-KR), Korean carriers' usual.
    Ksc5601,
}

impl DataCoding {
    pub fn value(self) -> u8 {
        match self {
            DataCoding::Gsm => 0x00,
            DataCoding::Ucs2 => 0x08,
            DataCoding::Ksc5601 => 0x0E,
        }
    }

    /// Octets in one message without a UDH (GSM: 160 septets, one per octet).
    fn single_limit(self) -> usize {
        match self {
            DataCoding::Gsm => 160,
            DataCoding::Ucs2 | DataCoding::Ksc5601 => 140,
        }
    }

    /// Octets of text in one part after the 6-octet concatenation UDH.
    fn part_limit(self) -> usize {
        match self {
            DataCoding::Gsm => 153,
            DataCoding::Ucs2 | DataCoding::Ksc5601 => 134,
        }
    }
}

/// How a text longer than one message is sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LongText {
    /// Several submit_sm, each with a UDH concatenation header.
    #[default]
    Udh,
    /// One submit_sm, the text in the `message_payload` TLV (short_message empty).
    Payload,
}

/// The text cannot be sent with this data_coding; a retry will not help.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum EncodeError {
    #[error("character {0:?} has no code in the GSM default alphabet")]
    NotGsm(char),
    #[error("character {0:?} has no code in KS C 5601")]
    NotKsc5601(char),
    #[error("the text needs {0} parts; at most 255 are possible")]
    TooManyParts(usize),
    #[error("the text is {0} octets; a message_payload holds at most 65,535")]
    TooLong(usize),
}

impl EncodeError {
    /// Never: the text or the sender's data_coding must change.
    pub fn is_retriable(&self) -> bool {
        false
    }
}

/// What goes into one submit_sm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    /// The short_message octets (with the UDH when `udh` is set).
    pub short_message: Vec<u8>,
    /// Set esm_class' UDHI bit.
    pub udh: bool,
    /// The whole text for a `message_payload` TLV.
    pub payload: Option<Vec<u8>>,
    /// This part's own text, for reconciling a text-form receipt.
    pub text: String,
}

/// The GSM 03.38 basic table, in code order (0x1B, the escape, is never looked up).
const BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\u{1b}ÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";

/// GSM 03.38 basic table code of `c`, or its extension-table code (sent after 0x1B).
fn gsm(c: char) -> Option<(Option<u8>, u8)> {
    if c != '\u{1b}'
        && let Some(i) = BASIC.chars().position(|b| b == c)
    {
        return Some((None, i as u8));
    }
    let ext = match c {
        '\u{0c}' => 0x0A,
        '^' => 0x14,
        '{' => 0x28,
        '}' => 0x29,
        '\\' => 0x2F,
        '[' => 0x3C,
        '~' => 0x3D,
        ']' => 0x3E,
        '|' => 0x40,
        '€' => 0x65,
        _ => return None,
    };
    Some((Some(0x1B), ext))
}

/// Each character of `text` as its octets in `coding`.
fn characters(text: &str, coding: DataCoding) -> Result<Vec<(char, Vec<u8>)>, EncodeError> {
    text.chars()
        .map(|c| {
            let octets = match coding {
                DataCoding::Gsm => match gsm(c) {
                    Some((Some(esc), code)) => vec![esc, code],
                    Some((None, code)) => vec![code],
                    None => return Err(EncodeError::NotGsm(c)),
                },
                DataCoding::Ucs2 => {
                    let mut units = [0u16; 2];
                    c.encode_utf16(&mut units)
                        .iter()
                        .flat_map(|u| u.to_be_bytes())
                        .collect()
                }
                DataCoding::Ksc5601 => {
                    let mut buf = [0u8; 4];
                    let (bytes, _, unmappable) =
                        encoding_rs::EUC_KR.encode(c.encode_utf8(&mut buf));
                    if unmappable {
                        return Err(EncodeError::NotKsc5601(c));
                    }
                    bytes.into_owned()
                }
            };
            Ok((c, octets))
        })
        .collect()
}

/// Encode `text` into the submit_sm bodies it needs; `reference` is the concatenation
/// reference of this message (the session's counter).
pub fn encode(
    text: &str,
    coding: DataCoding,
    long: LongText,
    reference: u8,
) -> Result<Vec<Encoded>, EncodeError> {
    let chars = characters(text, coding)?;
    let total: usize = chars.iter().map(|(_, o)| o.len()).sum();
    let whole = || {
        chars
            .iter()
            .flat_map(|(_, o)| o.iter().copied())
            .collect::<Vec<u8>>()
    };
    if total <= coding.single_limit() {
        return Ok(vec![Encoded {
            short_message: whole(),
            udh: false,
            payload: None,
            text: text.to_string(),
        }]);
    }
    if long == LongText::Payload {
        if total > u16::MAX as usize {
            return Err(EncodeError::TooLong(total));
        }
        return Ok(vec![Encoded {
            short_message: Vec::new(),
            udh: false,
            payload: Some(whole()),
            text: text.to_string(),
        }]);
    }
    let limit = coding.part_limit();
    let mut parts: Vec<(Vec<u8>, String)> = vec![(Vec::new(), String::new())];
    for (c, octets) in &chars {
        let fits = parts
            .last()
            .is_some_and(|(bytes, _)| bytes.len() + octets.len() <= limit);
        if !fits {
            parts.push((Vec::new(), String::new()));
        }
        if let Some((bytes, part_text)) = parts.last_mut() {
            bytes.extend_from_slice(octets);
            part_text.push(*c);
        }
    }
    if parts.len() > 255 {
        return Err(EncodeError::TooManyParts(parts.len()));
    }
    let count = parts.len() as u8;
    Ok(parts
        .into_iter()
        .enumerate()
        .map(|(i, (bytes, part_text))| {
            let mut short_message = vec![0x05, 0x00, 0x03, reference, count, i as u8 + 1];
            short_message.extend_from_slice(&bytes);
            Encoded {
                short_message,
                udh: true,
                payload: None,
                text: part_text,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gsm_table_has_128_codes_in_order() {
        let chars: Vec<char> = BASIC.chars().collect();
        assert_eq!(chars.len(), 128);
        assert_eq!(chars[0x11], '_');
        assert_eq!(chars[0x24], '¤');
        assert_eq!(chars[0x41], 'A');
        assert_eq!(chars[0x5F], '§');
        assert_eq!(chars[0x61], 'a');
        assert_eq!(chars[0x7F], 'à');
    }

    #[test]
    fn short_texts_are_one_message() {
        let parts = encode("Hello @ $5", DataCoding::Gsm, LongText::Udh, 1).expect("gsm");
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].short_message, b"Hello \x00 \x025".to_vec());
        assert!(!parts[0].udh);
        let parts = encode("안녕", DataCoding::Ucs2, LongText::Udh, 1).expect("ucs2");
        assert_eq!(parts[0].short_message, vec![0xC5, 0x48, 0xB1, 0x55]);
        let parts = encode("안녕", DataCoding::Ksc5601, LongText::Udh, 1).expect("ksc");
        assert_eq!(parts[0].short_message, vec![0xBE, 0xC8, 0xB3, 0xE7]);
    }

    #[test]
    fn gsm_escapes_count_twice_and_unknowns_are_refused() {
        let parts = encode("{€}", DataCoding::Gsm, LongText::Udh, 1).expect("gsm");
        assert_eq!(
            parts[0].short_message,
            vec![0x1B, 0x28, 0x1B, 0x65, 0x1B, 0x29]
        );
        assert_eq!(
            encode("안", DataCoding::Gsm, LongText::Udh, 1),
            Err(EncodeError::NotGsm('안'))
        );
        assert_eq!(
            encode("😀", DataCoding::Ksc5601, LongText::Udh, 1),
            Err(EncodeError::NotKsc5601('😀'))
        );
    }

    #[test]
    fn long_texts_are_split_with_a_udh() {
        let text = "a".repeat(160);
        assert_eq!(
            encode(&text, DataCoding::Gsm, LongText::Udh, 9)
                .expect("ok")
                .len(),
            1
        );
        let text = "a".repeat(161);
        let parts = encode(&text, DataCoding::Gsm, LongText::Udh, 9).expect("ok");
        assert_eq!(parts.len(), 2);
        assert_eq!(&parts[0].short_message[..6], &[5, 0, 3, 9, 2, 1]);
        assert_eq!(&parts[1].short_message[..6], &[5, 0, 3, 9, 2, 2]);
        assert_eq!(parts[0].short_message.len(), 6 + 153);
        assert_eq!(parts[0].text.len() + parts[1].text.len(), 161);
        assert!(parts.iter().all(|p| p.udh));
    }

    #[test]
    fn parts_never_cut_a_character() {
        // 70 Korean syllables = 140 octets in EUC-KR: one message; 71 need two parts of ≤134.
        let text = "가".repeat(71);
        let parts = encode(&text, DataCoding::Ksc5601, LongText::Udh, 1).expect("ok");
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].short_message.len() - 6, 134);
        assert_eq!(parts[1].text.chars().count(), 4);
        // A GSM escape pair is not split at the 153-octet boundary.
        let text = format!("{}€{}", "a".repeat(152), "b".repeat(10));
        let parts = encode(&text, DataCoding::Gsm, LongText::Udh, 1).expect("ok");
        assert_eq!(parts[0].short_message.len() - 6, 152);
        assert!(parts[1].text.starts_with('€'));
        let text = "😀".repeat(40);
        let parts = encode(&text, DataCoding::Ucs2, LongText::Udh, 1).expect("ok");
        assert!(parts.iter().all(|p| (p.short_message.len() - 6) % 4 == 0));
    }

    #[test]
    fn payload_mode_sends_the_whole_text() {
        let text = "b".repeat(500);
        let parts = encode(&text, DataCoding::Gsm, LongText::Payload, 1).expect("ok");
        assert_eq!(parts.len(), 1);
        assert!(parts[0].short_message.is_empty());
        assert_eq!(parts[0].payload.as_ref().map(Vec::len), Some(500));
    }

    proptest::proptest! {
        #[test]
        fn parts_rejoin_to_the_text_and_fit(text in "\\PC{0,400}") {
            for coding in [DataCoding::Ucs2, DataCoding::Ksc5601, DataCoding::Gsm] {
                let Ok(parts) = encode(&text, coding, LongText::Udh, 7) else { continue };
                let joined: String = parts.iter().map(|p| p.text.as_str()).collect();
                proptest::prop_assert_eq!(&joined, &text);
                for p in &parts {
                    proptest::prop_assert!(p.short_message.len() <= 160);
                    if parts.len() > 1 {
                        proptest::prop_assert!(p.short_message.len() - 6 <= coding.part_limit());
                    }
                }
            }
        }
    }
}
