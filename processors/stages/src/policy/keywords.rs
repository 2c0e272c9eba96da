//! The keyword blocklist: a text is blocked when it contains a listed word once both are
//! normalised, so spacing, punctuation, zero-width characters, full-width forms, case and
//! decomposed Hangul ("대.출", "대 출", "대\u{200b}출", "ｌｏａｎ") do not hide a word.

/// The text as the blocklist sees it: full-width forms folded to their ASCII counterparts,
/// conjoining Hangul jamo composed into syllables, lower case, and nothing but letters and
/// digits (spaces, punctuation, symbols and zero-width characters dropped).
pub fn normalize(text: &str) -> String {
    let folded = text.chars().map(fold_width).flat_map(char::to_lowercase);
    compose_hangul(folded)
        .into_iter()
        .filter(|c| c.is_alphanumeric())
        .collect()
}

/// The first word of `words` that `text` contains, both normalised. Words that normalise to
/// nothing (config apply refuses them) never match.
pub fn find_blocked<'a>(text: &str, words: &'a [String]) -> Option<&'a str> {
    let text = normalize(text);
    words.iter().map(String::as_str).find(|word| {
        let word = normalize(word);
        !word.is_empty() && text.contains(&word)
    })
}

/// Full-width ASCII (U+FF01..U+FF5E) and the ideographic space to their ASCII forms.
fn fold_width(c: char) -> char {
    match c {
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
        '\u{3000}' => ' ',
        _ => c,
    }
}

const L_BASE: u32 = 0x1100;
const V_BASE: u32 = 0x1161;
const T_BASE: u32 = 0x11A7;
const S_BASE: u32 = 0xAC00;
const L_COUNT: u32 = 19;
const V_COUNT: u32 = 21;
const T_COUNT: u32 = 28;

/// Compose conjoining jamo (as in NFD text) into precomposed syllables.
fn compose_hangul(chars: impl Iterator<Item = char>) -> Vec<char> {
    let mut out: Vec<char> = Vec::new();
    for c in chars {
        let code = c as u32;
        if let Some(&last) = out.last() {
            let last_code = last as u32;
            // L + V → LV
            if (L_BASE..L_BASE + L_COUNT).contains(&last_code)
                && (V_BASE..V_BASE + V_COUNT).contains(&code)
            {
                let s = S_BASE + ((last_code - L_BASE) * V_COUNT + (code - V_BASE)) * T_COUNT;
                if let Some(syllable) = char::from_u32(s) {
                    out.pop();
                    out.push(syllable);
                    continue;
                }
            }
            // LV + T → LVT
            if (S_BASE..S_BASE + L_COUNT * V_COUNT * T_COUNT).contains(&last_code)
                && (last_code - S_BASE).is_multiple_of(T_COUNT)
                && (T_BASE + 1..T_BASE + T_COUNT).contains(&code)
                && let Some(syllable) = char::from_u32(last_code + (code - T_BASE))
            {
                out.pop();
                out.push(syllable);
                continue;
            }
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalising_sees_through_tricks() {
        let cases: &[(&str, &str)] = &[
            ("대출", "대출"),
            ("대.출", "대출"),
            ("대 출", "대출"),
            ("대\u{200b}출", "대출"),   // zero-width space
            ("대\u{feff}출", "대출"),   // zero-width no-break space
            ("대\u{3000}출!!", "대출"), // ideographic space
            ("대-_-출♥", "대출"),
            ("ＬＯＡＮ ５０％", "loan50"),
            ("L.o.A.n", "loan"),
            ("\u{1103}\u{1162}\u{110E}\u{116E}\u{11AF}", "대출"), // decomposed (NFD) Hangul
            (
                "(광고) 무료수신거부 080-123-4567",
                "광고무료수신거부0801234567",
            ),
            ("", ""),
        ];
        for (text, normal) in cases {
            assert_eq!(normalize(text), *normal, "{text:?}");
        }
    }

    #[test]
    fn blocked_words_are_found_through_tricks() {
        let words = vec!["대출".to_string(), "카지노".to_string(), "Loan".to_string()];
        let cases: &[(&str, Option<&str>)] = &[
            ("저금리 대출 가능합니다", Some("대출")),
            ("저금리 대.출 가능합니다", Some("대출")),
            ("저금리 대 출 가능합니다", Some("대출")),
            ("저금리 대\u{200d}출", Some("대출")),
            ("온라인 카.지.노 오픈", Some("카지노")),
            ("ｌｏａｎ available", Some("Loan")),
            ("fast L-O-A-N", Some("Loan")),
            ("인증번호 123456", None),
            ("대학 출석 확인", None), // 대 and 출 are not adjacent
            ("주문하신 상품이 출고되었습니다", None),
        ];
        for (text, expected) in cases {
            assert_eq!(find_blocked(text, &words), *expected, "{text:?}");
        }
    }

    #[test]
    fn a_word_of_only_punctuation_never_matches() {
        let words = vec!["...".to_string(), " ".to_string()];
        assert_eq!(find_blocked("아무 내용...", &words), None);
    }
}
