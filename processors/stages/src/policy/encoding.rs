//! Encodings and lengths: byte counts in EUC-KR (CP949, which extends it, for the Hangul
//! syllables outside it) for Korean SMS/LMS/MMS, and GSM-7 or UCS-2 segment counts for
//! international SMS (GSM-7: 160 septets in one part, 153 per part when split, extension
//! characters count 2 and are never split; UCS-2: 70 units, 67 per part, surrogate pairs never
//! split).

/// Bytes of `text` in CP949 (a superset of EUC-KR: the same bytes for every character EUC-KR
/// has), or the first character neither can encode.
pub fn euc_kr_bytes(text: &str) -> Result<usize, char> {
    // encoding_rs's EUC-KR is the WHATWG one, i.e. CP949 (windows-949).
    let (bytes, _, unmappable) = encoding_rs::EUC_KR.encode(text);
    if !unmappable {
        return Ok(bytes.len());
    }
    let mut buf = [0u8; 4];
    let bad = text
        .chars()
        .find(|c| encoding_rs::EUC_KR.encode(c.encode_utf8(&mut buf)).2)
        .unwrap_or('\u{FFFD}');
    Err(bad)
}

/// The encoding an international SMS is sent in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmsEncoding {
    Gsm7,
    Ucs2,
}

impl SmsEncoding {
    /// The name written in `ValidatedMessage.encoding`.
    pub fn as_str(self) -> &'static str {
        match self {
            SmsEncoding::Gsm7 => "gsm-7",
            SmsEncoding::Ucs2 => "ucs-2",
        }
    }
}

/// How an international SMS is sent: its encoding, length in septets (GSM-7) or 16-bit units
/// (UCS-2), and number of parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segments {
    pub encoding: SmsEncoding,
    pub units: usize,
    pub segments: usize,
}

/// GSM-7 when every character is in the GSM 03.38 default alphabet or its extension table,
/// else UCS-2; with the number of parts.
pub fn sms_segments(text: &str) -> Segments {
    let septets: Option<Vec<usize>> = text.chars().map(gsm7_septets).collect();
    match septets {
        Some(widths) => Segments {
            encoding: SmsEncoding::Gsm7,
            units: widths.iter().sum(),
            segments: parts(&widths, 160, 153),
        },
        None => {
            let widths: Vec<usize> = text.chars().map(char::len_utf16).collect();
            Segments {
                encoding: SmsEncoding::Ucs2,
                units: widths.iter().sum(),
                segments: parts(&widths, 70, 67),
            }
        }
    }
}

/// Parts needed for characters of these widths: one if all fit in `single`, else packed into
/// parts of `multi` without splitting a character. An empty text is one part.
fn parts(widths: &[usize], single: usize, multi: usize) -> usize {
    if widths.iter().sum::<usize>() <= single {
        return 1;
    }
    let mut parts = 1;
    let mut used = 0;
    for &w in widths {
        if used + w > multi {
            parts += 1;
            used = 0;
        }
        used += w;
    }
    parts
}

/// Septets of a character in GSM-7: 1 in the default alphabet, 2 in the extension table
/// (escape + code), `None` when GSM-7 cannot carry it.
pub fn gsm7_septets(c: char) -> Option<usize> {
    const BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
                         ¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
    const EXTENSION: &str = "\u{000C}^{}\\[~]|€";
    if BASIC.contains(c) {
        Some(1)
    } else if EXTENSION.contains(c) {
        Some(2)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn euc_kr_byte_counts() {
        let ninety = "가".repeat(45);
        let cases: &[(&str, Result<usize, char>)] = &[
            ("hello", Ok(5)),
            ("인증번호 123456", Ok(15)), // 4 syllables × 2 + 7
            (ninety.as_str(), Ok(90)),
            ("(광고) 세일", Ok(11)),
            ("똠방각하", Ok(8)), // 똠 is CP949-only (not in KS X 1001): still 2
            ("ㄱㄴㄷ", Ok(6)),   // compatibility jamo
            ("漢字", Ok(4)),
            ("hi 😀", Err('😀')),
            ("café ☃", Err('é')),
            ("", Ok(0)),
        ];
        for (text, expected) in cases {
            assert_eq!(euc_kr_bytes(text), *expected, "{text:?}");
        }
    }

    #[test]
    fn gsm7_and_ucs2_segments() {
        let cases: &[(String, SmsEncoding, usize, usize)] = &[
            ("Hello".into(), SmsEncoding::Gsm7, 5, 1),
            ("a".repeat(160), SmsEncoding::Gsm7, 160, 1),
            ("a".repeat(161), SmsEncoding::Gsm7, 161, 2),
            ("a".repeat(306), SmsEncoding::Gsm7, 306, 2),
            ("a".repeat(307), SmsEncoding::Gsm7, 307, 3),
            ("€".repeat(80), SmsEncoding::Gsm7, 160, 1), // extension: 2 septets each
            ("€".repeat(81), SmsEncoding::Gsm7, 162, 2),
            // 152 + an extension character: it does not fit in part one's last septet.
            (
                format!("{}{}", "a".repeat(152), "{}"),
                SmsEncoding::Gsm7,
                156,
                1,
            ),
            (
                format!("{}€{}", "a".repeat(152), "a".repeat(10)),
                SmsEncoding::Gsm7,
                164,
                2,
            ),
            (
                format!("{}€{}", "a".repeat(152), "a".repeat(153)),
                SmsEncoding::Gsm7,
                307,
                3,
            ),
            ("Ünïcode".into(), SmsEncoding::Ucs2, 7, 1), // ï is not GSM-7
            ("안녕하세요".into(), SmsEncoding::Ucs2, 5, 1),
            ("가".repeat(70), SmsEncoding::Ucs2, 70, 1),
            ("가".repeat(71), SmsEncoding::Ucs2, 71, 2),
            ("가".repeat(134), SmsEncoding::Ucs2, 134, 2),
            ("가".repeat(135), SmsEncoding::Ucs2, 135, 3),
            ("😀".repeat(35), SmsEncoding::Ucs2, 70, 1), // surrogate pairs: 2 units
            // 66 units, then a pair that would straddle the 67-unit boundary.
            (
                format!("{}{}", "가".repeat(66), "😀".repeat(3)),
                SmsEncoding::Ucs2,
                72,
                2,
            ),
            ("".into(), SmsEncoding::Gsm7, 0, 1),
        ];
        for (text, encoding, units, segments) in cases {
            let s = sms_segments(text);
            assert_eq!(
                (s.encoding, s.units, s.segments),
                (*encoding, *units, *segments),
                "{text:?}"
            );
        }
    }
}
