//! Ad marking: an ad (priority `ad`, or billed to a bill code flagged `ad_check`) must begin
//! with the ad prefix, "(광고)", and carry an opt-out line: the opt-out marker, "무료수신거부",
//! followed by a phone number.

use switchyard_schemas::Priority;

/// Fewest digits a number after the opt-out marker needs (1588-1234 has 8; 080-123-4567 10).
pub const MIN_OPT_OUT_DIGITS: usize = 8;

/// Whether a message is an ad.
pub fn is_ad(priority: Priority, bill_code_ad_check: bool) -> bool {
    priority == Priority::Ad || bill_code_ad_check
}

/// What is missing from an ad.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    /// It does not begin with the prefix.
    Prefix,
    /// No opt-out marker followed by a number.
    OptOut,
}

/// Check an ad's text: it begins with `prefix` (leading spaces and full-width parentheses
/// allowed) and has `marker` followed by a number.
pub fn check(text: &str, prefix: &str, marker: &str) -> Result<(), Missing> {
    if !begins_with(text, prefix) {
        return Err(Missing::Prefix);
    }
    if !has_opt_out(text, marker) {
        return Err(Missing::OptOut);
    }
    Ok(())
}

/// Whether `text` begins with `prefix`, ignoring leading white space and full-width forms.
pub fn begins_with(text: &str, prefix: &str) -> bool {
    let text: String = text.trim_start().chars().map(half_width).collect();
    let prefix: String = prefix.trim().chars().map(half_width).collect();
    !prefix.is_empty() && text.starts_with(&prefix)
}

/// Whether `marker` occurs followed (after at most a few separators: spaces, ':', '☎', ...)
/// by a number of at least [`MIN_OPT_OUT_DIGITS`] digits, which may be split by '-', '.',
/// ' ', ')' or '('.
pub fn has_opt_out(text: &str, marker: &str) -> bool {
    if marker.is_empty() {
        return false;
    }
    text.match_indices(marker).any(|(at, _)| {
        let rest = &text[at + marker.len()..];
        let mut chars = rest.chars().map(half_width).peekable();
        // Up to 4 separators before the number, on the same line.
        let mut skipped = 0;
        while let Some(&c) = chars.peek() {
            if c.is_ascii_digit() || c == '\n' || skipped >= 4 {
                break;
            }
            if !(c.is_whitespace() || matches!(c, ':' | '☎' | '📞' | '(' | '=' | '-' | '.')) {
                return false;
            }
            skipped += 1;
            chars.next();
        }
        let mut digits = 0;
        for c in chars {
            if c.is_ascii_digit() {
                digits += 1;
            } else if !matches!(c, '-' | '.' | ' ' | ')' | '(') {
                break;
            }
        }
        digits >= MIN_OPT_OUT_DIGITS
    })
}

fn half_width(c: char) -> char {
    match c {
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
        _ => c,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PREFIX: &str = "(광고)";
    const MARKER: &str = "무료수신거부";

    #[test]
    fn ads_are_priority_ad_or_an_ad_check_bill_code() {
        let cases = [
            (Priority::Ad, false, true),
            (Priority::Ad, true, true),
            (Priority::Normal, true, true),
            (Priority::Normal, false, false),
            (Priority::Otp, false, false),
            (Priority::Bulk, false, false),
        ];
        for (priority, flag, ad) in cases {
            assert_eq!(is_ad(priority, flag), ad, "{priority:?} {flag}");
        }
    }

    #[test]
    fn ads_need_the_prefix_and_an_opt_out_number() {
        let cases: &[(&str, Result<(), Missing>)] = &[
            ("(광고) 봄 세일 20%\n무료수신거부 080-123-4567", Ok(())),
            ("(광고)봄 세일\n무료수신거부: 0801234567", Ok(())),
            ("  (광고) 세일 무료수신거부 ☎ 080 123 4567", Ok(())),
            ("（광고） 세일 무료수신거부 ０８０-１２３-４５６７", Ok(())), // full width
            ("(광고) 세일 무료수신거부 1588-1234", Ok(())),
            ("(광고) 세일 무료수신거부 (080)1234567", Ok(())),
            (
                "봄 세일 20%\n무료수신거부 080-123-4567",
                Err(Missing::Prefix),
            ),
            (
                "봄 세일 (광고)\n무료수신거부 080-123-4567",
                Err(Missing::Prefix),
            ),
            (
                "[광고] 봄 세일 무료수신거부 080-123-4567",
                Err(Missing::Prefix),
            ),
            ("(광고) 봄 세일 20%", Err(Missing::OptOut)),
            ("(광고) 봄 세일 무료수신거부", Err(Missing::OptOut)),
            (
                "(광고) 봄 세일 무료수신거부 홈페이지에서",
                Err(Missing::OptOut),
            ),
            ("(광고) 봄 세일 무료수신거부 080-12", Err(Missing::OptOut)),
            ("(광고) 봄 세일 수신거부 080-123-4567", Err(Missing::OptOut)),
            ("(광고) 무료수신거부\n080-123-4567", Err(Missing::OptOut)), // not on its line
        ];
        for (text, expected) in cases {
            assert_eq!(check(text, PREFIX, MARKER), *expected, "{text:?}");
        }
    }

    #[test]
    fn an_empty_prefix_or_marker_is_never_satisfied() {
        assert!(!begins_with("(광고) x", ""));
        assert!(!has_opt_out("무료수신거부 080-123-4567", ""));
    }
}
